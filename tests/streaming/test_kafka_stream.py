"""stream_to_kafka: the generator's records reach Kafka keyed by transaction id, retimed to now."""

from __future__ import annotations

import time

import pytest

from devtools.generator.kafka_stream import prepare_messages, retime_value_json, stream_to_kafka
from tests.streaming.helpers import consume_all, epoch_ms

pytestmark = [pytest.mark.kafka]


def test_records_are_keyed_retimed_and_rate_limited(kafka_broker, kafka_topics):
    generated = epoch_ms("2026-11-21T10:00:00Z")
    events = [
        (f"t{i}".encode(), f'{{"transaction_id":"t{i}","timestamp":"2026-11-21T09:59:0{i}Z"}}'.encode(), generated + i * 1000)
        for i in range(5)
    ]
    started_ms = time.time() * 1000
    summary = stream_to_kafka(events, kafka_broker.bootstrap, kafka_topics["transactions"], rate_per_second=20)
    assert summary["total"] == 5 and summary["seconds"] >= 0.2  # 5 records at 20/s take at least 4 intervals
    received = sorted(consume_all(kafka_broker.bootstrap, kafka_topics["transactions"]), key=lambda m: m["key"])
    assert [m["key"] for m in received] == ["t0", "t1", "t2", "t3", "t4"]
    for i, message in enumerate(received):
        assert message["timestamp_ms"] >= started_ms - 5
        # event time keeps its distance to the produce time: 1 s before it, as generated (within the ms rounding).
        event_ms = epoch_ms(message["value"]["timestamp"])
        assert abs((message["timestamp_ms"] - event_ms) - (generated + i * 1000 - epoch_ms(f"2026-11-21T09:59:0{i}Z"))) <= 1


def test_prepared_messages_are_sent_retimed_like_the_workload(kafka_broker, kafka_topics):
    """The benchmarks prepare the messages before the timed run (TimedValue); what reaches Kafka is
    the JSON path's retiming of each value by its own produce time."""
    generated = epoch_ms("2026-11-21T10:00:00Z")
    values = [
        b'{"transaction_id":"t0","timestamp":"2026-11-21T09:59:58Z","updated_at":"2026-11-21T09:59:59.250Z"}',
        b'{"transaction_id":"t1","timestamp":"21/11/2026 10:00"}',  # malformed: sent as it is
        b'{"transaction_id":"t2","timestamp":"2026-11-21 09:59:59"}',  # another form: the JSON path
        b'{"transaction_id":"t3","amou',  # truncated
    ]
    events = [(f"t{i}".encode(), value, generated + i) for i, value in enumerate(values)]
    prepared = prepare_messages(events, kafka_topics["transactions"])
    summary = stream_to_kafka(prepared, kafka_broker.bootstrap, kafka_topics["transactions"], rate_per_second=100)
    assert summary["sent"] == {kafka_topics["transactions"]: 4}
    received = sorted(consume_all(kafka_broker.bootstrap, kafka_topics["transactions"], raw=True), key=lambda m: m["key"])
    for i, message in enumerate(received):
        assert message["value"] == retime_value_json(values[i], message["timestamp_ms"] - (generated + i))
    with pytest.raises(ValueError, match="retimed"):
        stream_to_kafka(prepared, kafka_broker.bootstrap, kafka_topics["transactions"], retime=False)


def test_limit_stops_early(kafka_broker, kafka_topics):
    events = [(b"k", b"{}", 0)] * 10
    assert (
        stream_to_kafka(events, kafka_broker.bootstrap, kafka_topics["dead_letter"], rate_per_second=1000, limit=3)["total"] == 3
    )


def test_records_leave_in_batches_not_one_request_each(kafka_broker, kafka_topics, monkeypatch):
    """The producer lingers ~20 ms so records share a batch: each record batch is one object in the
    embedded broker's storage, and its cost per fetch grows with their number (bench/RESULTS.md)."""
    import json

    import confluent_kafka

    stats, created = [], []
    producer = confluent_kafka.Producer

    def producer_with_stats(config):
        created.append(producer({**config, "statistics.interval.ms": 100, "stats_cb": stats.append}))
        return created[-1]

    monkeypatch.setattr(confluent_kafka, "Producer", producer_with_stats)
    events = [(f"k{i}".encode(), b"{}", 0) for i in range(2000)]
    topic = kafka_topics["dead_letter"]
    assert stream_to_kafka(events, kafka_broker.bootstrap, topic, rate_per_second=1000, retime=False)["total"] == 2000
    created[0].poll(0.3)  # one more statistics callback, after the final flush
    last = json.loads(stats[-1])  # cumulative counters: messages sent and produce requests
    requests = sum(b["req"].get("Produce", 0) for b in last["brokers"].values())
    assert last["txmsgs"] == 2000 and last["txmsgs"] / requests >= 8, requests  # ~20 per request at 20 ms, ~2 at 2 ms


def test_the_generator_produces_to_msk_with_awss_iam_signer(monkeypatch):
    """``--security iam``: the producer is configured for MSK IAM (OAUTHBEARER, AWS's signer as the
    token callback), idempotent, as the stream job's own producer."""
    import confluent_kafka

    from devtools.generator.kafka_stream import stream_to_kafka

    made = []

    class RecordingProducer:
        def __init__(self, config):
            made.append(config)

        def produce(self, *args, **kwargs):
            kwargs["on_delivery"](None, None)

        def poll(self, *_args):
            return 0

        def flush(self, *_args):
            return 0

    monkeypatch.setattr(confluent_kafka, "Producer", RecordingProducer)
    from spark_apps.kafka import security

    monkeypatch.setattr(security, "msk_iam_oauth_token", lambda region: (f"token-for-{region}", 1.0))
    events = [(b"k", b"{}", 1_700_000_000_000)]
    summary = stream_to_kafka(events, "b-1.msk:9098", "t", rate_per_second=100, retime=False, security="iam", region="eu-west-1")
    assert summary["total"] == 1
    (config,) = made
    assert (config["security.protocol"], config["sasl.mechanisms"], config["enable.idempotence"]) == (
        "SASL_SSL",
        "OAUTHBEARER",
        True,
    )
    assert config["oauth_cb"]("") == ("token-for-eu-west-1", 1.0)  # AWS's signer, for the producer's region
