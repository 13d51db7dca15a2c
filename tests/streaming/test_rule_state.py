"""The stream's stateful rule signals (pure Python), checked against the batch definitions."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal

from spark_apps.fraud_rules import load_rules
from spark_apps.streaming.rule_state import BucketState, RuleWindows, card_key

WINDOWS = RuleWindows.from_rules(load_rules())
T = 1_790_000_000_000  # ms


def add(
    state: BucketState,
    t_s: float,
    txn: str,
    card: str = "tok_a",
    user: str = "u-1",
    country: str = "US",
    device: str = "d-1",
    amount: str = "1.00",
) -> None:
    state.add(T + int(t_s * 1000), txn, card, user, country, device, Decimal(amount), "USD")


def test_card_velocity_counts_the_trailing_window_including_the_event():
    state = BucketState()
    for i, t in enumerate((0, 20, 40, 59)):
        add(state, t, f"t{i}")
    signals = state.signals(T + 59_000, "t3", "tok_a", "u-1", "US", WINDOWS)
    assert (signals["velocity_count"], signals["card_count_1m"], signals["card_count_5m"]) == (4, 4, 4)
    # 60 s after t0 the window (t-60s, t] no longer holds t0.
    assert state.signals(T + 60_000, "t4", "tok_a", "u-1", "US", WINDOWS)["velocity_count"] == 3


def test_out_of_order_event_counts_only_earlier_events():
    state = BucketState()
    add(state, 30, "later")
    add(state, 10, "earlier")  # arrives after "later"
    assert state.signals(T + 10_000, "earlier", "tok_a", "u-1", "US", WINDOWS)["velocity_count"] == 1


def test_duplicate_add_is_ignored():
    state = BucketState()
    add(state, 0, "t1")
    add(state, 0, "t1")
    assert state.signals(T, "t1", "tok_a", "u-1", "US", WINDOWS)["velocity_count"] == 1


def test_geo_jump_minutes_since_previous_transaction_in_another_country():
    state = BucketState()
    add(state, 0, "home", country="US")
    add(state, 1200, "abroad", country="FR")
    assert state.signals(T + 1_200_000, "abroad", "tok_a", "u-1", "FR", WINDOWS)["prev_country_minutes"] == 20.0
    assert state.signals(T, "home", "tok_a", "u-1", "US", WINDOWS)["prev_country_minutes"] is None


def test_distinct_devices_so_far_today():
    state = BucketState()
    for i in range(4):
        add(state, i * 100, f"t{i}", device=f"d{i}")
    assert state.signals(T + 200_000, "t2", "tok_a", "u-1", "US", WINDOWS)["distinct_devices"] == 3
    assert state.signals(T + 300_000, "t3", "tok_a", "u-1", "US", WINDOWS)["distinct_devices"] == 4


def test_card_window_for_card_testing():
    state = BucketState()
    add(state, 0, "t0", amount="1.00")
    add(state, 30, "t1", amount="2.50")
    window = state.signals(T + 30_000, "t1", "tok_a", "u-1", "US", WINDOWS)["card_window_json"]
    entries = json.loads(window, parse_float=Decimal)
    assert [(a["amount"], a["currency"], a["t_ms"]) for a in entries] == [
        (Decimal("1.00"), "USD", T),
        (Decimal("2.50"), "USD", T + 30_000),
    ]
    assert state.signals(T, "t0", "tok_b", "u-2", "US", WINDOWS)["card_window_json"] == "[]"  # no history


def test_eviction_keeps_state_bounded_and_round_trips():
    state = BucketState()
    for i in range(100):
        add(state, i * 60, f"t{i}", device=f"d{i % 3}")
    state.evict(T + 100 * 60_000, WINDOWS)
    # Cards keep 5 minutes, users keep the geo-jump window (60 min) behind the watermark.
    assert len(state.cards["tok_a"]) == 0 or min(e[0] for e in state.cards["tok_a"]) >= T + 95 * 60_000
    assert min(e[0] for e in state.users["u-1"]) >= T + 40 * 60_000
    restored = BucketState.load(state.dump())
    assert pickle.dumps(restored.users) == pickle.dumps(state.users)


def test_card_key_falls_back_to_the_user_like_the_batch():
    assert card_key(None, "u-9") == "user:u-9"
    assert card_key("tok_x", "u-9") == "tok_x"
