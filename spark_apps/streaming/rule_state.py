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
A signal row whose transaction is in the same micro-batch gets null signals: only the
transaction's row is scored then (the writer reads a signal row's rule values only for a
transaction indexed in an earlier batch), and computing them was half the rows' lookups.

State is one pickled value per bucket holding, per card / user, that key's entries pickled
on their own (:class:`PackedEntries`): a batch unpickles and pickles again only the keys it
touches, so its cost follows the batch more than the state. After each batch, what no later row can use is
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
from collections.abc import Iterator, Mapping
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
_NOT_READ = (None,) * len(SIGNAL_NAMES)  # the rule values of a signal row whose transaction is in the same batch
CARD_WINDOW_SCHEMA = "array<struct<amount:decimal(18,2),currency:string,t_ms:bigint>>"  # of card_window_json
_MS_PER_DAY = 86_400_000
# An untouched key is unpickled for eviction only once its oldest entry is this far past the
# floor, so it is rewritten about once a minute rather than every batch. Keeping older entries a
# little longer changes no signal: every lookup counts by its own window or takes the newest
# earlier entry.
EVICTION_SLACK_MS = 60_000
STATE_FORMAT = "rule-state-v2"  # first element of a bucket's pickled state (earlier code wrote three dicts)
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


class PackedEntries(Mapping):
    """key -> time-sorted list of entry tuples, kept between micro-batches as one pickled value per
    key next to the leading value of its first two entries (what :meth:`evict_where` checks). A
    batch unpickles only the keys it reads, adds to or evicts from, and pickles only those again:
    pickling a bucket's entries as one structure made every batch pay for every entry of the
    state (``bench/bench_rule_state.py``)."""

    def __init__(self, packed: dict | None = None, entries: dict | None = None) -> None:
        self._packed: dict[str, tuple] = packed if packed is not None else {}  # key -> (first, second, pickled entries)
        self._open: dict[str, list[tuple]] = {k: list(v) for k, v in (entries or {}).items() if v}

    def __getitem__(self, key: str) -> list[tuple]:
        entries = self._open.get(key)
        if entries is None:
            entries = self._open[key] = pickle.loads(self._packed[key][2])
        return entries

    def __iter__(self) -> Iterator[str]:
        yield from self._open
        yield from (key for key in self._packed if key not in self._open)

    def __len__(self) -> int:
        return len(self._open) + sum(1 for key in self._packed if key not in self._open)

    def open(self, key: str) -> list[tuple]:
        """The key's entries to change in place (created empty)."""
        try:
            return self[key]
        except KeyError:
            entries = self._open[key] = []
            return entries

    def evict_where(self, due, keep) -> None:
        """``entries = keep(entries)`` for every key that is open or whose packed ``(first, second)``
        leading values make ``due`` true; keys left without entries are removed."""
        for key, (first, second, pickled) in self._packed.items():
            if key not in self._open and due(first, second):
                self._open[key] = pickle.loads(pickled)
        for key in list(self._open):
            kept = keep(self._open[key])
            if kept:
                self._open[key] = kept
            else:
                del self._open[key]
                self._packed.pop(key, None)

    def packed(self) -> dict[str, tuple]:
        """Every key as (first, second | None, pickled entries), pickling the open ones again."""
        for key, entries in self._open.items():
            second = entries[1][0] if len(entries) > 1 else None
            self._packed[key] = (entries[0][0], second, pickle.dumps(entries, pickle.HIGHEST_PROTOCOL))
        self._open.clear()
        return self._packed


