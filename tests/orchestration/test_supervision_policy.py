"""Stream health assessment and the restart budget with exponential backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from payments_platform.stream_control import RestartState, assess_health, restart_decision

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_fresh_metrics_are_healthy():
    health = assess_health(
        {
            "committed_at": (NOW - timedelta(seconds=20)).isoformat(),
            "lag": {"payments.transactions": {"0": 10, "1": 5}},
            "lag_total": 15,
        },
        NOW,
        120,
        1000,
    )
    assert health.healthy and health.freshness_s == 20 and health.total_lag == 15


def test_stale_and_lagging_metrics_name_both_problems():
    health = assess_health(
        {
            "committed_at": (NOW - timedelta(minutes=10)).isoformat(),
            "lag": {"payments.transactions": {"0": 5000}},
            "lag_total": 5000,
        },
        NOW,
        120,
        1000,
    )
    assert not health.healthy
    assert health.problems == ["last micro-batch committed 600s ago (limit 120s)", "consumer lag 5000 records (limit 1000)"]


def test_missing_metrics_are_unhealthy():
    assert assess_health(None, NOW, 120, 1000).problems == ["no micro-batch metrics yet"]


def test_restart_budget_and_backoff():
    window, base = timedelta(hours=1), timedelta(minutes=2)
    state = RestartState()
    assert restart_decision(state, NOW, 3, window, base) == (True, "restart 1 of 3 in the window")
    state.restarts.append((NOW - timedelta(minutes=1)).isoformat())
    allowed, why = restart_decision(state, NOW, 3, window, base)
    assert not allowed and "backing off" in why
    state.restarts[-1] = (NOW - timedelta(minutes=3)).isoformat()
    assert restart_decision(state, NOW, 3, window, base)[0], "2 minutes of backoff after one restart"
    state.restarts.append((NOW - timedelta(minutes=3)).isoformat())
    allowed, why = restart_decision(state, NOW, 3, window, base)
    assert not allowed and "next allowed after 240s" in why, "backoff doubles"
    state.restarts.append((NOW - timedelta(minutes=10)).isoformat())
    assert restart_decision(state, NOW, 3, window, base) == (False, "restart budget spent: 3 restarts in the last 1:00:00")
    old = RestartState([(NOW - timedelta(hours=2)).isoformat()] * 5)
    assert restart_decision(old, NOW, 3, window, base)[0], "restarts outside the window do not count"


def test_an_idle_heartbeat_keeps_a_stream_on_silent_topics_healthy():
    """No record for an hour (a quiet night): the last batch is old, but the app says it is idle."""
    batch = {"committed_at": (NOW - timedelta(hours=1)).isoformat(), "lag_total": 0}
    heartbeat = {"heartbeat_at": (NOW - timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lag_total": 0}
    health = assess_health(batch, NOW, 120, 1000, heartbeat=heartbeat)
    assert health.healthy and health.freshness_s == 8 and health.problems == []


def test_a_stale_heartbeat_does_not_hide_a_dead_stream():
    batch = {"committed_at": (NOW - timedelta(hours=1)).isoformat(), "lag_total": 0}
    heartbeat = {"heartbeat_at": (NOW - timedelta(minutes=30)).isoformat(), "lag_total": 0}
    health = assess_health(batch, NOW, 120, 1000, heartbeat=heartbeat)
    assert not health.healthy
    assert health.problems == ["last micro-batch or idle heartbeat 1800s ago (limit 120s)"]


def test_lag_is_judged_on_the_newer_of_batch_and_heartbeat():
    """An idle app with records waiting is stuck; an old heartbeat's lag no longer counts."""
    heartbeat = {"heartbeat_at": (NOW - timedelta(seconds=5)).isoformat(), "lag_total": 4000}
    batch = {"committed_at": (NOW - timedelta(seconds=60)).isoformat(), "lag_total": 0}
    assert assess_health(batch, NOW, 120, 1000, heartbeat=heartbeat).problems == ["consumer lag 4000 records (limit 1000)"]
    old_heartbeat = {"heartbeat_at": (NOW - timedelta(seconds=90)).isoformat(), "lag_total": 4000}
    assert assess_health(batch, NOW, 120, 1000, heartbeat=old_heartbeat).healthy


