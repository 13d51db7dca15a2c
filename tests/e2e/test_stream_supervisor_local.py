"""``payments_stream_supervisor`` under the local profile: start, kill -9, restart, stop."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


@pytest.fixture
def supervised(tmp_path, monkeypatch):
    from devtools.broker import EmbeddedBroker
    from payments_platform.profiles import load_profile

    monkeypatch.setenv("PAYMENTS_PROFILE", "local")
    monkeypatch.setenv("PAYMENTS_LOCAL_DIR", str(tmp_path))
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:  # no topics: the deploy action makes them
        monkeypatch.setenv("PAYMENTS_KAFKA_BOOTSTRAP", broker.bootstrap)
        connection = {"conn_type": "kafka", "extra": {"bootstrap.servers": broker.bootstrap}}
        monkeypatch.setenv("AIRFLOW_CONN_KAFKA_PAYMENTS", json.dumps(connection))
        load_profile.cache_clear()
        profile = load_profile("local")
        from payments_platform.stream_control import LocalStreamController

        controller = LocalStreamController(profile)
        yield controller
        controller.stop()
    load_profile.cache_clear()


def supervise(**conf):
    from devtools.local_runner import run_dag_locally

    dag_run = run_dag_locally("payments_stream_supervisor", "2026-11-21", {"restart_backoff_s": 0, **conf})
    assert dag_run.state == "success"
    return dag_run


def wait_for_heartbeat(metrics_uri: str, timeout_s: float = 300.0) -> dict:
    from payments_platform.stream_control import latest_heartbeat

    deadline = time.monotonic() + timeout_s
    while (heartbeat := latest_heartbeat(metrics_uri)) is None:
        assert time.monotonic() < deadline, "the idle stream job wrote no heartbeat"
        time.sleep(1)
    return heartbeat


def reconcile_result(dag_run) -> dict:
    (ti,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == "reconcile_stream"]
    return ti.xcom_pull(task_ids="reconcile_stream")


def topics_on_the_broker(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str]]:
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10).topics
    if not any(n in metadata for n in names):
        return {}
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names if n in metadata])
    retention = {resource.name: future.result()["retention.ms"].value for resource, future in futures.items()}
    return {n: (len(metadata[n].partitions), retention[n]) for n in names if n in metadata}


def test_supervisor_deploys_restarts_a_killed_job_and_stops_on_request(supervised):
    kafka = supervised.profile.kafka
    topics = [*kafka.input_topics, *kafka.output_topics]
    bootstrap = os.environ["PAYMENTS_KAFKA_BOOTSTRAP"]
    assert not supervised.status().running and topics_on_the_broker(bootstrap, topics) == {}
    deployed = reconcile_result(supervise(action="deploy"))
    assert deployed["did"] == "deploy" and deployed["topics"]["created"] == topics
    # Through the Kafka provider, as the profile says: 2 partitions, kept without a time limit locally.
    assert topics_on_the_broker(bootstrap, topics) == dict.fromkeys(topics, (2, "-1"))
    started = supervised.status()
    assert started.running, "the job started"
    assert f"--bootstrap {os.environ['PAYMENTS_KAFKA_BOOTSTRAP']}" in " ".join(supervised.command())

    # Silent topics: no micro-batch ever commits, but the idle app's heartbeat keeps it healthy.
    heartbeat = wait_for_heartbeat(supervised.profile.lake.metrics_uri)
    assert heartbeat["lag_total"] == 0
    assert reconcile_result(supervise()) == {"did": "nothing", "detail": "healthy"}
    (inspect,) = [ti for ti in supervise().get_task_instances() if ti.task_id == "inspect_stream"]
    inspection = inspect.xcom_pull(task_ids="inspect_stream")
    assert inspection["total_lag"] == 0 and inspection["lag_by_topic"] == dict.fromkeys(kafka.input_topics, 0)
    assert supervised.status().reference == started.reference

    os.killpg(os.getpgid(int(started.reference)), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while supervised.status().running and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not supervised.status().running

    supervise()
    restarted = supervised.status()
    assert restarted.running and restarted.reference != started.reference, "killed job restarted"

    supervise(action="stop")
    assert not supervised.status().running
    supervise()
    assert not supervised.status().running, "a manual stop holds until restart or deploy"
    supervise(action="restart")
    assert supervised.status().running
