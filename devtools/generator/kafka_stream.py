"""Produce a generated workload to Kafka at a fixed rate (the generator CLI's ``stream`` subcommand).

:func:`stream_to_kafka` sends ``Workload.kafka_messages()`` (transactions, keyed by
transaction id, in produce order) and, with ``fraud_topic``, the ML outputs from
``Workload.fraud_signal_messages()`` interleaved by their produce time.

``retime=True`` (the default) moves every record to the present: its JSON time fields
(``timestamp``/``updated_at``, ``inference_time``) are shifted by (actual produce time
- generated produce time), so each record keeps its distance between event time and
produce time: on-time events stay on time and late events stay late by the same
margin, while a day's traffic is replayed at the requested rate.
The Kafka record timestamp is the actual wall-clock produce time, which the
benchmark uses as the start of each event's latency.
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_TIME_FIELDS = ("timestamp", "updated_at", "inference_time")


def _shift_iso(text, shift_ms: int):
    if not isinstance(text, str):
        return text
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # malformed timestamps stay malformed
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    shifted = parsed.astimezone(dt.UTC) + dt.timedelta(milliseconds=shift_ms)
    return shifted.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def retime_value(value: bytes, shift_ms: int) -> bytes:
    """The JSON message with its time fields moved by ``shift_ms``; non-JSON values unchanged."""
    timed = TimedValue.of(value)
    return timed.at(shift_ms) if timed is not None else retime_value_json(value, shift_ms)


def retime_value_json(value: bytes, shift_ms: int) -> bytes:
    """:func:`retime_value` by parsing the JSON (the reference; every value it cannot parse unchanged)."""
    try:
        record = json.loads(value)
    except ValueError:
        return value
    if not isinstance(record, dict):
        return value
    for name in _TIME_FIELDS:
        if name in record:
            record[name] = _shift_iso(record[name], shift_ms)
    return json.dumps(record, separators=(",", ":")).encode()


_TIME_FIELD_RE = re.compile(rb'"(' + b"|".join(n.encode() for n in _TIME_FIELDS) + rb')":"([^"\\]*)"')
_TIME_FIELD_MARKERS = tuple(f'"{name}":'.encode() for name in _TIME_FIELDS)
_PLAIN_ISO_RE = re.compile(rb"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z")


@dataclass(frozen=True, slots=True)
class TimedValue:
    """A JSON message split around its time fields: ``at(shift_ms)`` is :func:`retime_value_json`'s
    result by joining bytes, without parsing the JSON.

    The benchmark producer retimes every record at up to 10,000 records/s on the machine that runs
    the job (parsing and dumping the JSON took ~50 us a record, half a core at 10,000/s), so
    :func:`prepare_messages` splits the messages before the measured phase. :meth:`of` handles the
    common case, a compact JSON object whose time fields are plain ``YYYY-MM-DDTHH:MM:SS[.f]Z``
    strings, each once; for anything else it returns None and the JSON path is taken. Both give the
    same bytes for every record the generator writes (tested)."""

    pieces: tuple[bytes, ...]  # one more than micros: value = pieces[0] + time 0 + pieces[1] + ...
    micros: tuple[int, ...]  # epoch microseconds (UTC) of each time field, in order

    @classmethod
    def of(cls, value: bytes) -> TimedValue | None:
        if value[:1] != b"{" or value[-1:] != b"}":
            return None  # not an object (truncated JSON, CSV, ...)
        matches = list(_TIME_FIELD_RE.finditer(value))
        if len(matches) != sum(value.count(marker) for marker in _TIME_FIELD_MARKERS):
            return None  # a time field that is not a plain string (escaped, null, a number)
        if len({m.group(1) for m in matches}) != len(matches):
            return None  # a repeated field: JSON keeps the last
        pieces, micros, last = [], [], 0
        for match in matches:
            stamp = _plain_iso_micros(match.group(2))
            if stamp is None:
                continue  # another form or not a time: _shift_iso keeps it or needs the JSON path
            pieces.append(value[last : match.start(2)])
            micros.append(stamp)
            last = match.end(2)
        if len(micros) != len(matches) and any(_shift_iso(m.group(2).decode(), 1) != m.group(2).decode() for m in matches):
            return None  # a time in a form only the JSON path moves
        pieces.append(value[last:])
        return cls(tuple(pieces), tuple(micros))

    def at(self, shift_ms: int) -> bytes:
        if not self.micros:
            return self.pieces[0]
        parts = [self.pieces[0]]
        for stamp, piece in zip(self.micros, self.pieces[1:], strict=True):
            whole, rest = divmod(stamp + shift_ms * 1000, 1_000_000)
            parts.append(b"%s.%03dZ" % (_second_text(whole), rest // 1000))
            parts.append(piece)
        return b"".join(parts)


def _plain_iso_micros(text: bytes) -> int | None:
    match = _PLAIN_ISO_RE.fullmatch(text)
    if match is None:
        return None
    try:
        moment = dt.datetime(*(int(match.group(i)) for i in range(1, 7)), tzinfo=dt.UTC)
    except ValueError:
        return None  # an impossible date or time: not moved, as fromisoformat rejects it
    return int(moment.timestamp()) * 1_000_000 + int((match.group(7) or b"").ljust(6, b"0"))


@functools.lru_cache(maxsize=1 << 16)
def _second_text(epoch_second: int) -> bytes:
    return dt.datetime.fromtimestamp(epoch_second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()


def merged_messages(
    transactions: Iterable[tuple[bytes, bytes, int]],
    signals: Iterable[tuple[bytes, bytes, int]] | None,
    topic: str,
    fraud_topic: str | None,
) -> Iterator[tuple[str, bytes, bytes, int]]:
    """(topic, key, value, produce_ms) of both streams, merged by produce time (stable)."""
    streams = [((ts, 0, i, topic, k, v) for i, (k, v, ts) in enumerate(transactions))]
    if signals is not None and fraud_topic:
        streams.append(((ts, 1, i, fraud_topic, k, v) for i, (k, v, ts) in enumerate(signals)))
    for ts, _order, _i, name, key, value in heapq.merge(*streams):
        yield name, key, value, ts


class PreparedMessages(list):
    """(topic, key, value or :class:`TimedValue`, produce ms) in produce order (:func:`prepare_messages`)."""


def prepare_messages(events, topic: str, fraud_topic: str | None = None) -> PreparedMessages:
    """:func:`stream_to_kafka`'s messages of a ``Workload`` (or (key, value, timestamp_ms) tuples on
    ``topic``), with each value split for retiming (:class:`TimedValue`) ahead of time. Passing
    the list to :func:`stream_to_kafka` moves the producer's per-record parsing out of the timed
    run: the benchmarks produce on the machine that runs the job."""
    prepared = PreparedMessages()
    for name, key, value, ts in _source(events, topic, fraud_topic):
        timed = TimedValue.of(value)
        prepared.append((name, key, timed if timed is not None else value, ts))
    return prepared


def _source(events, topic: str, fraud_topic: str | None):
    if hasattr(events, "kafka_messages"):
        return merged_messages(
            events.kafka_messages(), events.fraud_signal_messages() if fraud_topic else None, topic, fraud_topic
        )
    return ((topic, k, v, ts) for k, v, ts in events)


def stream_to_kafka(
    events,
    bootstrap_servers: str | None = None,
    topic: str | None = None,
    rate_per_second: float = 1000.0,
    duration_s: float | None = None,
    limit: int | None = None,
    fraud_topic: str | None = None,
    retime: bool = True,
    producer=None,
    security: str | None = None,
    region: str | None = None,
) -> dict:
    """Send the workload's messages at ``rate_per_second`` until exhausted, ``limit`` messages or ``duration_s``.

    ``bootstrap_servers``, ``topic`` and ``security`` default to the selected profile's kafka
    section (``iam``: MSK IAM with AWS's signer, in ``region``, default the profile's).
    ``events`` is a ``Workload`` (transactions, plus signals when ``fraud_topic`` is given)
    or an iterable of (key, value, timestamp_ms) on ``topic``, or :func:`prepare_messages`'
    list of either. Returns a summary with the counts, the
    achieved rate and the first/last produce times (epoch ms).
    """
    bootstrap_servers, topic, security, region = _kafka_settings(bootstrap_servers, topic, security, region)
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    if isinstance(events, PreparedMessages) and not retime:
        raise ValueError("prepared messages are for retimed streams")
    source = iter(events) if isinstance(events, PreparedMessages) else _source(events, topic, fraud_topic)
    topics = [topic, fraud_topic] if fraud_topic else [topic]
    sender = _Sender(producer or _producer(bootstrap_servers, security, region), topics, retime)
    for message, now in _paced(source, rate_per_second, sender.started, limit, duration_s):
        sender.send(*message, now)
    return sender.summary()


def _kafka_settings(bootstrap_servers, topic, security, region) -> tuple:
    """The settings given, the unset ones from the selected profile's kafka section (and region)."""
    if bootstrap_servers is not None and topic is not None and security is not None:
        return bootstrap_servers, topic, security, region
    from payments_platform.profiles import get_profile

    profile = get_profile()
    kafka = profile.kafka
    return (
        bootstrap_servers or kafka.bootstrap_servers,
        topic or kafka.transactions_topic,
        security or kafka.security,
        region or profile.region,
    )


