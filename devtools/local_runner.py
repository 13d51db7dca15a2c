"""Run a DAG of this project in-process with ``dag.test()`` (local profile, tests, demo).

    python -m devtools.local_runner payments_daily_index --date 2026-11-21 [--conf '{"from_stage": "aggregate"}']

Exits 0 only when the DAG run succeeded. ``dag.test()`` in Airflow 3.3.1 fails when the
run ends if the DAG declares a ``DeadlineAlert`` (it looks the alerts up by id, but
test runs hold their serialized form), so the deadline is dropped for test runs only.
Deadlines need the scheduler and triggerer anyway; tests check the declaration and the
callback separately. The metadata DB holds one run per DAG and logical date, so an earlier
local run of the same day is forgotten first (its data versions stay in the lake).

``dag.test()`` gives the run it creates the logical date as start date, so the Airflow UI
showed "14d 16h" for a run of minutes; here the run starts at the wall-clock time it really
started (its end date is already the real one).

While a run goes on, another process can follow it in the metadata DB: :func:`run_task_states`
(the tasks of the newest run of a DAG and day, in the order :func:`task_order` gives).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from pathlib import Path
from unittest import mock

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


def logical_date_of(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T00:00:00+00:00")


@contextlib.contextmanager
def runs_start_now():
    """Within: ``dag.test()`` creates its run with the wall-clock time as start date, not the
    logical date (it passes ``start_date=logical_date`` to ``get_or_create_dagrun``, which it
    imports from ``airflow.models.dagrun`` when called)."""
    from airflow.models import dagrun
    from airflow.utils import timezone

    create = dagrun.get_or_create_dagrun

    def create_starting_now(**kwargs):
        return create(**{**kwargs, "start_date": timezone.utcnow()})

    with mock.patch.object(dagrun, "get_or_create_dagrun", create_starting_now):
        yield


def run_dag_locally(dag_id: str, day: str, conf: dict | None = None, dags_dir: Path = DAGS_DIR):
    dag = load_dag(dag_id, dags_dir)
    dag.deadline = None
    logical_date = logical_date_of(day)
    forget_earlier_test_runs(dag_id, logical_date)
    day_conf = {"date": day} if "date" in dag.params else {}
    with runs_start_now():
        return dag.test(logical_date=logical_date, run_conf={**day_conf, **(conf or {})})


def task_order(dag) -> list[str]:
    """The DAG's task ids, each after its upstream tasks (ties in the order they were defined)."""
    remaining = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    order: list[str] = []
    while remaining:
        ready = [task_id for task_id, upstream in remaining.items() if not upstream - set(order)]
        if not ready:  # a cycle cannot load; keep the rest in definition order anyway
            ready = list(remaining)
        for task_id in ready:
            order.append(task_id)
            del remaining[task_id]
    return order


ACTIVE_STATES = ("running", "deferred", "up_for_retry", "up_for_reschedule", "queued", "scheduled", "restarting")


def _summed_state(states: list[str | None]) -> str | None:
    """One state for a task's instances (several when the task is mapped)."""
    if len(set(states)) == 1:
        return states[0]
    if "failed" in states:
        return "failed"
    active = [state for state in ACTIVE_STATES if state in states]
    return active[0] if active else "running"


def _task_state(task_id: str, instances: list):
    from devtools.progress import TaskState

    finished = [ti for ti in instances if ti.end_date is not None]
    starts = [ti.start_date for ti in instances if ti.start_date is not None]
    return TaskState(
        task_id=task_id,
        state=_summed_state([str(ti.state) if ti.state is not None else None for ti in instances]),
        try_number=max(ti.try_number or 0 for ti in instances),
        start=min(starts) if starts else None,
        end=max(ti.end_date for ti in finished) if finished and len(finished) == len(instances) else None,
        instances=len(instances),
        done=len(finished),
    )


def run_task_states(dag_id: str, day: str, since: dt.datetime) -> tuple[str | None, dict]:
    """(state, {task id: TaskState}) of the newest run of ``dag_id`` for ``day`` created at or
    after ``since`` (``dag.test`` sets its ``run_after`` to the time it was called), read from
    the metadata DB; ``(None, {})`` until that run exists."""
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag_id, DagRun.logical_date == logical_date_of(day), DagRun.run_after >= since)
            .order_by(DagRun.run_after.desc())
            .limit(1)
        ).first()
        if run is None:
            return None, {}
        instances: dict[str, list] = {}
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)):
            instances.setdefault(ti.task_id, []).append(ti)
        tasks = {task_id: _task_state(task_id, tis) for task_id, tis in instances.items()}
        return str(run.state), tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dag_id")
    parser.add_argument("--date", required=True)
    parser.add_argument("--conf", default="{}", help="JSON run conf merged over {'date': ...}")
    parser.add_argument("--dags-dir", type=Path, default=DAGS_DIR, help="folder of <dag_id>.py (default: the project's dags/)")
    args = parser.parse_args(argv)
    dag_run = run_dag_locally(args.dag_id, args.date, json.loads(args.conf), args.dags_dir)
    state = str(getattr(dag_run, "state", "unknown"))
    print(f"[local_runner] {args.dag_id} {args.date}: {state}")
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
