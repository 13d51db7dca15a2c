"""Stateful fraud-rule signals for the stream: ``applyInPandasWithState`` keyed by a user bucket.

The batch job computes the rule signals with trailing windows over a whole day
(:func:`spark_apps.fraud_rules.with_rule_signals`); the stream computes the same
numbers incrementally from state, so both flag the same transactions:

* ``velocity_count`` / ``card_count_1m`` / ``card_count_5m``: the card's transactions
  in the trailing velocity window / 60 s / 5 min ending at this event, itself included;
* ``card_window_json``: the card's transactions in the card-testing window as a JSON
  array of ``{"amount", "currency", "t_ms"}`` (:data:`CARD_WINDOW_SCHEMA`); the
  micro-batch converts them with the current FX rates and counts the small ones
  (``small_count``), so FX stays refreshable reference data. Text, not an array of
  structs: PySpark converts nested values from pandas element by element (that
  conversion was a quarter of the operator's Python time at 1,000 msg/s);
* ``prev_country_minutes``: minutes since the user's previous transaction (by event
  time) if it was in another country, else null;
* ``distinct_devices``: the user's distinct devices first seen on this UTC day at or
  before this event.

Keys: rows are grouped by ``rule_bucket`` = a hash of user_id modulo the configured
bucket count, so each micro-batch calls the function a handful of times instead of
once per user (per-group pandas overhead dominates otherwise). Card state lives in
the user's bucket, which is exact when a card belongs to one user (card tokens are
issued per account; transactions without a card count per user, as in the batch).

Input row kinds: ``txn`` (a deduplicated, on-time transaction: signals are computed
and the event joins the state) and ``signal`` (an ML output matched to a
transaction: the signals are recomputed from state for that transaction, which is
already part of it, so a late-arriving model score can be combined with the rules).

State is one pickled blob per bucket. After each batch, what no later row can use is
evicted (:meth:`BucketState.evict`): card entries older than the card windows before the
earliest event time a later row can carry (watermark - late bound - signal window), user
history before that time except each user's newest entry, and device days before it. State
size follows the event rate, not the run time.
Outputs are a deterministic function of (state, input), which makes a replayed
micro-batch produce the same rows.
"""

from __future__ import annotations

import bisect
import gc
import io
import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pandas as pd

import spark_apps.streaming.compat  # noqa: F401 - fixes applyInPandasWithState in the Python workers

RULE_STATE_SCHEMA = "blob binary"
RULE_SIGNAL_COLUMNS = (
    ("velocity_count", "int"),
    ("card_count_1m", "int"),
    ("card_count_5m", "int"),
    ("card_window_json", "string"),
    ("prev_country_minutes", "double"),
    ("distinct_devices", "int"),
)
SIGNAL_NAMES = tuple(name for name, _type in RULE_SIGNAL_COLUMNS)
CARD_WINDOW_SCHEMA = "array<struct<amount:decimal(18,2),currency:string,t_ms:bigint>>"  # of card_window_json
_MS_PER_DAY = 86_400_000
_EPOCH_UTC = pd.Timestamp(0, tz="UTC")


@dataclass(frozen=True)
class RuleWindows:
    """The rule windows, and ``lookback_ms``: how far below the watermark a later row's event time
    can be. Rows reach the operator only at or above the watermark of produce time, a transaction
    at most the late bound before its produce time, and a signal row carries its transaction's
    time, produced at most the signal window before the signal: lookback = late bound + signal window."""

    velocity_ms: int
    card_testing_ms: int
    geo_jump_ms: int
    lookback_ms: int = 0

    @classmethod
    def from_rules(cls, rules, lookback_seconds: int = 0) -> RuleWindows:
        return cls(
            rules.velocity_window_seconds * 1000,
            rules.card_testing_window_seconds * 1000,
            rules.geo_jump_max_minutes * 60_000,
            int(lookback_seconds) * 1000,
        )

    @property
    def card_retention_ms(self) -> int:
        return max(self.velocity_ms, self.card_testing_ms, 300_000)