def test_a_heartbeat_alone_is_enough_after_a_restart_with_nothing_to_read():
    heartbeat = {"heartbeat_at": (NOW - timedelta(seconds=3)).isoformat(), "lag_total": 0}
    assert assess_health(None, NOW, 120, 1000, heartbeat=heartbeat).healthy


# --- lag alone is not death ---------------------------------------------------------------------


def test_a_stream_that_commits_while_it_lags_is_catching_up_not_stalled():
    batch = {"committed_at": (NOW - timedelta(seconds=30)).isoformat(), "lag_total": 0}
    health = assess_health(batch, NOW, 120, 1000, broker_lag=250_000)
    assert not health.healthy and health.problems == ["consumer lag 250000 records (limit 1000)"]
    assert health.committing and not health.stalled


def test_records_waiting_while_no_batch_commits_is_stalled_even_with_fresh_heartbeats():
    batch = {"committed_at": (NOW - timedelta(minutes=10)).isoformat(), "lag_total": 0}
    heartbeat = {"heartbeat_at": (NOW - timedelta(seconds=5)).isoformat(), "lag_total": 4000}
    health = assess_health(batch, NOW, 120, 1000, heartbeat=heartbeat)
    assert not health.committing and health.stalled


def test_a_stale_stream_is_stalled_whatever_its_lag():
    batch = {"committed_at": (NOW - timedelta(minutes=10)).isoformat(), "lag_total": 0}
    assert assess_health(batch, NOW, 120, 1000, broker_lag=0).stalled
    assert assess_health(None, NOW, 120, 1000).stalled


def test_offsets_below_the_topics_earliest_are_their_own_problem():
    batch = {"committed_at": (NOW - timedelta(seconds=30)).isoformat(), "lag_total": 0}
    lost = {"partitions": [{"topic": "payments.transactions", "partition": 1, "consumed": 40, "earliest": 100, "lost": 60}]}
    health = assess_health(batch, NOW, 120, 1000, broker_lag=0, lost={**lost, "total": 60})
    assert health.lost_records == 60 and not health.healthy
    assert health.problems == [
        "offsets below what Kafka still keeps: payments.transactions[1] resumes at 40, earliest is 100 (60 records lost)"
    ]


# --- reconcile: restarts, pages once per incident, never with data loss allowed ---------------------


