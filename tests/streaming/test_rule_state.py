"""The stream's stateful rule signals (pure Python), checked against the batch definitions."""

from __future__ import annotations

import json
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


class FakeGroupState:
    """What the rule operator function uses of Spark's GroupState."""

    def __init__(self, blob: bytes | None = None) -> None:
        self.exists, self.get, self.updated = blob is not None, (blob,), None

    def getCurrentWatermarkMs(self) -> int:
        return 0

    def update(self, value) -> None:
        self.updated = value


def operator_row(kind: str, txn: str, t_s: float, amount: str = "1.00") -> dict:
    """An input row of the rule operator (row_kind txn or signal) for user u-1, card tok_a."""
    import pandas as pd

    return {"row_kind": kind, "event_time": pd.Timestamp(T + int(t_s * 1000), unit="ms", tz="UTC"), "transaction_id": txn,
            "user_id": "u-1", "card_token": "tok_a", "country": "US", "device_id": "d-1", "amount": Decimal(amount),
            "currency": "USD", "kafka_partition": 0, "kafka_offset": int(t_s)}  # fmt: skip


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


LOOKBACK = RuleWindows.from_rules(load_rules(), lookback_seconds=15 * 60)  # late bound 10 min + signal window 5 min


def test_eviction_keeps_state_bounded_and_round_trips():
    state = BucketState()
    for i in range(100):
        add(state, i * 60, f"t{i}", device=f"d{i % 3}")
    state.evict(T + 100 * 60_000, LOOKBACK)
    # Later rows look up from 100 - 15 = 85 min on: cards keep the 5-minute window before that,
    # the user's history from 85 min plus its newest entry before (84 min).
    assert [e[0] for e in state.cards["tok_a"]] == [T + m * 60_000 for m in range(80, 100)]
    assert [e[0] for e in state.users["u-1"]] == [T + m * 60_000 for m in range(84, 100)]
    restored = BucketState.load(state.dump())
    assert (restored.cards, restored.users, restored.devices) == (state.cards, state.users, state.devices)
    state.evict(T + 150 * 60_000, LOOKBACK)  # nothing newer arrived: only the user's last entry can still matter
    assert state.cards == {}
    assert [e[0] for e in state.users["u-1"]] == [T + 99 * 60_000]
    state.evict(T + 300 * 60_000, LOOKBACK)  # too old for any geo jump
    assert state.users == {}


def test_eviction_changes_no_signal_a_later_row_can_ask_for():
    """Rows of later batches carry event times down to watermark - lookback (a transaction up to
    the late bound before its produce time, a signal row its transaction's time). Their signals
    after eviction equal those from the whole history: card windows and the previous transaction."""
    import copy

    full = BucketState()
    for i in range(100):  # a card used every minute from 0 to 99 min, one user, US
        add(full, i * 60, f"t{i}", amount="1.00")
    add(full, 30 * 60 + 1, "abroad", card="tok_b", user="u-2", country="FR")  # u-2's only entry before 85 min
    evicted = copy.deepcopy(full)
    evicted.evict(T + 100 * 60_000, LOOKBACK)
    for minute in (85, 86, 90, 99, 100):
        t = T + minute * 60_000
        for card, user, country in (("tok_a", "u-1", "US"), ("tok_b", "u-2", "US")):
            late = f"late-{minute}-{user}"
            expected = full.signals(t, late, card, user, country, LOOKBACK)
            assert evicted.signals(t, late, card, user, country, LOOKBACK) == expected, (minute, user)
    # The same from a state that went through a micro-batch boundary (keys packed, evicted with the slack).
    packed = BucketState.load(copy.deepcopy(full).dump())
    packed.evict(T + 100 * 60_000, LOOKBACK)
    restored = BucketState.load(packed.dump())
    for minute in (85, 86, 90, 99, 100):
        t = T + minute * 60_000
        for card, user, country in (("tok_a", "u-1", "US"), ("tok_b", "u-2", "US")):
            late = f"late-{minute}-{user}"
            assert restored.signals(t, late, card, user, country, LOOKBACK) == full.signals(
                t, late, card, user, country, LOOKBACK
            )
    geo = evicted.signals(T + 86 * 60_000, "x", "tok_b", "u-2", "US", LOOKBACK)["prev_country_minutes"]
    assert 55 < geo < 56  # a geo jump (<= 60 min) to an entry 55 minutes before the watermark's lookback
    assert evicted.signals(T + 86 * 60_000, "x", "tok_a", "u-1", "US", LOOKBACK)["card_count_5m"] == 5  # 82-86 min


def test_card_key_falls_back_to_the_user_like_the_batch():
    assert card_key(None, "u-9") == "user:u-9"
    assert card_key("tok_x", "u-9") == "tok_x"


