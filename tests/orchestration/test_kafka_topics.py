"""The platform's topics through Airflow's Kafka provider, against the real local broker."""

from __future__ import annotations

import itertools

import pytest

from payments_platform.kafka_topics import provision_topics, stream_lag, topic_specs
from payments_platform.profiles import TopicSettings, load_profile

pytestmark = [pytest.mark.kafka]
_runs = itertools.count()


def profile_with(partitions: int = 2, replication: int = 1, prefix: str | None = None):
    """The local profile with topics of its own and the given topic settings."""
    profile = load_profile("local")
    prefix = prefix or f"provision-{next(_runs)}"
    kafka = profile.kafka.model_copy(
        update={
            "transactions_topic": f"{prefix}.transactions",
            "fraud_signals_topic": f"{prefix}.fraud-signals",
            "fraud_alerts_topic": f"{prefix}.fraud-alerts",
            "dead_letter_topic": f"{prefix}.dead-letter",
            "topics": TopicSettings(
                partitions=partitions, replication_factor=replication, input_retention_hours=24, output_retention_hours=168
            ),
        }
    )
    return profile.model_copy(update={"kafka": kafka})


def described(bootstrap: str, names: list[str]) -> dict[str, tuple[int, str, str]]:
    """topic -> (partitions, retention.ms, min.insync.replicas) as the broker has them."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=10).topics
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
    configs = {resource.name: future.result() for resource, future in futures.items()}
    return {
        n: (len(topics[n].partitions), configs[n]["retention.ms"].value, configs[n]["min.insync.replicas"].value) for n in names
    }


def settled(read, expected, timeout_s: float = 20.0):
    """``read()`` once it returns ``expected`` (or its last answer after ``timeout_s``): a single
    KRaft broker applies a topic's new configs and partitions through its metadata log, so a
    describe right after the admin call may still show the previous values for a moment (this
    test failed that way on a loaded machine, before and after issue 22's changes)."""
    import time

    from confluent_kafka import KafkaException

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = read()
        except KafkaException:  # e.g. NOT_LEADER_FOR_PARTITION while a new topic's leaders settle
            if time.monotonic() >= deadline:
                raise
            found = None
        if found == expected or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def test_topic_specs_follow_the_profile():
    kafka = profile_with(prefix="p").kafka
    assert topic_specs(kafka)[0].name == "p.transactions"
    assert [(s.name, s.partitions, s.config["retention.ms"]) for s in topic_specs(kafka)] == [
        ("p.transactions", 2, "86400000"),
        ("p.fraud-signals", 2, "86400000"),
        ("p.fraud-alerts", 2, "604800000"),
        ("p.dead-letter", 2, "604800000"),
    ]
    # The local profile keeps records without a time limit (replayed days carry past produce times).
    assert {s.config["retention.ms"] for s in topic_specs(load_profile("local").kafka)} == {"-1"}


def test_aws_profile_topics_are_replicated_and_bounded(aws_profile_env):
    load_profile.cache_clear()
    try:
        specs = topic_specs(load_profile("aws").kafka)
    finally:
        load_profile.cache_clear()
    assert {(s.partitions, s.replication_factor, s.config["min.insync.replicas"]) for s in specs} == {(6, 3, "2")}
    assert [s.config["retention.ms"] for s in specs] == ["86400000", "86400000", "604800000", "604800000"]


def test_deploy_provisions_the_topics_once_and_grows_them(kafka_connection):
    profile = profile_with()
    names = [s.name for s in topic_specs(profile.kafka)]
    first = provision_topics(profile)
    assert first["created"] == names and first["partitions_added"] == {} and first["problems"] == []
    expected = {
        names[0]: (2, "86400000", "1"),
        names[1]: (2, "86400000", "1"),
        names[2]: (2, "604800000", "1"),
        names[3]: (2, "604800000", "1"),
    }
    assert settled(lambda: described(kafka_connection, names), expected) == expected
    again = provision_topics(profile)
    assert (again["created"], again["partitions_added"], again["problems"]) == ([], {}, [])

    grown = provision_topics(profile_with(partitions=3, prefix=names[0].split(".")[0]))
    assert grown["created"] == [] and grown["partitions_added"] == dict.fromkeys(names, 1)
    grown_partitions = dict.fromkeys(names, 3)
    assert settled(lambda: {n: v[0] for n, v in described(kafka_connection, names).items()}, grown_partitions) == grown_partitions

    # What Kafka cannot change is reported, not attempted: fewer partitions, more replicas.
    odd = provision_topics(profile_with(partitions=2, replication=3, prefix=names[0].split(".")[0]))
    assert len(odd["problems"]) == 8 and "3 partitions, more than the profile's 2 (kept)" in odd["problems"][0]
    assert "replication 1, the profile wants 3" in odd["problems"][1]


def test_stream_lag_is_the_brokers_end_minus_what_the_last_batch_consumed(kafka_connection):
    from confluent_kafka import Producer

    profile = profile_with()
    provision_topics(profile)
    producer = Producer({"bootstrap.servers": kafka_connection})
    for n in range(10):
        producer.produce(profile.kafka.transactions_topic, key=f"k{n}".encode(), value=b"{}", partition=n % 2)
    producer.produce(profile.kafka.fraud_signals_topic, key=b"s", value=b"{}", partition=0)
    assert producer.flush(10) == 0
    metrics = {
        "sources": [
            {"end_offset": {profile.kafka.transactions_topic: {"0": 3, "1": 5}}},
            {"end_offset": {profile.kafka.fraud_signals_topic: {"0": 1}}},
        ]
    }
    assert stream_lag(profile, metrics) == {
        "by_topic": {profile.kafka.transactions_topic: 2, profile.kafka.fraud_signals_topic: 0},
        "total": 2,
    }
    # No batch yet: everything is behind.
    assert stream_lag(profile, None)["total"] == 11


def delete_records(admin, partitions, attempts: int = 20) -> None:
    """Move the partitions' log start to the given offsets (DeleteRecords, what retention does);
    retried while the broker's metadata of a new topic settles ("No leaders found")."""
    import time

    from confluent_kafka import KafkaException

    for attempt in range(attempts):
        try:
            for future in admin.delete_records(partitions, request_timeout=10).values():
                future.result()
            return
        except KafkaException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def test_offsets_the_broker_no_longer_keeps_are_reported_as_lost(kafka_connection):
    """Retention moved the log start past where the stream stopped: the supervisor's health check
    sees the records it can no longer read (the real broker: DeleteRecords moves the log start the
    way retention does)."""
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    from payments_platform.kafka_topics import earliest_offsets, end_offsets, lost_offsets

    profile = profile_with()
    provision_topics(profile)
    topic = profile.kafka.transactions_topic
    producer = Producer({"bootstrap.servers": kafka_connection})
    for n in range(10):
        producer.produce(topic, key=f"k{n}".encode(), value=b"{}", partition=n % 2)  # 5 records per partition
    assert producer.flush(10) == 0
    metrics = {
        "sources": [{"end_offset": {topic: {"0": 2, "1": 4}}}, {"end_offset": {profile.kafka.fraud_signals_topic: {"0": 0}}}]
    }
    assert lost_offsets(profile, metrics) == {"partitions": [], "total": 0}, "nothing deleted yet"

    admin = AdminClient({"bootstrap.servers": kafka_connection})
    delete_records(admin, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 3)])
    starts = {(topic, 0): 3, (topic, 1): 3}
    assert settled(lambda: earliest_offsets(admin, [topic]), starts) == starts
    assert end_offsets(admin, [topic]) == {(topic, 0): 5, (topic, 1): 5}
    assert lost_offsets(profile, metrics) == {
        "partitions": [{"topic": topic, "partition": 0, "consumed": 2, "earliest": 3, "lost": 1}],
        "total": 1,
    }, "partition 1 resumes at 4, still kept"
    assert lost_offsets(profile, None) == {"partitions": [], "total": 0}, "no checkpoint yet: starts at the earliest"
