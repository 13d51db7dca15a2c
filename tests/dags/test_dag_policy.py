"""Every DAG file, under both runtime profiles, loads cleanly and follows the policy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.dags.policy import MAX_PARSE_SECONDS, parse_dag_file, policy_violations

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS_DIR.glob("*.py"))


@pytest.fixture(params=["local", "aws"])
def profile_name(request, monkeypatch, aws_profile_env):
    from payments_platform.profiles import load_profile

    monkeypatch.setenv("PAYMENTS_PROFILE", request.param)
    load_profile.cache_clear()
    yield request.param
    load_profile.cache_clear()


def test_dag_files_exist():
    names = {path.stem for path in DAG_FILES}
    assert {"payments_daily_index", "payments_stream_supervisor", "payments_reprocess"} <= names


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_loads_and_follows_policy(dag_file, profile_name):
    parse_dag_file(dag_file)  # warm imports shared by every DAG file
    bag, elapsed = parse_dag_file(dag_file)
    assert bag.import_errors == {}, f"{dag_file.name} under profile {profile_name}: {bag.import_errors}"
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag in bag.dags.values():
        assert policy_violations(dag, dag_file.read_text()) == []
        assert dag.dag_id == dag_file.stem, "one DAG per file, named like the file"
    assert elapsed < MAX_PARSE_SECONDS, f"{dag_file.name} took {elapsed:.2f}s to parse"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad_dag.py"
    path.write_text(textwrap.dedent(body))
    return path


GOOD_DAG = '''
"""A DAG that follows every rule."""
from datetime import timedelta
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="bad_dag", doc_md=__doc__, schedule=None, catchup=False, max_active_runs=1, tags=["t"],
         default_args={"owner": "team", "retries": 2, "retry_delay": timedelta(minutes=1)}) as dag:
    EmptyOperator(task_id="noop")
'''


def test_policy_accepts_a_good_dag(tmp_path):
    path = _write(tmp_path, GOOD_DAG)
    bag, _ = parse_dag_file(path)
    assert bag.import_errors == {}
    assert policy_violations(bag.dags["bad_dag"], path.read_text()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('"owner": "team"', '"owner": "airflow"'), "real owner"),
        (('tags=["t"]', "tags=[]"), "no tags"),
        (("doc_md=__doc__", "doc_md=None"), "no doc_md"),
        (('"retries": 2', '"retries": 1'), "retries 1 < 2"),
        (("catchup=False", "catchup=True"), "catchup=True without"),
        (("max_active_runs=1, ", ""), "max_active_runs is not set"),
    ],
)
def test_policy_rejects_each_broken_rule(tmp_path, change, expected):
    path = _write(tmp_path, GOOD_DAG.replace(*change))
    bag, _ = parse_dag_file(path)
    problems = policy_violations(bag.dags["bad_dag"], path.read_text())
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize(
    ("top_level", "expected"),
    [
        ("from airflow.sdk import Variable\nVariable.get('x')", "Variable.get accessed at DAG parse time"),
        ("from airflow.sdk import BaseHook\nBaseHook.get_connection('x')", "BaseHook.get_connection accessed"),
        ("import socket\nsocket.create_connection(('127.0.0.1', 9))", "socket.create_connection accessed"),
        ("import pyspark.sql", "import of pyspark"),
    ],
)
def test_parse_time_access_is_an_import_error(tmp_path, top_level, expected):
    path = _write(tmp_path, GOOD_DAG + "\n" + top_level + "\n")
    bag, _ = parse_dag_file(path)
    assert any(expected in error for error in bag.import_errors.values()), bag.import_errors


def test_slow_parse_is_measured(tmp_path):
    path = _write(tmp_path, "import time\ntime.sleep(1.2)\n" + GOOD_DAG)
    _, elapsed = parse_dag_file(path)
    assert elapsed >= MAX_PARSE_SECONDS