class BucketState:
    """Per-bucket history (:class:`PackedEntries` each): cards -> [(t_ms, txn_id, amount text, currency)],
    users -> [(t_ms, txn_id, country)], users -> [(UTC day, device, first t_ms)] sorted by (day, device)."""

    def __init__(self, cards=None, users=None, devices=None) -> None:
        self.cards = cards if isinstance(cards, PackedEntries) else PackedEntries(entries=cards)
        self.users = users if isinstance(users, PackedEntries) else PackedEntries(entries=users)
        self.devices = devices if isinstance(devices, PackedEntries) else PackedEntries(entries=devices)

    @classmethod
    def load(cls, blob: bytes | None) -> BucketState:
        if not blob:
            return cls()
        data = pickle.loads(blob)
        if data[0] == STATE_FORMAT:
            return cls(*(PackedEntries(packed) for packed in data[1:]))
        # Written by earlier code: one tuple per entry, amounts possibly Decimal, devices as {day: {device: first}}.
        cards, users, devices = data
        return cls(
            {card: [(t, i, None if a is None else str(a), c) for t, i, a, c in entries] for card, entries in cards.items()},
            users,
            {
                u: sorted((d, dev, first) for d, firsts in days.items() for dev, first in firsts.items())
                for u, days in devices.items()
            },
        )

    def dump(self) -> bytes:
        # Without the memo ("fast" mode; the state is acyclic dicts, tuples and texts).
        out = io.BytesIO()
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.fast = True
        pickler.dump((STATE_FORMAT, self.cards.packed(), self.users.packed(), self.devices.packed()))
        return out.getvalue()

    def add(self, t_ms: int, txn_id: str, card: str, user: str, country, device, amount, currency) -> None:
        entries = self.cards.open(card)
        if not _contains(entries, t_ms, txn_id):
            # The amount as its exact text: Decimal objects made pickling slower.
            bisect.insort(entries, (t_ms, txn_id, None if amount is None else str(amount), currency))
        history = self.users.open(user)
        if not _contains(history, t_ms, txn_id):
            bisect.insort(history, (t_ms, txn_id, country or ""))
        if device:
            days = self.devices.open(user)
            day = t_ms // _MS_PER_DAY
            index = bisect.bisect_left(days, (day, device))
            if index < len(days) and days[index][:2] == (day, device):
                if t_ms < days[index][2]:
                    days[index] = (day, device, t_ms)
            else:
                days.insert(index, (day, device, t_ms))

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
        devices = 0
        days = self.devices.get(user)
        if days:
            day = t_ms // _MS_PER_DAY
            today = days[bisect.bisect_left(days, (day,)) : bisect.bisect_left(days, (day + 1,))]
            devices = sum(1 for entry in today if entry[2] <= t_ms)
        return velocity, minute, five, "[" + ",".join(amounts) + "]", prev_minutes, devices

    def evict(self, watermark_ms: int, windows: RuleWindows) -> None:
        """Drop what no later row can see. Later rows look up from event times at or after
        ``earliest`` = watermark - lookback: a card entry matters within the card windows before
        that; a user's history only through its newest entry before a lookup, so of the entries
        before ``earliest`` only the newest is kept, and only while a geo jump to it is possible.
        Only keys whose oldest entries may go are decoded (:meth:`PackedEntries.evict_where`)."""
        if watermark_ms <= 0:
            return
        earliest = watermark_ms - windows.lookback_ms
        card_floor = earliest - windows.card_retention_ms
        self.cards.evict_where(
            lambda first, _second: first < card_floor - EVICTION_SLACK_MS,
            lambda entries: entries[bisect.bisect_left(entries, (card_floor,)) :],
        )
        geo_floor = earliest - windows.geo_jump_ms

        def keep_history(history: list[tuple]) -> list[tuple]:
            first_kept = bisect.bisect_left(history, (earliest,))
            if first_kept > 0 and history[first_kept - 1][0] >= geo_floor:
                first_kept -= 1  # the newest entry before `earliest`: the previous one of later lookups
            return history[first_kept:]

        # The oldest entry goes when a newer one is also before `earliest` or it is beyond any geo jump.
        self.users.evict_where(
            lambda first, second: (
                first < geo_floor - EVICTION_SLACK_MS or (second is not None and second < earliest - EVICTION_SLACK_MS)
            ),
            keep_history,
        )
        day_floor = earliest // _MS_PER_DAY
        self.devices.evict_where(
            lambda first, _second: first < day_floor, lambda days: days[bisect.bisect_left(days, (day_floor,)) :]
        )


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
    tens of thousands of keys, and each allocation burst set off collections that walk all
    of them again (measured when entries were tuples: unpickling 0.65 s -> 0.26 s for a 1,000
    txn/s bucket). The state is released before the collector is back on, or its first
    collection walks it."""
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
            # A signal row's rule values are read only when its transaction was indexed in an earlier
            # micro-batch (writer.rows_to_score scores it as an update); when the transaction is in
            # this one, its own row carries them (same user, so same bucket and call).
            in_batch = {ids[i] for i in range(len(ids)) if is_txn[i]}
            rows = [
                bucket.signal_values(t_ms[i], ids[i], cards[i], users[i], countries[i], windows)
                if is_txn[i] or ids[i] not in in_batch
                else _NOT_READ
                for i in range(len(ids))
            ]
            bucket.evict(state.getCurrentWatermarkMs(), windows)
            state.update((bucket.dump(),))
            del bucket  # freed by reference counting while the collector is still off (see _gc_paused)
            signals = pd.DataFrame(rows, index=batch.index, columns=list(SIGNAL_NAMES))
        yield pd.concat([batch.drop(columns=["t_ms__", "order__"]), signals], axis=1)

    return update
