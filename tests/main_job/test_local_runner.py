"""devtools.local_runner: a DAG run followed task by task from another process through the
metadata DB, and the run's start and end dates are wall-clock times (not the logical date)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.local_runner import load_dag, run_task_states, task_order

ROOT = Path(__file__).resolve().parents[2]
# Polls the runner's rows in the metadata DB while the runner (pid argv[1]) lives; prints what it saw.
WATCHER = """
import datetime as dt, json, sys, time
from pathlib import Path
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
state, _ = run_task_states("main_job_probe", "2026-10-01", since)
print(json.dumps({"run_state": state, "seen": sorted(seen, key=str)}))
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


def test_a_local_run_is_followed_task_by_task_and_has_wall_clock_dates(tmp_path):
    (tmp_path / "main_job_probe.py").write_text(PROBE_DAG)
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path)}
    since = dt.datetime.now(dt.UTC)
    child = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_runner", "main_job_probe", "--date", DAY, "--dags-dir", str(tmp_path)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # Followed from another fresh process, as scripts/local_run.py follows its runner (this test
    # process has run other tests' Airflow code in-process; the watcher starts clean).
    watcher = subprocess.run(
        [sys.executable, "-c", WATCHER, str(child.pid), since.isoformat()],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = child.communicate(timeout=300)[0]
    finished = dt.datetime.now(dt.UTC)
    assert child.returncode == 0, output[-3000:]
    assert watcher.returncode == 0, watcher.stderr[-3000:]
    watched = json.loads(watcher.stdout.strip().splitlines()[-1])
    seen = {tuple(pair) for pair in watched["seen"]}
    run_state, tasks = run_task_states("main_job_probe", DAY, since)

    assert watched["run_state"] == run_state == "success", (watched["run_state"], run_state, output[-2000:])
    assert ("slow", "running") in seen, seen  # seen while it ran, from this process
    assert {task_id: (task.state, task.instances, task.done) for task_id, task in tasks.items()} == {
        "slow": ("success", 1, 1),
        "fan": ("success", 1, 1),
        "each": ("success", 3, 3),
        "last": ("success", 1, 1),
    }
    assert 4 <= tasks["slow"].seconds(finished) < 60

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == "main_job_probe", DagRun.run_after >= since).one()
        start, end, logical, seconds = run.start_date, run.end_date, run.logical_date, run.duration
    assert logical == dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert since <= start <= end <= finished  # real wall-clock times: the UI shows seconds, not weeks
    assert 4 <= seconds < 120  # DagRun.duration, what the UI shows: end_date - start_date
