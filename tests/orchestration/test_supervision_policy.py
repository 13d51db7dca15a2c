"""Stream health assessment and the restart budget with exponential backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
