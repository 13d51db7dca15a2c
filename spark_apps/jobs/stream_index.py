"""Stream index job: Kafka -> Spark Structured Streaming -> stream index + fraud alerts, exactly-once.

    python -m spark_apps.jobs.stream_index [options]          # or spark-submit spark_apps/jobs/stream_index.py

Every option defaults to the selected runtime profile (``PAYMENTS_PROFILE``, default
``local``): Kafka from ``kafka.*``, locations from ``lake.*``. Options:

  --bootstrap HOST:PORT[,...]     Kafka bootstrap servers           (kafka.bootstrap_servers)
  --security plaintext|iam        Kafka auth; iam = MSK IAM         (kafka.security)
  --region REGION                 AWS region (MSK IAM, secrets, CloudWatch)  (profile region)
  --transactions-topic / --fraud-signals-topic / --alerts-topic / --dead-letter-topic   (kafka.*_topic)
  --raw-uri URI                   reference data: <raw>/{fx_rates,merchants,policies}/dt=D/  (lake.raw_uri)
  --index-uri URI                 stream index root: <index>/stream_index/dt=D/hour=H/  (lake.index_uri)
  --checkpoint-uri URI            checkpoint root; the query uses <uri>/stream_index/  (lake.checkpoint_uri)
  --metrics-uri URI               metrics root; records go to <uri>/stream/<query>/    (lake.metrics_uri)
  --trigger-interval "200 milliseconds"   micro-batch trigger (default 200 milliseconds)
  --available-now                 process what is in Kafka at start (the brokers' end offsets), then stop
  --starting-offsets earliest|latest|JSON   for a new checkpoint only (default earliest)
  --max-offsets-per-trigger N     cap records per micro-batch and input topic (20000; 0 = no cap)
  --late-bound-seconds N          produce time - event time above this -> dead letter "late" (600)
  --dedup-horizon-seconds N       how long a transaction id is remembered, >= late bound (900);
                                  the watermark trails the newest produce time by half of it
  --signal-window-seconds N       an ML output joins its transaction within +- N s of produce time (300)
  --rule-buckets N                state groups of the rule operator (8); fixed for a checkpoint
  --reference-refresh-seconds N   reload FX / merchants / policies every N s (300)
  --token-key-ref REF             PAN token key secret reference (profile secrets.pan_token_key)
  --fraud-rules PATH              rules YAML (include/config/fraud_rules.yaml)
  --query-name NAME               streaming query name (stream_index)
  --master local[2]               Spark master (omit under spark-submit / EMR on EKS)
  --conf KEY=VALUE                extra Spark configuration (repeatable)

The Airflow stream supervisor starts it with spark-submit locally and with
EmrContainerOperator in the aws profile (entryPoint = this file); in both it runs
until stopped. The query's checkpoint holds Kafka offsets (per partition), the
deduplication / join / rule state and the commit log; a restart resumes there.
See docs/streaming.md for the guarantees.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from spark_apps.kafka.source import FORMAT_NAME, KafkaOptions, register
from spark_apps.streaming.transforms import StreamSettings, build_stream

log = logging.getLogger("stream_index")
QUERY_NAME = "stream_index"
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 20_000
# State in RocksDB (off the JVM heap, bounded memory) with changelog checkpointing: a batch
# commit uploads only the changes, not a snapshot. A checkpoint keeps the provider it was
# created with (Spark records it in the offset log), so existing queries are unaffected.
STREAM_CONF = {
    "spark.sql.streaming.stateStore.providerClass": "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
    # No micro-batch just because the watermark moved: nothing here emits on the watermark
    # (inner join, dedup, rule state without timeouts); state is evicted by the next data batch.
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
}
CHECKPOINT_FILE_MANAGER = "spark.sql.streaming.checkpointFileManagerClass"
# A checkpoint on a local disk (the local profile): Spark's default manager writes each file
# through Hadoop's FileContext, which without Hadoop's native library starts `readlink` and
# `chmod` processes for it (measured: 35 ms per file, and a micro-batch writes 16: offsets,
# commit, one changelog per state store and partition). The FileSystem-based manager starts
# one `chmod` (10 ms). Both write to a temporary name and rename into place; it does not
# refuse a second writer of the same offset atomically, which only one running job is.
LOCAL_CHECKPOINT_FILE_MANAGER = "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager"


def stream_conf(checkpoint_location: str) -> dict[str, str]:
    """STREAM_CONF, plus the checkpoint file manager for a checkpoint on the local file system."""
    local = "://" not in checkpoint_location or checkpoint_location.startswith("file://")
    return {**STREAM_CONF, **({CHECKPOINT_FILE_MANAGER: LOCAL_CHECKPOINT_FILE_MANAGER} if local else {})}


@dataclass(frozen=True)
class StreamJobOptions:
    bootstrap: str
    transactions_topic: str
    fraud_signals_topic: str
    alerts_topic: str
    dead_letter_topic: str
    raw_uri: str
    index_uri: str
    checkpoint_uri: str
    metrics_uri: str
    security: str = "plaintext"
    region: str | None = None
    trigger_interval: str = "200 milliseconds"
    available_now: bool = False
    starting_offsets: str = "earliest"
    max_offsets_per_trigger: int | None = DEFAULT_MAX_OFFSETS_PER_TRIGGER
    settings: StreamSettings = StreamSettings()
    reference_refresh_seconds: float = 300.0
    query_name: str = QUERY_NAME

    @property
    def checkpoint_location(self) -> str:
        return f"{self.checkpoint_uri.rstrip('/')}/{self.query_name}"


def kafka_stream(spark: SparkSession, options: StreamJobOptions, topic: str):
    register(spark)
    reader = (
        spark.readStream.format(FORMAT_NAME)
        .option("bootstrap.servers", options.bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", options.starting_offsets)
        .option("security", options.security)
    )
    if options.region:
        reader = reader.option("region", options.region)
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load()


RULE_BUCKETS_FILE = "_rule_buckets.json"


def with_checkpoint_rule_buckets(options: StreamJobOptions) -> StreamJobOptions:
    """``options`` with the rule-bucket layout of its checkpoint. The bucket count and layout
    decide which state key holds a user's rule state, so a checkpoint keeps the ones it started
    with (recorded in ``<checkpoint>/_rule_buckets.json``): a checkpoint with batches but no
    record was started by earlier code and keeps the ``modulo`` keys; a new one gets ``balanced``
    keys. Another bucket count than the recorded one is refused (it would lose the state)."""
    from dataclasses import replace

    from pyarrow import fs as pafs

    from spark_apps import lake

    record_uri = f"{options.checkpoint_location}/{RULE_BUCKETS_FILE}"
    filesystem, record_path = lake._filesystem(record_uri)
    if filesystem.get_file_info(record_path).type != pafs.FileType.NotFound:
        recorded = json.loads(lake.read_text(record_uri))
    else:
        offsets_path = lake._filesystem(f"{options.checkpoint_location}/offsets")[1]
        started = filesystem.get_file_info(offsets_path).type != pafs.FileType.NotFound
        recorded = {"rule_buckets": options.settings.rule_buckets, "layout": "modulo" if started else "balanced"}
        lake.write_text(record_uri, json.dumps(recorded, sort_keys=True) + "\n")
    if recorded["rule_buckets"] != options.settings.rule_buckets:
        raise ValueError(
            f"checkpoint {options.checkpoint_location} keeps its rule state in {recorded['rule_buckets']} buckets; "
            f"got --rule-buckets {options.settings.rule_buckets}. Use {recorded['rule_buckets']}, or a new checkpoint."
        )
    return replace(options, settings=replace(options.settings, rule_bucket_layout=recorded["layout"]))


def start_stream_index(spark: SparkSession, options: StreamJobOptions, pan_key: bytes, rules, publishers=()):
    """Start the query (and its metrics listener); return (query, batch writer, listener)."""
    from spark_apps.kafka.sink import BatchKafkaSink
    from spark_apps.streaming.metrics import BrokerLag, MetricsListener
    from spark_apps.streaming.writer import ReferenceData, StreamIndexBatchWriter

    # Spark re-optimizes the plan every micro-batch; constraint propagation over the validation
    # expressions (four branches of the same CASE chains) took most of each batch (measured: over a
    # minute of CPU per batch in PruneFilters). Switching it off changes optimization only, not results.
    spark.conf.set("spark.sql.constraintPropagation.enabled", "false")
    chosen = spark.sparkContext.getConf()
    for key, value in stream_conf(options.checkpoint_location).items():  # unless the session was built with a choice (--conf)
        if not chosen.contains(key):
            spark.conf.set(key, value)
    options = with_checkpoint_rule_buckets(options)
    stream_df = build_stream(
        kafka_stream(spark, options, options.transactions_topic),
        kafka_stream(spark, options, options.fraud_signals_topic),
        pan_key,
        rules,
        options.settings,
    )
    sink = BatchKafkaSink(options.bootstrap, f"{options.checkpoint_location}/_sent", options.security, options.region)
    writer = StreamIndexBatchWriter(
        options.index_uri,
        ReferenceData(spark, options.raw_uri, options.reference_refresh_seconds),
        rules,
        sink,
        options.alerts_topic,
        options.dead_letter_topic,
    )
    lag = BrokerLag(KafkaOptions(options.bootstrap, (), security=options.security, region=options.region))
    listener = MetricsListener(options.metrics_uri, options.query_name, lag=lag, publishers=publishers, batch_stats=writer.stats)
    spark.streams.addListener(listener)
    query = (
        stream_df.writeStream.queryName(options.query_name)
        .foreachBatch(writer)
        .option("checkpointLocation", options.checkpoint_location)
        .trigger(processingTime=options.trigger_interval)
        .start()
    )
    return query, writer, listener


def topic_end_offsets(options: StreamJobOptions) -> dict[tuple[str, int], int]:
    """The brokers' end offsets of both input topics, now."""
    from spark_apps.kafka.source import EndOffsetProbe, topic_partitions

    kafka = KafkaOptions(
        options.bootstrap,
        (options.transactions_topic, options.fraud_signals_topic),
        security=options.security,
        region=options.region,
    )
    consumer = kafka.consumer()
    try:
        return EndOffsetProbe(consumer).end_offsets(topic_partitions(consumer, kafka.topics))
    finally:
        consumer.close()


