"""devtools.local_runner: a DAG run followed task by task from another process through the
metadata DB, and the run's start and end dates are wall-clock times (not the logical date)."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from devtools.local_runner import load_dag, task_order

ROOT = Path(__file__).resolve().parents[2]
# Polls the runner's rows in the metadata DB while the runner (pid argv[1]) lives, then prints
# what it saw, the tasks' final states and the run's dates as JSON.
WATCHER = """
import datetime as dt, json, sys, time
from pathlib import Path
from airflow.models import DagRun
from airflow.utils.session import create_session
from devtools.local_runner import run_task_states

pid, since = int(sys.argv[1]), dt.datetime.fromisoformat(sys.argv[2])
seen = set()

def alive():
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"

while alive():
    _, tasks = run_task_states("main_job_probe", "2026-10-01", since)
    seen |= {(task.task_id, task.state) for task in tasks.values()}
    time.sleep(0.3)
state, tasks = run_task_states("main_job_probe", "2026-10-01", since)
now = dt.datetime.now(dt.UTC)
with create_session() as session:
    runs = session.query(DagRun).filter(DagRun.dag_id == "main_job_probe", DagRun.run_after >= since).all()
    dates = [[r.start_date.isoformat(), r.end_date.isoformat(), r.logical_date.isoformat(), r.duration] for r in runs]
print(json.dumps({
    "run_state": state,
    "seen": sorted(seen, key=str),
    "tasks": {t: [x.state, x.instances, x.done, x.seconds(now)] for t, x in tasks.items()},
    "runs": dates,
}))
"""
DAY = "2026-10-01"  # weeks before "now": a run dated on its logical date would read as weeks long

PROBE_DAG = """
import time

from airflow.sdk import dag, task


@dag(dag_id="main_job_probe", schedule=None, catchup=False)
def main_job_probe():
    @task
    def slow():
        time.sleep(4)

    @task
    def fan():
        return [1, 2, 3]

    @task
    def each(x):
        time.sleep(0.5)

    @task
    def last():
        pass

    slow() >> each.expand(x=fan()) >> last()


main_job_probe()
"""


def test_task_order_puts_each_task_after_its_upstream_tasks(tmp_path):
    (tmp_path / "main_job_probe.py").write_text(PROBE_DAG)
    dag = load_dag("main_job_probe", tmp_path)
    order = task_order(dag)
    assert sorted(order) == sorted(dag.task_ids)
    assert order.index("slow") < order.index("each") and order.index("fan") < order.index("each") < order.index("last")


def own_airflow_home(tmp_path: Path) -> dict[str, str]:
    """A copy of the test session's Airflow database in a home of this test's own: the runner and
    its watcher share it and nothing else runs there."""
    home = tmp_path / "airflow"
    home.mkdir()
    source = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(source) as original, sqlite3.connect(home / "airflow.db") as copy:
        original.backup(copy)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def test_a_local_run_is_followed_task_by_task_and_has_wall_clock_dates(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "main_job_probe.py").write_text(PROBE_DAG)
    env = {**os.environ, **own_airflow_home(tmp_path), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    since = dt.datetime.now(dt.UTC)
    child = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_runner", "main_job_probe", "--date", DAY, "--dags-dir", str(dags)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # Followed from another process, as scripts/local_run.py follows its runner.
    watcher = subprocess.run(
        [sys.executable, "-c", WATCHER, str(child.pid), since.isoformat()],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = child.communicate(timeout=300)[0]
    finished = dt.datetime.now(dt.UTC)
    assert child.returncode == 0, output[-3000:]
    assert watcher.returncode == 0, watcher.stderr[-3000:]
    watched = json.loads(watcher.stdout.strip().splitlines()[-1])

    assert watched["run_state"] == "success", (watched, output[-2000:])
    assert ["slow", "running"] in watched["seen"], watched["seen"]  # seen while it ran, from another process
    tasks = watched["tasks"]
    assert {task_id: task[:3] for task_id, task in tasks.items()} == {
        "slow": ["success", 1, 1],
        "fan": ["success", 1, 1],
        "each": ["success", 3, 3],
        "last": ["success", 1, 1],
    }
    assert 4 <= tasks["slow"][3] < 60
    [[start, end, logical, seconds]] = watched["runs"]
    start, end = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    assert dt.datetime.fromisoformat(logical) == dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert since <= start <= end <= finished  # real wall-clock times: the UI shows seconds, not weeks
    assert 4 <= seconds < 120  # DagRun.duration, what the UI shows: end_date - start_date
