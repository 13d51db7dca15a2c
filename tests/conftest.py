"""Shared fixtures: one local SparkSession for the whole test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# A fixed, test-only tokenization key; production keys come from the secrets backend.
os.environ.setdefault("PAYMENTS_PAN_TOKEN_KEY", "test-only-pan-token-key")


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession shared by every Spark test (small data, 2 cores)."""
    from spark_apps.session import build_session

    session = build_session("payments-tests", master="local[2]", conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})
    yield session
    session.stop()
