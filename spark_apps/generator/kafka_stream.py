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
import heapq
import json
import time
from collections.abc import Iterable, Iterator

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
) -> dict:
    """Send the workload's messages at ``rate_per_second`` until exhausted, ``limit`` messages or ``duration_s``.

    ``bootstrap_servers`` and ``topic`` default to the selected profile's kafka section.
    ``events`` is a ``Workload`` (transactions, plus signals when ``fraud_topic`` is given)
    or an iterable of (key, value, timestamp_ms). Returns a summary with the counts, the
    achieved rate and the first/last produce times (epoch ms).
    """
    from confluent_kafka import Producer

    if bootstrap_servers is None or topic is None:
        from payments_platform.profiles import get_profile

        kafka = get_profile().kafka
        bootstrap_servers = bootstrap_servers or kafka.bootstrap_servers
        topic = topic or kafka.transactions_topic
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    if hasattr(events, "kafka_messages"):
        source = merged_messages(
            events.kafka_messages(), events.fraud_signal_messages() if fraud_topic else None, topic, fraud_topic
        )
    else:
        source = ((topic, k, v, ts) for k, v, ts in events)
    # Batches of ~20 ms, as a gateway's producer would send: every record batch is one object in
    # the embedded broker's memory storage and each fetch costs in proportion to their number
    # (2 ms batches of one or two records kept it at ~90% of a core during a 300 msg/s stream run).
    producer = producer or Producer(
        {"bootstrap.servers": bootstrap_servers, "enable.idempotence": True, "acks": "all", "linger.ms": 20}
    )
    errors: list[str] = []

    def on_delivery(error, _message) -> None:
        if error is not None:
            errors.append(str(error))

    sent = {topic: 0} | ({fraud_topic: 0} if fraud_topic else {})
    started = time.time()
    first_ms = last_ms = None
    for n, (name, key, value, ts) in enumerate(source):
        if limit is not None and n >= limit:
            break
        due = started + n / rate_per_second
        now = time.time()
        if duration_s is not None and now - started >= duration_s:
            break
        if due > now:
            time.sleep(due - now)
            now = time.time()
        now_ms = int(now * 1000)
        if retime:
            shift_ms = now_ms - ts
            value = retime_value(value, shift_ms)
        while True:
            try:
                producer.produce(name, key=key, value=value, timestamp=now_ms if retime else ts, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        sent[name] += 1
        first_ms = first_ms or now_ms
        last_ms = now_ms
    remaining = producer.flush(60)
    elapsed = max(time.time() - started, 1e-9)
    if remaining or errors:
        raise RuntimeError(f"stream_to_kafka: {remaining} undelivered, errors: {errors[:3]}")
    total = sum(sent.values())
    return {
        "sent": sent,
        "total": total,
        "seconds": round(elapsed, 3),
        "rate_per_second": round(total / elapsed, 1),
        "first_produce_ms": first_ms,
        "last_produce_ms": last_ms,
    }
