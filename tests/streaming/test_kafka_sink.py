"""BatchKafkaSink: every message acknowledged or the batch fails; a replayed batch is not resent."""

from __future__ import annotations

import pytest

from spark_apps.kafka.sink import MARKERS_KEPT, BatchKafkaSink, DeliveryError
from tests.streaming.helpers import consume_all

pytestmark = [pytest.mark.kafka]


def test_send_delivers_keyed_messages_once_per_batch(kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["fraud_alerts"]
    sink = BatchKafkaSink(kafka_broker.bootstrap, str(tmp_path / "sent"))
    messages = [("t-1", '{"n": 1}'), ("t-2", '{"n": 2}')]
    assert sink.send(topic, 3, messages) == 2
    assert sink.send(topic, 3, messages) == 0  # replay of batch 3 after a crash before Spark's commit
    assert sink.send(topic, 4, [("t-3", '{"n": 3}')]) == 1
    received = sorted((m["key"], m["value"]["n"]) for m in consume_all(kafka_broker.bootstrap, topic))
    assert received == [("t-1", 1), ("t-2", 2), ("t-3", 3)]
    assert (tmp_path / "sent" / topic / "000000000003").read_text() == "2"


def test_an_empty_batch_is_marked_sent(kafka_broker, kafka_topics, tmp_path):
    sink = BatchKafkaSink(kafka_broker.bootstrap, str(tmp_path / "sent"))
    assert sink.send(kafka_topics["dead_letter"], 0, []) == 0
    assert sink.already_sent(kafka_topics["dead_letter"], 0)


def test_a_marker_is_forgotten_once_it_is_markers_kept_batches_old(kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["dead_letter"]
    sink = BatchKafkaSink(kafka_broker.bootstrap, str(tmp_path / "sent"))
    sink.send(topic, 0, [])
    sink.send(topic, 1, [])
    sink.send(topic, MARKERS_KEPT, [])
    assert sorted(p.name for p in (tmp_path / "sent" / topic).iterdir()) == [f"{b:012d}" for b in (1, MARKERS_KEPT)]


def test_undeliverable_batch_raises_and_is_not_marked(tmp_path):
    sink = BatchKafkaSink("127.0.0.1:1", str(tmp_path / "sent"))  # nothing listens there
    with pytest.raises(DeliveryError):
        sink.send("payments.fraud-alerts", 0, [("t-1", "{}")], timeout_s=2)
    assert not sink.already_sent("payments.fraud-alerts", 0)