def drain_and_stop(query, options: StreamJobOptions, timeout_s: float = 1800.0, poll_s: float = 0.5) -> None:
    """``--available-now``: process everything in Kafka now, then stop the query.

    Spark's Trigger.AvailableNow falls back to a single batch for Python data sources,
    which after a crash would only replay the uncommitted batch; this waits instead
    until a committed batch has consumed the end offsets read at the start.
    """
    from spark_apps.streaming.metrics import consumed_offsets

    targets = topic_end_offsets(options)
    deadline = time.monotonic() + timeout_s
    consumed: dict[tuple[str, int], int] = {}
    while query.isActive:
        for progress in query.recentProgress:  # StreamingQueryProgress objects; their JSON is the dict
            consumed.update(consumed_offsets(json.loads(progress.json) if hasattr(progress, "json") else progress))
        if all(consumed.get(tp, 0) >= end for tp, end in targets.items() if end > 0):
            query.stop()
            break
        if time.monotonic() > deadline:
            query.stop()
            raise TimeoutError(f"stream did not reach {targets} within {timeout_s:.0f}s (consumed {consumed})")
        time.sleep(poll_s)
    if query.exception() is not None:
        raise query.exception()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="stream_index", description=doc.split("\n\n")[0])
    add = parser.add_argument
    for name in (
        "bootstrap",
        "security",
        "region",
        "transactions-topic",
        "fraud-signals-topic",
        "alerts-topic",
        "dead-letter-topic",
    ):
        add(f"--{name}")
    for name in ("raw-uri", "index-uri", "checkpoint-uri", "metrics-uri"):
        add(f"--{name}")
    add("--trigger-interval", default="200 milliseconds")
    add("--available-now", action="store_true")
    add("--starting-offsets", default="earliest")
    add("--max-offsets-per-trigger", type=int, default=DEFAULT_MAX_OFFSETS_PER_TRIGGER)
    add("--late-bound-seconds", type=int, default=StreamSettings.late_bound_seconds)
    add("--dedup-horizon-seconds", type=int, default=StreamSettings.dedup_horizon_seconds)
    add("--signal-window-seconds", type=int, default=StreamSettings.signal_window_seconds)
    add("--rule-buckets", type=int, default=StreamSettings.rule_buckets)
    add("--reference-refresh-seconds", type=float, default=300.0)
    add("--token-key-ref")
    add("--fraud-rules")
    add("--query-name", default=QUERY_NAME)
    add("--master")
    add("--conf", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> StreamJobOptions:
    """Arguments over profile defaults."""
    from payments_platform.profiles import get_profile

    profile = get_profile()
    kafka, lake_config = profile.kafka, profile.lake
    return StreamJobOptions(
        bootstrap=args.bootstrap or kafka.bootstrap_servers,
        transactions_topic=args.transactions_topic or kafka.transactions_topic,
        fraud_signals_topic=args.fraud_signals_topic or kafka.fraud_signals_topic,
        alerts_topic=args.alerts_topic or kafka.fraud_alerts_topic,
        dead_letter_topic=args.dead_letter_topic or kafka.dead_letter_topic,
        raw_uri=args.raw_uri or lake_config.raw_uri,
        index_uri=args.index_uri or lake_config.index_uri,
        checkpoint_uri=args.checkpoint_uri or lake_config.checkpoint_uri,
        metrics_uri=args.metrics_uri or lake_config.metrics_uri,
        security=args.security or kafka.security,
        region=args.region or profile.region,
        trigger_interval=args.trigger_interval,
        available_now=args.available_now,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger or None,
        settings=StreamSettings(
            args.late_bound_seconds, args.dedup_horizon_seconds, args.signal_window_seconds, args.rule_buckets
        ),
        reference_refresh_seconds=args.reference_refresh_seconds,
        query_name=args.query_name,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    from payments_platform.profiles import get_profile
    from spark_apps.fraud_rules import load_rules
    from spark_apps.secrets import DEFAULT_PAN_TOKEN_KEY_REF, pan_token_key
    from spark_apps.session import build_session

    options = options_from_args(args)
    profile = get_profile()
    conf = dict(profile.spark.conf) if profile.spark.launcher == "local" else {}
    for item in args.conf:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--conf {item!r}: expected KEY=VALUE")
        conf[name] = value
    key_ref = args.token_key_ref or profile.secrets.get("pan_token_key") or DEFAULT_PAN_TOKEN_KEY_REF
    pan_key = pan_token_key(key_ref, options.region)
    rules = load_rules(args.fraud_rules)
    master = args.master or (profile.spark.master if profile.spark.launcher == "local" else None)
    spark = build_session(f"stream-index-{options.query_name}", master, conf)
    publishers = []
    if profile.name == "aws" and options.region:
        from spark_apps.streaming.cloudwatch import CloudWatchPublisher

        publishers.append(CloudWatchPublisher(options.region))
    query, _writer, _listener = start_stream_index(spark, options, pan_key, rules, publishers)
    log.info("query %s started: checkpoint %s, index %s", options.query_name, options.checkpoint_location, options.index_uri)
    try:
        if options.available_now:
            drain_and_stop(query, options)
        else:
            query.awaitTermination()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
