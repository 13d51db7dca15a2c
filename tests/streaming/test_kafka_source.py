"""The payments_kafka streaming source against the real embedded broker."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.kafka.source import EndOffsetProbe, KafkaOptions, cap_offsets, register, topic_partitions

pytestmark = [pytest.mark.kafka, pytest.mark.spark]


def produce(
    bootstrap: str, topic: str, records: list[tuple[str | None, str, int]], timestamp_ms: int = 1_790_000_000_000
) -> None:
    """Produce (key, value, partition) records; one flush, so several records share a batch."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for key, value, partition in records:
        producer.produce(topic, key=key, value=value, partition=partition, timestamp=timestamp_ms)
    assert producer.flush(10) == 0


def read_available(spark, bootstrap: str, topics: str, checkpoint: str, **options: str):
    """Run one availableNow query; return the collected rows."""
    register(spark)
    collected = []
    reader = spark.readStream.format("payments_kafka").option("bootstrap.servers", bootstrap).option("subscribe", topics)
    for name, value in {"startingOffsets": "earliest", **options}.items():
        reader = reader.option(name, value)
    query = (
        reader.load()
        .writeStream.foreachBatch(lambda batch_df, batch_id: collected.extend(batch_df.collect()))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(120)
    assert query.exception() is None
    return collected


def test_end_offsets_include_the_whole_last_batch(kafka_broker, kafka_topics):
    # Tansu's watermark stops at the last batch's base offset + 1; the probe must see all 5 records.
    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [(f"k{i}", f"v{i}", 0) for i in range(5)])
    options = KafkaOptions.parse({"bootstrap.servers": kafka_broker.bootstrap, "subscribe": topic})
    consumer = options.consumer()
    try:
        probe = EndOffsetProbe(consumer)
        assert probe.end_offsets(topic_partitions(consumer, (topic,))) == {(topic, 0): 5, (topic, 1): 0}
    finally:
        consumer.close()


def test_source_reads_every_record_once_with_kafka_columns(spark, kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [("t1", '{"a":1}', 0), ("t2", '{"a":2}', 1), (None, "x", 0)])
    rows = read_available(spark, kafka_broker.bootstrap, topic, str(tmp_path / "cp"))
    stamp = dt.datetime(2026, 9, 21, 14, 13, 20)  # 1_790_000_000_000 ms, session time zone UTC
    expected = [
        Row(key=b"t1", value=b'{"a":1}', topic=topic, partition=0, offset=0, timestamp=stamp, timestampType=0),
        Row(key=None, value=b"x", topic=topic, partition=0, offset=1, timestamp=stamp, timestampType=0),
        Row(key=b"t2", value=b'{"a":2}', topic=topic, partition=1, offset=0, timestamp=stamp, timestampType=0),
    ]
    assertDataFrameEqual(spark.createDataFrame(rows), spark.createDataFrame(expected))


def test_restart_resumes_from_checkpointed_offsets(spark, kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["transactions"]
    checkpoint = str(tmp_path / "cp")
    produce(kafka_broker.bootstrap, topic, [(f"a{i}", f"first{i}", i % 2) for i in range(4)])
    first = read_available(spark, kafka_broker.bootstrap, topic, checkpoint)
    produce(kafka_broker.bootstrap, topic, [(f"b{i}", f"second{i}", i % 2) for i in range(3)])
    second = read_available(spark, kafka_broker.bootstrap, topic, checkpoint)
    assert sorted(r.value for r in first) == [b"first0", b"first1", b"first2", b"first3"]
    assert sorted(r.value for r in second) == [b"second0", b"second1", b"second2"]


def test_starting_offsets_latest_skips_existing_records(spark, kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [("old", "old", 0)])
    assert read_available(spark, kafka_broker.bootstrap, topic, str(tmp_path / "cp"), startingOffsets="latest") == []


def test_missing_topic_is_a_clear_error(kafka_broker):
    options = KafkaOptions.parse({"bootstrap.servers": kafka_broker.bootstrap, "subscribe": "no-such-topic"})
    consumer = options.consumer()
    try:
        with pytest.raises(ValueError, match="no-such-topic"):
            topic_partitions(consumer, options.topics)
    finally:
        consumer.close()


def test_options_require_bootstrap_and_subscribe():
    with pytest.raises(ValueError, match="bootstrap.servers"):
        KafkaOptions.parse({"subscribe": "t"})


def test_cap_offsets_shares_the_limit_by_backlog():
    start = {("t", 0): 0, ("t", 1): 10}
    end = {("t", 0): 100, ("t", 1): 110}
    assert cap_offsets(start, end, 50) == {("t", 0): 25, ("t", 1): 35}
    assert cap_offsets(start, end, 1000) == end


def test_executor_read_mode_reads_the_same_records(spark, kafka_broker, kafka_topics, tmp_path):
    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [(f"k{i}", f"v{i}", i % 2) for i in range(6)])
    driver = read_available(spark, kafka_broker.bootstrap, topic, str(tmp_path / "cp-driver"))
    executors = read_available(spark, kafka_broker.bootstrap, topic, str(tmp_path / "cp-exec"), readMode="executors")
    assert sorted((r.partition, r.offset, r.value) for r in driver) == sorted((r.partition, r.offset, r.value) for r in executors)
    assert len(driver) == 6


