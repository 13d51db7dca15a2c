"""The platform's Kafka topics through Airflow's Kafka provider: provisioning and the stream's lag.

Both go through ``KafkaAdminClientHook`` on the profile's ``kafka.connection_id`` (on MWAA the
connection's bootstrap servers are MSK's IAM listener; the provider signs MSK IAM itself):

* :func:`provision_topics` (the stream supervisor's ``deploy`` action): the four topics with
  the profile's partitions and replication, retention on the inputs (raw events, card data
  before masking) and on the outputs, ``min.insync.replicas``. Idempotent: existing topics are
  kept, grown to the profile's partition count if smaller (never shrunk: Kafka cannot), and
  their settings set again; a replication factor that differs is reported, not changed.
* :func:`stream_lag` (the supervisor's health check): records behind the broker's end on the
  input topics, from the broker's end offsets now and the offsets the stream's newest
  committed micro-batch consumed. Unlike the lag in the job's own metrics it keeps growing
  when the job is dead or stuck.
* :func:`lost_offsets` (the same health check): partitions where the stream would resume
  below the broker's earliest offset (the log start: retention deleted what it has not read).
  The job fails on those (``failOnDataLoss=true``) and the supervisor pages instead of
  restarting it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from payments_platform.profiles import KafkaConfig, Profile

TIMEOUT_S = 30.0
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(kafka: KafkaConfig) -> list[TopicSpec]:
    """The four topics as the profile wants them."""
    settings = kafka.topics

    def config(retention_hours: int | None) -> dict[str, str]:
        values = {"min.insync.replicas": str(settings.min_insync_replicas)}
        values["retention.ms"] = str(retention_hours * MS_PER_HOUR) if retention_hours else "-1"
        return values

    inputs = config(settings.input_retention_hours)
    outputs = config(settings.output_retention_hours)
    return [
        TopicSpec(name, settings.partitions, settings.replication_factor, inputs if name in kafka.input_topics else outputs)
        for name in (*kafka.input_topics, *kafka.output_topics)
    ]


def admin_hook(profile: Profile):
    from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

    return KafkaAdminClientHook(kafka_config_id=profile.kafka.connection_id)


def provision_topics(profile: Profile, hook=None) -> dict[str, Any]:
    """Create or adjust the profile's topics; returns what was done per topic."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, ResourceType

    hook = hook or admin_hook(profile)
    admin = hook.get_conn
    specs = topic_specs(profile.kafka)
    existing = admin.list_topics(timeout=TIMEOUT_S).topics
    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        hook.create_topic([(spec.name, spec.partitions, spec.replication_factor) for spec in missing])
    report: dict[str, Any] = {"created": [spec.name for spec in missing], "partitions_added": {}, "problems": []}
    grow = []
    for spec in specs:
        metadata = existing.get(spec.name)
        if metadata is None:
            continue
        have = len(metadata.partitions)
        if have < spec.partitions:
            grow.append(NewPartitions(spec.name, spec.partitions))
            report["partitions_added"][spec.name] = spec.partitions - have
        elif have > spec.partitions:
            report["problems"].append(f"{spec.name}: {have} partitions, more than the profile's {spec.partitions} (kept)")
        replicas = len(next(iter(metadata.partitions.values())).replicas) if metadata.partitions else 0
        if replicas != spec.replication_factor:
            report["problems"].append(f"{spec.name}: replication {replicas}, the profile wants {spec.replication_factor}")
    for future in admin.create_partitions(grow, request_timeout=TIMEOUT_S).values() if grow else ():
        future.result()
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            spec.name,
            incremental_configs=[ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in spec.config.items()],
        )
        for spec in specs
    ]
    for future in admin.incremental_alter_configs(resources, request_timeout=TIMEOUT_S).values():
        future.result()
    report["configured"] = {spec.name: spec.config for spec in specs}
    return report


def partition_offsets(admin, topics: list[str], spec) -> dict[tuple[str, int], int]:
    """The broker's offset per ``spec`` (``OffsetSpec.latest()``/``earliest()``) of every partition of ``topics``."""
    from confluent_kafka import TopicPartition

    metadata = admin.list_topics(timeout=TIMEOUT_S).topics
    wanted = {
        TopicPartition(topic, partition): spec
        for topic in topics
        if topic in metadata
        for partition in metadata[topic].partitions
    }
    if not wanted:
        return {}
    futures = admin.list_offsets(wanted, request_timeout=TIMEOUT_S)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}


def end_offsets(admin, topics: list[str]) -> dict[tuple[str, int], int]:
    """The broker's end offset (the high watermark) of every partition of ``topics``, now."""
    from confluent_kafka.admin import OffsetSpec

    return partition_offsets(admin, topics, OffsetSpec.latest())


def earliest_offsets(admin, topics: list[str]) -> dict[tuple[str, int], int]:
    """The broker's earliest offset (the log start; retention moves it on) of every partition of ``topics``, now."""
    from confluent_kafka.admin import OffsetSpec

    return partition_offsets(admin, topics, OffsetSpec.earliest())


def consumed_offsets(metrics: dict[str, Any] | None) -> dict[tuple[str, int], int]:
    """What the stream's newest committed micro-batch consumed, per (topic, partition)."""
    consumed: dict[tuple[str, int], int] = {}
    for source in (metrics or {}).get("sources") or []:
        for topic, partitions in (source.get("end_offset") or {}).items():
            for partition, offset in partitions.items():
                consumed[(topic, int(partition))] = int(offset)
    return consumed


def stream_lag(profile: Profile, metrics: dict[str, Any] | None, hook=None) -> dict[str, Any]:
    """``{"by_topic": {topic: records behind}, "total": n}`` on the input topics; a partition the
    stream has not consumed from yet counts from 0."""
    hook = hook or admin_hook(profile)
    ends = end_offsets(hook.get_conn, list(profile.kafka.input_topics))
    consumed = consumed_offsets(metrics)
    by_topic: dict[str, int] = {}
    for (topic, partition), end in ends.items():
        by_topic[topic] = by_topic.get(topic, 0) + max(0, end - consumed.get((topic, partition), 0))
    return {"by_topic": by_topic, "total": sum(by_topic.values())}


def lost_offsets(profile: Profile, metrics: dict[str, Any] | None, hook=None) -> dict[str, Any]:
    """Partitions where the stream's newest committed micro-batch stopped below the broker's earliest
    offset: ``{"partitions": [{"topic", "partition", "consumed", "earliest", "lost"}], "total": n}``.

    A partition the stream has not consumed from yet is not judged (a new checkpoint starts at
    the earliest offset)."""
    consumed = consumed_offsets(metrics)
    if not consumed:
        return {"partitions": [], "total": 0}
    hook = hook or admin_hook(profile)
    earliest = earliest_offsets(hook.get_conn, list(profile.kafka.input_topics))
    partitions = [
        {"topic": topic, "partition": partition, "consumed": consumed[(topic, partition)], "earliest": start,
         "lost": start - consumed[(topic, partition)]}
        for (topic, partition), start in sorted(earliest.items())
        if (topic, partition) in consumed and consumed[(topic, partition)] < start
    ]  # fmt: skip
    return {"partitions": partitions, "total": sum(item["lost"] for item in partitions)}
