"""Small helpers shared by the streaming tests: produce, consume, run the job in-process."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from spark_apps.jobs.stream_index import StreamJobOptions, start_stream_index
from spark_apps.streaming.transforms import StreamSettings

PAN_KEY = b"test-only-pan-token-key-0123456789"


def txn(
    transaction_id: str,
    event_time: str,
    *,
    user: str = "u-1",
    amount: str = "10.00",
    pan: str = "4111111111111111",
    country: str = "US",
    device: str = "d-1",
    status: str = "AUTHORIZED",
) -> dict:
    return {
        "transaction_id": transaction_id,
        "user_id": user,
        "merchant_id": "m-1",
        "timestamp": event_time,
        "amount": amount,
        "currency": "USD",
        "transaction_status": status,
        "channel": "ECOM",
        "country": country,
        "device_id": device,
        "ip": "10.1.2.3",
        "updated_at": event_time,
        "pan": pan,
        "cvv": "123",
        "expiry": "12/29",
    }


def epoch_ms(iso: str) -> int:
    import datetime as dt

    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def produce(bootstrap: str, topic: str, messages: list[tuple[str | None, object, int]]) -> None:
    """(key, value dict or raw text, produce timestamp ms), in order, one partition per key hash."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value, ts in messages:
        text = value if isinstance(value, str) else json.dumps(value)
        producer.produce(topic, key=key.encode() if key else None, value=text.encode(), timestamp=ts)
    assert producer.flush(10) == 0


def consume_all(bootstrap: str, topic: str, idle_s: float = 2.0, raw: bool = False) -> list[dict]:
    """Every message of the topic: {key, value (parsed JSON; bytes with ``raw``), timestamp_ms}."""
    from confluent_kafka import Consumer, TopicPartition

    from devtools.broker import end_offsets

    ends = end_offsets(bootstrap, topic)
    partitions = sorted(ends)
    total = sum(ends.values())
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{time.time_ns()}", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = []
        deadline = time.monotonic() + 300  # generous: the broker shares a loaded 2-core box
        while len(out) < total and time.monotonic() < deadline:
            for m in consumer.consume(1000, timeout=idle_s):
                if m.error() is None:
                    out.append(
                        {
                            "key": m.key().decode() if m.key() else None,
                            "value": m.value() if raw else json.loads(m.value()),
                            "timestamp_ms": m.timestamp()[1],
                        }
                    )
        return out
    finally:
        consumer.close()


def job_options(kafka_broker, topics: dict, tmp_path, **overrides) -> StreamJobOptions:
    values = dict(
        bootstrap=kafka_broker.bootstrap,
        transactions_topic=topics["transactions"],
        fraud_signals_topic=topics["fraud_signals"],
        alerts_topic=topics["fraud_alerts"],
        dead_letter_topic=topics["dead_letter"],
        raw_uri=str(tmp_path / "raw"),
        index_uri=str(tmp_path / "indexes"),
        checkpoint_uri=str(tmp_path / "checkpoints"),
        metrics_uri=str(tmp_path / "metrics"),
        available_now=True,
        settings=StreamSettings(late_bound_seconds=600, dedup_horizon_seconds=900, signal_window_seconds=300),
        query_name=f"stream_index_{time.time_ns()}",
    )
    values.update(overrides)
    return StreamJobOptions(**values)


@dataclass
class StreamRun:
    query: object
    writer: object
    listener: object


def run_available_now(spark, options: StreamJobOptions, rules, timeout_s: float = 1800.0) -> StreamRun:
    """Process what is in Kafka now, stop, and wait until the metrics of every batch are written."""
    query, writer, listener = start_stream_index(spark, options, PAN_KEY, rules)
    try:
        query.awaitTermination(timeout_s)
        if query.isActive:
            query.stop()
            raise TimeoutError(f"the available-now run did not finish within {timeout_s:.0f}s")
        if query.exception() is not None:
            raise query.exception()
        last_batch = max((p.batchId for p in query.recentProgress), default=None)
        deadline = time.monotonic() + 300  # the listener bus is asynchronous
        while last_batch is not None and (listener.last_record or {}).get("batch_id", -1) < last_batch:
            assert time.monotonic() < deadline, f"metrics of batch {last_batch} not written"
            time.sleep(0.2)
    finally:
        spark.streams.removeListener(listener)
        writer.close()
    return StreamRun(query, writer, listener)


def batch_records(metrics_uri: str, query_name: str) -> list[dict]:
    """Every micro-batch metrics record of a query, by batch id."""
    from pathlib import Path

    folder = Path(metrics_uri) / "stream" / query_name / "batches"
    return sorted((json.loads(p.read_text()) for p in folder.rglob("batch-*.json")), key=lambda r: r["batch_id"])