def test_driver_reader_caps_a_batch_and_replays_a_range_exactly(kafka_broker, kafka_topics):
    from spark_apps.kafka.source import KafkaDriverStreamReader

    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [(f"k{i}", f"v{i}", i % 2) for i in range(10)])
    options = {"bootstrap.servers": kafka_broker.bootstrap, "subscribe": topic, "startingOffsets": "earliest"}
    reader = KafkaDriverStreamReader(KafkaOptions.parse({**options, "maxOffsetsPerTrigger": "4"}))
    try:
        start = reader.initialOffset()
        assert start == {topic: {"0": 0, "1": 0}}
        batches, end = reader.read(start)
        batches = list(batches)
        assert sum(b.num_rows for b in batches) == 4 and sum(end[topic].values()) == 4
        rest, final = reader.read(end)
        rest = list(rest)
        assert sum(b.num_rows for b in rest) == 4 and sum(final[topic].values()) == 8
        replayed = list(KafkaDriverStreamReader(KafkaOptions.parse(options)).readBetweenOffsets(end, final))
        assert sorted(v for b in replayed for v in b.column("value").to_pylist()) == sorted(
            v for b in rest for v in b.column("value").to_pylist()
        )
    finally:
        reader.stop()


def test_driver_reader_does_not_hold_a_batch_open_while_producers_keep_sending(kafka_broker, kafka_topics):
    """A read takes what is below the high watermarks when it starts; records that keep arriving
    (here every 5 ms for 4 s, never a 20 ms pause) belong to later batches."""
    import threading

    from confluent_kafka import Producer

    from spark_apps.kafka.source import KafkaDriverStreamReader

    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [(f"k{i}", f"v{i}", 0) for i in range(10)])
    options = {"bootstrap.servers": kafka_broker.bootstrap, "subscribe": topic, "startingOffsets": "earliest"}
    reader = KafkaDriverStreamReader(KafkaOptions.parse(options))
    sent, done = [], threading.Event()

    def keep_sending() -> None:
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 0})
        for i in range(800):
            producer.produce(topic, key=f"t{i}", value=f"t{i}", partition=0)
            producer.poll(0)
            sent.append(i)
            threading.Event().wait(0.005)
        producer.flush(10)
        done.set()

    try:
        start = reader.initialOffset()
        first, middle = reader.read(start)
        assert sum(b.num_rows for b in first) == 10
        sender = threading.Thread(target=keep_sending, daemon=True)
        sender.start()
        while len(sent) < 100:
            threading.Event().wait(0.01)
        batches, end = reader.read(middle)
        read = sum(b.num_rows for b in batches)
        assert not done.is_set(), "the read waited for the producer to stop"
        assert 0 < read < 800 and end[topic]["0"] == 10 + read
        sender.join(30)
    finally:
        reader.stop()


def test_read_mode_is_checked():
    with pytest.raises(ValueError, match="readMode"):
        KafkaOptions.parse({"bootstrap.servers": "b:9092", "subscribe": "t", "readMode": "sideways"})


def test_an_idle_driver_reader_waits_on_the_broker_instead_of_polling_it(kafka_broker, kafka_topics, monkeypatch):
    """Between micro-batches the reader's consumer keeps one fetch open for up to 100 ms. With a
    5 ms wait it sent hundreds of fetches per second, and the embedded broker's CPU grew with every
    record it held until it took the cores the job needs (bench/RESULTS.md)."""
    import json
    import time

    from spark_apps.kafka.source import KafkaDriverStreamReader

    stats = []
    consumer = KafkaOptions.consumer

    def consumer_with_stats(self, **extra):
        return consumer(self, **extra, **{"statistics.interval.ms": 200, "stats_cb": stats.append})

    monkeypatch.setattr(KafkaOptions, "consumer", consumer_with_stats)
    topic = kafka_topics["transactions"]
    produce(kafka_broker.bootstrap, topic, [(f"k{i}", f"v{i}", i % 2) for i in range(4)])
    options = {"bootstrap.servers": kafka_broker.bootstrap, "subscribe": topic, "startingOffsets": "earliest"}
    reader = KafkaDriverStreamReader(KafkaOptions.parse(options))

    def fetches() -> int:
        return sum(b["req"].get("Fetch", 0) for b in json.loads(stats[-1])["brokers"].values())

    try:
        _batches, end = reader.read(reader.initialOffset())
        assert end[topic] == {"0": 2, "1": 2}
        time.sleep(0.5)
        reader.read(end)  # nothing new; serves the statistics callbacks
        before = fetches()
        time.sleep(3)  # idle, as between micro-batches
        reader.read(end)  # nothing new; serves the statistics callbacks
        idle_fetches = fetches() - before
    finally:
        reader.stop()
    assert 0 < idle_fetches <= 3 / 0.1 * 2, idle_fetches  # the consumer stays connected, at most ~10 fetches/s