def _producer(bootstrap_servers: str, security: str, region: str | None):
    """An idempotent producer sending batches of ~20 ms, as a gateway's producer would."""
    from confluent_kafka import Producer

    from spark_apps.kafka.security import client_config

    return Producer(
        {**client_config(bootstrap_servers, security, region), "enable.idempotence": True, "acks": "all", "linger.ms": 20}
    )


def _paced(source, rate_per_second: float, started: float, limit: int | None, duration_s: float | None):
    """(message, wall-clock time to produce it): the n-th at ``started + n / rate_per_second`` at the
    earliest, until ``limit`` messages or ``duration_s`` have passed."""
    for n, message in enumerate(source):
        if limit is not None and n >= limit:
            return
        due = started + n / rate_per_second
        now = time.time()
        if duration_s is not None and now - started >= duration_s:
            return
        if due > now:
            time.sleep(due - now)
            now = time.time()
        yield message, now


class _Sender:
    """Produces messages stamped with their produce time (retimed to it), counting them per topic."""

    def __init__(self, producer, topics: list[str], retime: bool) -> None:
        self.producer, self.retime = producer, retime
        self.sent = dict.fromkeys(topics, 0)
        self.errors: list[str] = []
        self.first_ms: int | None = None
        self.last_ms: int | None = None
        self.started = time.time()

    def on_delivery(self, error, _message) -> None:
        if error is not None:
            self.errors.append(str(error))

    def send(self, name: str, key: bytes, value, ts: int, now: float) -> None:
        now_ms = int(now * 1000)
        if isinstance(value, TimedValue):
            value = value.at(now_ms - ts)
        elif self.retime:
            value = retime_value(value, now_ms - ts)
        while True:
            try:
                timestamp = now_ms if self.retime else ts
                self.producer.produce(name, key=key, value=value, timestamp=timestamp, on_delivery=self.on_delivery)
                break
            except BufferError:
                self.producer.poll(0.01)  # the local queue is full: let deliveries drain it
        self.producer.poll(0)
        self.sent[name] = self.sent.get(name, 0) + 1
        self.first_ms = self.first_ms or now_ms
        self.last_ms = now_ms

    def summary(self) -> dict:
        """Wait for every delivery (raising on any failure); the counts and the achieved rate."""
        remaining = self.producer.flush(60)
        elapsed = max(time.time() - self.started, 1e-9)
        if remaining or self.errors:
            raise RuntimeError(f"stream_to_kafka: {remaining} undelivered, errors: {self.errors[:3]}")
        total = sum(self.sent.values())
        return {
            "sent": self.sent,
            "total": total,
            "seconds": round(elapsed, 3),
            "rate_per_second": round(total / elapsed, 1),
            "first_produce_ms": self.first_ms,
            "last_produce_ms": self.last_ms,
        }