class FakeController:
    """Records what the supervisor asked of the stream job."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def status(self):
        from payments_platform.stream_control import StreamStatus

        return StreamStatus(running=True, reference="1")

    def stop(self):
        from payments_platform.stream_control import StreamStatus

        self.calls.append("stop")
        return StreamStatus(running=False, detail="stopped")

    def start(self):
        from payments_platform.stream_control import StreamStatus

        self.calls.append("start")
        return StreamStatus(running=True, reference="2")


@pytest.fixture
def supervisor(tmp_path, monkeypatch):
    """(reconcile(inspection, budget=...), controller, pages()) on a local profile in ``tmp_path``."""
    from payments_platform import supervision
    from payments_platform.profiles import load_profile

    monkeypatch.setenv("PAYMENTS_PROFILE", "local")
    monkeypatch.setenv("PAYMENTS_LOCAL_DIR", str(tmp_path))
    load_profile.cache_clear()
    controller = FakeController()
    monkeypatch.setattr(supervision, "get_stream_controller", lambda profile=None: controller)
    monkeypatch.setattr(supervision, "get_current_context", lambda: {"params": {"restart_backoff_s": 120}})

    def reconcile(inspection: dict, budget: str = "3") -> dict:
        return supervision.reconcile_stream.function(inspection, budget)

    def pages() -> list[dict]:
        log = tmp_path / "oncall.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

    yield reconcile, controller, pages
    load_profile.cache_clear()


def inspection(**overrides) -> dict:
    base = {
        "running": True,
        "healthy": True,
        "stalled": False,
        "committing": True,
        "problems": [],
        "lost_records": 0,
        "lost_partitions": [],
        "action": None,
    }
    return base | overrides


def test_a_lagging_stream_that_commits_is_not_restarted_and_pages_once(supervisor):
    reconcile, controller, pages = supervisor
    lagging = inspection(healthy=False, problems=["consumer lag 250000 records (limit 100000)"])
    first, second = reconcile(lagging), reconcile(lagging)
    assert controller.calls == [], "catching up: no restart"
    assert first["did"] == "paged" and second["did"] == "nothing"
    [page] = pages()
    assert (page["severity"], page["subject"]) == ("warning", "streaming index job lagging (catching up)")
    assert "docs/runbook.md#stream-lagging" in page["body"]


def test_an_unhealthy_stream_in_backoff_pages_once_per_incident(supervisor):
    reconcile, controller, pages = supervisor
    stalled = inspection(healthy=False, stalled=True, committing=False, problems=["last micro-batch committed 600s ago"])
    assert reconcile(stalled)["did"] == "restarted"
    assert controller.calls == ["stop", "start"] and pages() == []
    # Still dead on the next runs, within the 2-minute backoff (and the startup grace does not hide
    # a dead job: not running): one page, not one per run.
    dead = inspection(running=False, healthy=False, stalled=True, committing=False, problems=["no micro-batch metrics yet"])
    results = [reconcile(dead) for _ in range(3)]
    assert [result["did"] for result in results] == ["paged", "nothing", "nothing"]
    assert [page["subject"] for page in pages()] == ["streaming index job unhealthy and not restarted"]
    assert controller.calls == ["stop", "start"], "no restart during the backoff"

    assert reconcile(inspection())["closed_incident"] == "unhealthy"  # healthy again: the incident ends
    reconcile(dead)
    assert len(pages()) == 2, "a new incident pages again"


def test_data_lost_to_retention_pages_its_own_incident_and_is_never_restarted(supervisor):
    reconcile, controller, pages = supervisor
    lost = inspection(
        running=False,
        healthy=False,
        stalled=True,
        lost_records=60,
        lost_partitions=[{"topic": "payments.transactions", "partition": 1, "consumed": 40, "earliest": 100, "lost": 60}],
        problems=["offsets below what Kafka still keeps: payments.transactions[1] resumes at 40, earliest is 100"],
    )
    assert [reconcile(lost)["did"] for _ in range(2)] == ["paged", "nothing"]
    assert controller.calls == [], "not started: it would fail on the lost offsets (and is never allowed to skip them)"
    [page] = pages()
    assert page["subject"] == "streaming index job: input offsets gone past Kafka retention"
    assert page["details"]["incident"] == "data_loss" and page["details"]["lost_partitions"][0]["lost"] == 60
    assert "docs/runbook.md#stream-lost-data" in page["body"]


@pytest.mark.kafka
def test_the_health_check_reads_lost_offsets_from_the_broker_and_the_supervisor_pages_instead_of_restarting(
    supervisor, kafka_connection, monkeypatch, tmp_path
):
    """The stream stopped at offset 2 of a partition whose log now starts at 3 (retention)."""
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from payments_platform import lake_io, supervision
    from payments_platform.kafka_topics import provision_topics
    from payments_platform.stream_control import StreamStatus
    from tests.orchestration.test_kafka_topics import delete_records, profile_with

    reconcile, controller, pages = supervisor
    profile = profile_with(prefix=f"lost-offsets-{tmp_path.name}")
    monkeypatch.setattr(supervision, "get_profile", lambda: profile)
    monkeypatch.setattr(controller, "status", lambda: StreamStatus(running=False))
    monkeypatch.setattr(
        supervision,
        "get_current_context",
        lambda: {"params": {"max_staleness_s": 120, "max_lag": 100_000, "restart_backoff_s": 0, "action": None}},
    )
    provision_topics(profile)
    topic = profile.kafka.transactions_topic
    producer = Producer({"bootstrap.servers": kafka_connection})
    for n in range(6):
        producer.produce(topic, key=f"k{n}".encode(), value=b"{}", partition=0)
    assert producer.flush(10) == 0
    delete_records(AdminClient({"bootstrap.servers": kafka_connection}), [TopicPartition(topic, 0, 3)])
    committed = (datetime.now(UTC) - timedelta(hours=30)).isoformat()
    lake_io.write_json(
        lake_io.join(profile.lake.metrics_uri, "stream", "stream_index", "latest.json"),
        {"committed_at": committed, "lag_total": 0, "sources": [{"end_offset": {topic: {"0": 2}}}]},
    )

    found = supervision.inspect_stream.function()
    assert (found["running"], found["lost_records"]) == (False, 1)
    assert found["lost_partitions"] == [{"topic": topic, "partition": 0, "consumed": 2, "earliest": 3, "lost": 1}]
    assert reconcile(found)["did"] == "paged"
    assert controller.calls == [], "a job that would fail on lost offsets is not started"
    assert [page["details"]["incident"] for page in pages()] == ["data_loss"]
