"""Run a DAG of this project in-process with ``dag.test()`` (local profile, tests, demo).

    python -m devtools.local_runner payments_daily_index --date 2026-11-21 [--conf '{"from_stage": "aggregate"}']

Exits 0 only when the DAG run succeeded. ``dag.test()`` in Airflow 3.3.1 fails when the
run ends if the DAG declares a ``DeadlineAlert`` (it looks the alerts up by id, but
test runs hold their serialized form), so the deadline is dropped for test runs only.
Deadlines need the scheduler and triggerer anyway; tests check the declaration and the
callback separately. The metadata DB holds one run per DAG and logical date, so an earlier
local run of the same day is forgotten first (its data versions stay in the lake).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from payments_platform.profiles import PROJECT_ROOT

DAGS_DIR = PROJECT_ROOT / "dags"


def load_dag(dag_id: str, dags_dir: Path = DAGS_DIR):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_dir / f"{dag_id}.py"))
    if bag.import_errors:
        raise RuntimeError(f"{dag_id} failed to load: {bag.import_errors}")
    return bag.dags[dag_id]


def forget_earlier_test_runs(dag_id: str, logical_date: dt.datetime) -> int:
    """Delete earlier local runs of the DAG for this logical date (the metadata DB allows one)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date).delete()


def run_dag_locally(dag_id: str, day: str, conf: dict | None = None):
    dag = load_dag(dag_id)
    dag.deadline = None
    logical_date = dt.datetime.fromisoformat(f"{day}T00:00:00+00:00")
    forget_earlier_test_runs(dag_id, logical_date)
    day_conf = {"date": day} if "date" in dag.params else {}
    return dag.test(logical_date=logical_date, run_conf={**day_conf, **(conf or {})})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dag_id")
    parser.add_argument("--date", required=True)
    parser.add_argument("--conf", default="{}", help="JSON run conf merged over {'date': ...}")
    args = parser.parse_args(argv)
    dag_run = run_dag_locally(args.dag_id, args.date, json.loads(args.conf))
    state = str(getattr(dag_run, "state", "unknown"))
    print(f"[local_runner] {args.dag_id} {args.date}: {state}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
