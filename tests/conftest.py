"""Shared fixtures: one local SparkSession and one local Apache Kafka broker for the whole test session."""

from __future__ import annotations

import itertools
import os
import re
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(PROJECT_ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# A fixed, test-only tokenization key; production keys come from the secrets backend.
os.environ.setdefault("PAYMENTS_PAN_TOKEN_KEY", "test-only-pan-token-key-0123456789")


def _private_homes() -> None:
    """The tests run in an Airflow home, lake and catalog of their own, so their DAG runs never
    show up in the user's local Airflow UI and nothing lands in the user's ``.local/``: a copy of
    the project's Airflow database and config (the settings ``scripts/setup.sh`` loaded:
    connections, variables, pools; the same Fernet key) in a temporary folder, and a temporary
    ``PAYMENTS_LOCAL_DIR``. Set before anything imports Airflow."""
    import atexit
    import shutil
    import sqlite3
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="payments-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    home, source = root / "airflow", PROJECT_ROOT / ".local" / "airflow"
    home.mkdir()
    if (source / "airflow.cfg").is_file():
        shutil.copy(source / "airflow.cfg", home / "airflow.cfg")
    if (source / "airflow.db").is_file():
        with sqlite3.connect(source / "airflow.db") as original, sqlite3.connect(home / "airflow.db") as copy:
            original.backup(copy)
    os.environ.update(
        AIRFLOW_HOME=str(home),
        PAYMENTS_AIRFLOW_HOME=str(home),  # scripts/env.sh keeps it: run_local.sh ui in a test stays here
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
    )
    os.environ.setdefault("PAYMENTS_LOCAL_DIR", str(root / "local"))


_private_homes()


@pytest.fixture(scope="session")
def spark():
    """The one SparkSession shared by every Spark test (small data, 2 cores)."""
    from spark_apps.session import build_session

    session = build_session(
        "payments-tests", master="local[2]", conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"}
    )
    yield session
    session.stop()


AWS_PROFILE_ENV = {
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "PAYMENTS_RAW_BUCKET": "payments-raw-test",
    "PAYMENTS_PROCESSED_BUCKET": "payments-processed-test",
    "PAYMENTS_QUARANTINE_BUCKET": "payments-quarantine-test",
    "PAYMENTS_CHECKPOINT_BUCKET": "payments-checkpoints-test",
    "PAYMENTS_ARTIFACTS_BUCKET": "payments-artifacts-test",
    "PAYMENTS_LOGS_BUCKET": "payments-logs-test",
    "PAYMENTS_EMR_VIRTUAL_CLUSTER_ID": "vc0123456789abcdef",
    "PAYMENTS_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/payments-emr-ingest",
    "PAYMENTS_EMR_TRANSFORM_ROLE_ARN": "arn:aws:iam::123456789012:role/payments-emr-transform",
    "PAYMENTS_SPARK_IMAGE_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments-spark:1.0.0",
    "PAYMENTS_MSK_BOOTSTRAP_BROKERS": "b-1.payments.kafka.eu-west-1.amazonaws.com:9098",
    "PAYMENTS_ONCALL_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:payments-oncall",
}


@pytest.fixture
def aws_profile_env(monkeypatch):
    """The environment the MWAA startup script exports, with test values."""
    for key, value in AWS_PROFILE_ENV.items():
        monkeypatch.setenv(key, value)
    return AWS_PROFILE_ENV


_topic_counter = itertools.count()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """Apache Kafka from the JVM manifest on a free loopback port (DESIGN decision 8), stopped at session end."""
    from devtools.broker import EmbeddedBroker

    with EmbeddedBroker(log_path=tmp_path_factory.mktemp("kafka") / "broker.log") as broker:
        yield broker


@pytest.fixture
def kafka_topics(kafka_broker, request):
    """Fresh topics for one test (the broker is shared): transactions, signals, alerts, dead letter."""
    prefix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60] + f"-{next(_topic_counter)}"
    topics = {
        "transactions": f"{prefix}.transactions",
        "fraud_signals": f"{prefix}.fraud-signals",
        "fraud_alerts": f"{prefix}.fraud-alerts",
        "dead_letter": f"{prefix}.dead-letter",
    }
    kafka_broker.create_topics(topics.values(), partitions=2)
    return topics


@pytest.fixture
def kafka_connection(kafka_broker, monkeypatch):
    """The Kafka provider's connection of the profile (kafka_payments) pointed at the test broker,
    as an environment variable (Airflow reads those before its database)."""
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_KAFKA_PAYMENTS", json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": kafka_broker.bootstrap}})
    )
    return kafka_broker.bootstrap