class BucketState:
    """Per-bucket history: cards -> sorted [(t_ms, txn_id, amount text, currency)], users -> sorted
    [(t_ms, txn_id, country)] and users -> {day: {device: first t_ms}}."""

    def __init__(self, cards=None, users=None, devices=None) -> None:
        self.cards: dict[str, list[tuple]] = cards or {}
        self.users: dict[str, list[tuple]] = users or {}
        self.devices: dict[str, dict[int, dict[str, int]]] = devices or {}

    @classmethod
    def load(cls, blob: bytes | None) -> BucketState:
        return cls(*pickle.loads(blob)) if blob else cls()

    def dump(self) -> bytes:
        # Without the memo ("fast" mode; the state is acyclic dicts, lists and tuples): the memo
        # looked up every one of the state's objects (dump 0.98 -> 0.62 s for a 1,000 txn/s
        # bucket, the blob 30 -> 35 MB). pickle.loads reads both forms.
        out = io.BytesIO()
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.fast = True
        pickler.dump((self.cards, self.users, self.devices))
        return out.getvalue()

    def add(self, t_ms: int, txn_id: str, card: str, user: str, country, device, amount, currency) -> None:
        entries = self.cards.setdefault(card, [])
        if not _contains(entries, t_ms, txn_id):
            # The amount as its exact text: a Decimal per entry made pickling the state twice as slow.
            bisect.insort(entries, (t_ms, txn_id, None if amount is None else str(amount), currency))
        history = self.users.setdefault(user, [])
        if not _contains(history, t_ms, txn_id):
            bisect.insort(history, (t_ms, txn_id, country or ""))
        if device:
            day = self.devices.setdefault(user, {}).setdefault(t_ms // _MS_PER_DAY, {})
            day[device] = min(day.get(device, t_ms), t_ms)

    def signals(self, t_ms: int, txn_id: str, card: str, user: str, country, windows: RuleWindows) -> dict:
        """RULE_SIGNAL_COLUMNS of a transaction at ``t_ms``, by name."""
        values = self.signal_values(t_ms, txn_id, card, user, country, windows)
        return dict(zip(SIGNAL_NAMES, values, strict=True))

    def signal_values(self, t_ms: int, txn_id: str, card: str, user: str, country, windows: RuleWindows) -> tuple:
        """(velocity_count, card_count_1m, card_count_5m, card_window_json, prev_country_minutes, distinct_devices)."""
        velocity = minute = five = 0
        amounts = []
        for entry in self.cards.get(card, ()):
            age = t_ms - entry[0]
            if age < 0:
                break  # sorted by time: the rest is later than this event
            velocity += age < windows.velocity_ms
            minute += age < 60_000
            five += age < 300_000
            if age < windows.card_testing_ms:
                amounts.append(_window_entry_json(entry))
        previous = None
        history = self.users.get(user)
        if history:
            # The user's newest transaction before this one in (event time, transaction id) order.
            index = bisect.bisect_left(history, (t_ms, txn_id))
            previous = history[index - 1] if index > 0 else None
        prev_minutes = None
        if previous is not None and previous[2] and country and previous[2] != country:
            prev_minutes = (t_ms - previous[0]) / 60_000
        day = self.devices.get(user, {}).get(t_ms // _MS_PER_DAY, {})
        devices = sum(1 for first in day.values() if first <= t_ms)
        return velocity, minute, five, "[" + ",".join(amounts) + "]", prev_minutes, devices

    def evict(self, watermark_ms: int, windows: RuleWindows) -> None:
        """Drop what no later row can see. Later rows look up from event times at or after
        ``earliest`` = watermark - lookback: a card entry matters within the card windows before
        that; a user's history only through its newest entry before a lookup, so of the entries
        before ``earliest`` only the newest is kept, and only while a geo jump to it is possible."""
        if watermark_ms <= 0:
            return
        earliest = watermark_ms - windows.lookback_ms
        card_floor = earliest - windows.card_retention_ms
        for card in list(self.cards):
            kept = self.cards[card][bisect.bisect_left(self.cards[card], (card_floor,)) :]
            if kept:
                self.cards[card] = kept
            else:
                del self.cards[card]
        geo_floor = earliest - windows.geo_jump_ms
        for user in list(self.users):
            history = self.users[user]
            first_kept = bisect.bisect_left(history, (earliest,))
            if first_kept > 0 and history[first_kept - 1][0] >= geo_floor:
                first_kept -= 1  # the newest entry before `earliest`: the previous one of later lookups
            if first_kept < len(history):
                self.users[user] = history[first_kept:]
            else:
                del self.users[user]
        day_floor = earliest // _MS_PER_DAY
        for user in list(self.devices):
            days = {d: v for d, v in self.devices[user].items() if d >= day_floor}
            if days:
                self.devices[user] = days
            else:
                del self.devices[user]

    def size(self) -> int:
        return sum(map(len, self.cards.values())) + sum(map(len, self.users.values()))


def _contains(entries: list[tuple], t_ms: int, txn_id: str) -> bool:
    """Whether the time-sorted ``entries`` hold (t_ms, txn_id, ...)."""
    index = bisect.bisect_left(entries, (t_ms, txn_id))
    return index < len(entries) and entries[index][0] == t_ms and entries[index][1] == txn_id


def _window_entry_json(entry: tuple) -> str:
    """One card history entry (t_ms, txn_id, amount, currency) as a CARD_WINDOW_SCHEMA element."""
    # The text of a Decimal (a Decimal in state written before amounts were kept as text) is an exact JSON number.
    amount = "null" if entry[2] is None else str(entry[2])
    return f'{{"amount":{amount},"currency":{json.dumps(entry[3])},"t_ms":{int(entry[0])}}}'


@contextmanager
def _gc_paused():
    """Python's cyclic GC off while a bucket's state is unpickled and updated: the state is
    hundreds of thousands of tuples, and each allocation burst set off collections that walk
    all of them again (measured: unpickling 0.65 s -> 0.26 s for a 1,000 txn/s bucket). The
    state must be released before the collector is back on, or its first collection walks it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def card_key(card_token, user_id: str) -> str:
    """Same grouping as fraud_rules.card_key_col: the card, else the user."""
    return card_token if isinstance(card_token, str) and card_token else f"user:{user_id}"


def make_rule_state_function(windows: RuleWindows):
    """The ``applyInPandasWithState`` function: input rows (row_kind, ...) -> the same rows + RULE_SIGNAL_COLUMNS."""

    def update(key: tuple, frames: Iterator[pd.DataFrame], state) -> Iterator[pd.DataFrame]:
        batch = pd.concat(list(frames), ignore_index=True)
        if batch.empty:
            return
        with _gc_paused():
            bucket = BucketState.load(state.get[0] if state.exists else None)
            event_time = pd.to_datetime(batch["event_time"], utc=True)
            batch["t_ms__"] = (event_time - _EPOCH_UTC) // pd.Timedelta(milliseconds=1)
            # Transactions join the state in event-time order before any signal is scored.
            batch["order__"] = (batch["row_kind"] != "txn").astype(int)
            batch = batch.sort_values(
                ["order__", "t_ms__", "transaction_id", "kafka_partition", "kafka_offset"], kind="mergesort"
            )
            t_ms = batch["t_ms__"].tolist()
            ids = batch["transaction_id"].tolist()
            users = batch["user_id"].tolist()
            cards = [card_key(c, u) for c, u in zip(batch["card_token"].tolist(), users, strict=True)]
            countries = batch["country"].tolist()
            is_txn = (batch["row_kind"] == "txn").tolist()
            devices, amounts, currencies = batch["device_id"].tolist(), batch["amount"].tolist(), batch["currency"].tolist()
            for i in range(len(ids)):
                if is_txn[i]:
                    bucket.add(t_ms[i], ids[i], cards[i], users[i], countries[i], devices[i], amounts[i], currencies[i])
            rows = [bucket.signal_values(t_ms[i], ids[i], cards[i], users[i], countries[i], windows) for i in range(len(ids))]
            bucket.evict(state.getCurrentWatermarkMs(), windows)
            state.update((bucket.dump(),))
            del bucket  # freed by reference counting while the collector is still off (see _gc_paused)
            signals = pd.DataFrame(rows, index=batch.index, columns=list(SIGNAL_NAMES))
        yield pd.concat([batch.drop(columns=["t_ms__", "order__"]), signals], axis=1)

    return update
