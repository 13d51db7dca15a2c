"""The raw-drop sensor waits on the run's planned day (not ``{{ ds }}``: the plan's ``ready_marker``,
passed as an XCom reference) and is skipped with the batch stage when the run starts at a later
stage: task level (local file poke, S3 HeadObject on moto) and one ``dag.test()`` of the plan +
stage check + sensor in a private Airflow home."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from payments_platform.profiles import PROJECT_ROOT, load_profile
from payments_platform.sensors import ready_marker_uri

PLAN_DAY = "2026-11-03"  # the day a reprocessing run rebuilds
INTERVAL_DAY = "2026-11-21"  # the run's {{ ds }}


def context_for(plan: dict) -> dict:
    ti = SimpleNamespace(plan=plan, dag_id="payments_daily_index", task_id="wait_for_raw_drops", try_number=1)
    return {"ti": ti, "task_instance": ti, "ds": INTERVAL_DAY, "params": {}}


def plan(from_stage: str = "batch") -> dict:
    return {"dt": PLAN_DAY, "version": "v1", "from_stage": from_stage, "indexes": []}


@pytest.fixture
def local_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYMENTS_LOCAL_DIR", str(tmp_path))
    load_profile.cache_clear()
    yield load_profile("local")
    load_profile.cache_clear()


def mark_ready(raw_uri: str, day: str) -> None:
    marker = Path(ready_marker_uri(raw_uri, day))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"dt": day}))


def test_local_sensor_pokes_the_plans_day_not_the_interval_day(local_profile):
    from payments_platform.sensors import raw_drop_sensor

    marker = ready_marker_uri(local_profile.lake.raw_uri, PLAN_DAY)  # the plan's ready_marker
    sensor = raw_drop_sensor(local_profile, marker, task_id="wait_for_raw_drops")
    context = context_for(plan())
    sensor.render_template_fields(context)
    assert sensor.op_kwargs == {"marker": marker}

    mark_ready(local_profile.lake.raw_uri, INTERVAL_DAY)
    assert not sensor.poke(context), "the interval's day being ready says nothing about the planned day"
    mark_ready(local_profile.lake.raw_uri, PLAN_DAY)
    assert sensor.poke(context)


def test_the_batch_stage_is_skipped_unless_the_run_rebuilds_it(local_profile):
    """``batch.should_run`` (upstream of the sensor) skips, and the sensor is skipped with it."""
    from airflow.sdk.exceptions import AirflowSkipException

    from payments_platform.stages import should_run

    assert should_run.function(plan("batch"), "batch") == "batch"  # the batch stage reads the drops: it waits
    for later in ("aggregate", "business"):
        with pytest.raises(AirflowSkipException, match=f"rebuilds from '{later}'"):
            should_run.function(plan(later), "batch")


def test_s3_sensor_heads_the_plans_days_marker(aws_profile_env, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": "eu-west-1"}}))
    load_profile.cache_clear()
    try:
        profile = load_profile("aws")
        from payments_platform.sensors import raw_drop_sensor

        with mock_aws():
            s3 = boto3.client("s3", region_name="eu-west-1")
            s3.create_bucket(Bucket="payments-raw-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            sensor = raw_drop_sensor(profile, ready_marker_uri(profile.lake.raw_uri, PLAN_DAY), task_id="wait_for_raw_drops")
            context = context_for(plan())
            sensor.render_template_fields(context)
            assert sensor.bucket_key == f"s3://payments-raw-test/raw/_ready/dt={PLAN_DAY}.json"
            assert sensor.deferrable

            s3.put_object(Bucket="payments-raw-test", Key=f"raw/_ready/dt={INTERVAL_DAY}.json", Body=b"{}")
            assert not sensor.poke(context)
            s3.put_object(Bucket="payments-raw-test", Key=f"raw/_ready/dt={PLAN_DAY}.json", Body=b"{}")
            assert sensor.poke(context)
    finally:
        load_profile.cache_clear()


# --- dag.test() of the plan and the sensor, in a private Airflow home -----------------------------

PROBE_DAG = textwrap.dedent(
    """
    from airflow.sdk import DAG, Param, chain

    from payments_platform import pipeline
    from payments_platform.profiles import get_profile
    from payments_platform.sensors import raw_drop_sensor
    from payments_platform.stages import plan_run, should_run

    with DAG(
        dag_id="raw_drop_probe",
        schedule=None,
        params={
            "date": Param(None, type=["null", "string"]),
            "from_stage": Param("batch", enum=list(pipeline.STAGES)),
            "indexes": Param(list(pipeline.BUSINESS_INDEXES), type="array"),
        },
    ) as dag:
        plan = plan_run()
        chain(
            should_run.override(task_id="should_run")(plan, "batch"),
            raw_drop_sensor(get_profile(), plan["ready_marker"], task_id="wait_for_raw_drops"),
        )
    """
)

RUNNER = textwrap.dedent(
    """
    import datetime as dt, json, sys
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=sys.argv[1])
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["raw_drop_probe"]
    run = dag.test(logical_date=dt.datetime.fromisoformat(sys.argv[2]), run_conf=json.loads(sys.argv[3]))
    print("STATES=" + json.dumps({ti.task_id: str(ti.state) for ti in run.get_task_instances()}))
    """
)


def private_airflow_env(tmp_path: Path) -> dict[str, str]:
    """A copy of the project's Airflow database in ``tmp_path`` (nothing written to .local/)."""
    home = tmp_path / "airflow"
    if not home.is_dir():
        home.mkdir()
        with (
            sqlite3.connect(PROJECT_ROOT / ".local" / "airflow" / "airflow.db") as source,
            sqlite3.connect(home / "airflow.db") as copy,
        ):
            source.backup(copy)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAYMENTS_")}
    return env | {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "PAYMENTS_PROFILE": "local",
        "PAYMENTS_LOCAL_DIR": str(tmp_path / "local"),
    }


def run_probe(tmp_path: Path, day: str, conf: dict) -> dict[str, str]:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "raw_drop_probe.py").write_text(PROBE_DAG)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(dags / "raw_drop_probe.py"), f"{day}T00:00:00+00:00", json.dumps(conf)],
        env=private_airflow_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    [line] = [line for line in result.stdout.splitlines() if line.startswith("STATES=")] or [result.stdout + result.stderr]
    return json.loads(line.removeprefix("STATES="))


@pytest.mark.skipif(not (PROJECT_ROOT / ".local" / "airflow" / "airflow.db").is_file(), reason="run scripts/setup.sh first")
def test_dag_run_of_a_past_day_waits_on_that_days_drops_and_a_later_stage_skips_the_wait(tmp_path):
    raw_uri = str(tmp_path / "local" / "lake" / "raw")
    mark_ready(raw_uri, PLAN_DAY)  # only the planned day is ready, not the run's interval day
    states = run_probe(tmp_path, INTERVAL_DAY, {"date": PLAN_DAY})
    assert states == {"plan_run": "success", "should_run": "success", "wait_for_raw_drops": "success"}

    # No drop at all for the day: a run from the aggregate stage does not wait for one.
    states = run_probe(tmp_path, "2026-11-22", {"date": "2026-11-01", "from_stage": "aggregate"})
    assert states == {"plan_run": "success", "should_run": "skipped", "wait_for_raw_drops": "skipped"}