def test_state_keeps_amounts_as_exact_text_and_unpickles_with_the_gc_paused(monkeypatch):
    """Decimal objects made pickling a bucket twice as slow, and the cyclic GC walking the
    unpickled tuples over and over made loading it 2.5x slower (bench/bench_rule_state.py)."""
    import gc

    import pandas as pd

    from spark_apps.streaming import rule_state

    state = BucketState()
    add(state, 0, "t0", amount="1.10")
    assert state.cards["tok_a"][0][2] == "1.10"
    old_style = BucketState(cards={"tok_a": [(T - 1000, "old", Decimal("2.50"), "USD")]})  # state written by earlier code
    assert json.loads(old_style.signals(T, "t1", "tok_a", "u-1", "US", WINDOWS)["card_window_json"])[0]["amount"] == 2.5

    gc_during_load = []
    original_load = rule_state.BucketState.load
    monkeypatch.setattr(
        rule_state.BucketState,
        "load",
        classmethod(lambda cls, blob: gc_during_load.append(gc.isenabled()) or original_load(blob)),
    )
    group_state = FakeGroupState(state.dump())
    frame = pd.DataFrame([operator_row("txn", "t1", 1, amount="3.00")])
    out = list(rule_state.make_rule_state_function(WINDOWS)(("b",), iter([frame]), group_state))
    assert out[0]["velocity_count"].tolist() == [2]
    assert gc_during_load == [False] and gc.isenabled()
    assert [e[2] for e in BucketState.load(group_state.updated[0]).cards["tok_a"]] == ["1.10", "3.00"]


def test_a_batch_unpickles_only_the_keys_it_touches_or_evicts(monkeypatch):
    """Each card's and user's entries are pickled on their own: a micro-batch pays for the keys it
    reads, adds to or evicts from, not for the whole state (bench/bench_rule_state.py)."""
    import pickle

    from spark_apps.streaming import rule_state

    state = BucketState()
    for i in range(50):
        add(state, 0, f"old{i}", card=f"tok_old{i}", user=f"u-old{i}")  # 0 min
        add(state, 930, f"new{i}", card=f"tok_new{i}", user=f"u-new{i}")  # 15.5 min
    blob = state.dump()
    loads = []
    original_loads = pickle.loads
    monkeypatch.setattr(rule_state.pickle, "loads", lambda data: loads.append(len(data)) or original_loads(data))
    batch = BucketState.load(blob)
    add(batch, 1000, "t1", card="tok_new7", user="u-new7")  # 16.7 min
    # Earliest lookup 21 min, card floor 16 min: the old cards' entries are past it by more than the
    # slack (a minute), the other new cards' by less, so they stay packed; every user keeps its
    # only (newest) entry. The touched card is evicted exactly.
    batch.evict(T + 36 * 60_000, LOOKBACK)
    assert len(loads) == 1 + 3 + 50  # the bucket, the touched card / user / devices, the 50 old cards
    assert set(batch.cards) == {f"tok_new{i}" for i in range(50)}
    restored = BucketState.load(batch.dump())
    assert [e[1] for e in restored.cards["tok_new7"]] == ["t1"]
    assert [e[1] for e in restored.cards["tok_new3"]] == ["new3"]


def test_state_written_by_earlier_code_is_read():
    """Buckets pickled as three dicts of entry tuples (Decimal amounts, devices by day) still load."""
    import pickle

    old_blob = pickle.dumps(
        (
            {"tok_a": [(T - 1000, "t0", Decimal("2.50"), "USD")]},
            {"u-1": [(T - 1000, "t0", "FR")]},
            {"u-1": {T // 86_400_000: {"d-1": T - 1000, "d-2": T - 500}}},
        )
    )
    state = BucketState.load(old_blob)
    signals = state.signals(T, "t1", "tok_a", "u-1", "US", WINDOWS)
    assert json.loads(signals["card_window_json"]) == [{"amount": 2.5, "currency": "USD", "t_ms": T - 1000}]
    assert (signals["velocity_count"], signals["prev_country_minutes"], signals["distinct_devices"]) == (1, 1000 / 60_000, 2)
    assert BucketState.load(state.dump()).cards["tok_a"] == [(T - 1000, "t0", "2.50", "USD")]


def test_a_signal_row_gets_rule_values_only_when_its_transaction_was_in_an_earlier_batch():
    """The writer reads a signal row's rule values only for a transaction indexed in an earlier
    batch (an updated alert). With the transaction in the same batch its own row is scored, so
    the operator does not compute them for the signal row."""
    import pandas as pd

    from spark_apps.streaming.rule_state import SIGNAL_NAMES, make_rule_state_function

    earlier = BucketState()
    add(earlier, 0, "t0")  # indexed in an earlier batch
    rows = [operator_row("signal", "t1", 1), operator_row("txn", "t1", 1), operator_row("signal", "t0", 0)]
    out = list(make_rule_state_function(WINDOWS)(("b",), iter([pd.DataFrame(rows)]), FakeGroupState(earlier.dump())))[0]
    by_row = {(r["row_kind"], r["transaction_id"]): r for r in out.to_dict("records")}
    assert set(by_row) == {("txn", "t1"), ("signal", "t1"), ("signal", "t0")}
    assert (by_row[("txn", "t1")]["velocity_count"], by_row[("txn", "t1")]["card_count_1m"]) == (2, 2)
    assert all(pd.isna(by_row[("signal", "t1")][name]) for name in SIGNAL_NAMES)
    signal_t0 = by_row[("signal", "t0")]
    assert (signal_t0["velocity_count"], signal_t0["distinct_devices"]) == (1, 1)
    assert json.loads(signal_t0["card_window_json"]) == [{"amount": 1.0, "currency": "USD", "t_ms": T}]
