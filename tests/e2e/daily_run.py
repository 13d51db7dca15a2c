"""Shared helpers of the local ``payments_daily_index`` end-to-end tests (``dag.test()``)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from payments_platform.pipeline import BUSINESS_INDEXES

EVERY_TABLE = {"batch_index", "quarantine", "aggregate_index", "audit_trail", *BUSINESS_INDEXES}


@contextmanager
def local_lake(root: Path, day: str, transactions: int = 1000, breakage: Callable | None = None) -> Iterator:
    """The local profile pointed at a private lake under ``root``, holding one generated day.

    ``breakage(profile)`` may damage the raw drops before the day is marked ready.
    """
    mp = pytest.MonkeyPatch()
    mp.setenv("PAYMENTS_PROFILE", "local")
    mp.setenv("PAYMENTS_LOCAL_DIR", str(root))
    from payments_platform.profiles import load_profile

    load_profile.cache_clear()
    try:
        profile = load_profile("local")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "devtools.generator",
                "generate",
                "--date",
                day,
                "--transactions",
                str(transactions),
                "--raw-uri",
                profile.lake.raw_uri,
            ],
            check=True,
            capture_output=True,
        )
        if breakage is not None:
            breakage(profile)
        from payments_platform.sensors import ready_marker_uri

        marker = Path(ready_marker_uri(profile.lake.raw_uri, day))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"dt": day}))
        yield profile
    finally:
        mp.undo()
        load_profile.cache_clear()


def run_daily(day: str, conf: dict | None = None):
    from devtools.local_runner import run_dag_locally

    return run_dag_locally("payments_daily_index", day, conf)


def catalog(profile, day: str) -> dict[str, str]:
    """table -> published location for ``day`` in the embedded catalog (empty if it was never created)."""
    if not Path(profile.catalog.embedded_path).is_file():
        return {}
    with duckdb.connect(profile.catalog.embedded_path, read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
        if "catalog_partitions" not in tables:
            return {}
        return dict(con.execute("SELECT table_name, location FROM main.catalog_partitions WHERE dt = ?", [day]).fetchall())


def task_states(dag_run) -> dict[str, str]:
    """task_id -> final state (mapped tasks: the set of their instances' states, joined)."""
    states: dict[str, set[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, set()).add(str(ti.state))
    return {task_id: ",".join(sorted(found)) for task_id, found in states.items()}
