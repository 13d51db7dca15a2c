"""Stream index job: Kafka -> Spark Structured Streaming -> stream index + fraud alerts, exactly-once.

    python -m spark_apps.jobs.stream_index [options]          # or spark-submit spark_apps/jobs/stream_index.py

A pure command-line program: every location and setting is an option, passed by the stream
supervisor (plugins/payments_platform/stream_control.py ``stream_job``, from the runtime
profile it reads on the Airflow side); the job itself reads no profile and imports nothing of
the Airflow side (an EMR pod has neither). Its master and Spark settings are spark-submit's
(or ``--master`` / ``--conf``). Options (the profile key the supervisor passes in brackets):

  --bootstrap HOST:PORT[,...]     Kafka bootstrap servers, required  (kafka.bootstrap_servers)
  --security plaintext|iam        Kafka auth; iam = MSK IAM, default plaintext  (kafka.security)
  --region REGION                 AWS region (MSK IAM, secrets, CloudWatch)  (profile region)
  --transactions-topic / --fraud-signals-topic / --alerts-topic / --dead-letter-topic   required (kafka.*_topic)
  --raw-uri URI                   required; reference data: <raw>/{fx_rates,merchants,policies}/dt=D/  (lake.raw_uri)
  --index-uri URI                 required; stream index root: <index>/stream_index/dt=D/hour=H/  (lake.index_uri)
  --checkpoint-uri URI            required; checkpoint root, the query uses <uri>/<query>/  (lake.checkpoint_uri)
  --metrics-uri URI               required; metrics root, records go to <uri>/stream/<query>/  (lake.metrics_uri)
  --trigger-interval "200 milliseconds"   micro-batch trigger (default 200 milliseconds)
  --available-now                 process what is in Kafka at start (the brokers' end offsets), then stop
  --starting-offsets earliest|latest|JSON   for a new checkpoint only (default earliest)
  --max-offsets-per-trigger N     cap records per micro-batch and input topic (20000; 0 = no cap)
  --state-partitions N            the stateful passes' partitions, fixed for a checkpoint, default 1 (spark.stream_state_partitions)
  --allow-data-loss               go on past offsets that Kafka no longer has (default: fail; see below)
  --late-bound-seconds N          produce time - event time above this -> dead letter "late" (600)
  --dedup-horizon-seconds N       how long a transaction id is remembered, >= late bound (900);
                                  the watermark trails the newest produce time by half of it
  --signal-window-seconds N       an ML output joins its transaction within +- N s of produce time (300)
  --max-clock-skew-seconds N      event time - produce time above this -> dead letter "future_event_time"
                                  (300; profile validation.max_clock_skew_seconds, passed by the supervisor)
  --reference-refresh-seconds N   look for a newer day of FX / merchants / policies every N s (300);
                                  when one has landed the query restarts with it (from its checkpoint)
  --token-key-ref REF             PAN token key secret reference, default env:PAYMENTS_PAN_TOKEN_KEY (secrets.pan_token_key)
  --fraud-rules PATH              rules YAML (include/config/fraud_rules.yaml)
  --query-name NAME               streaming query name (stream_index)
  --publish-metrics none|cloudwatch   also put each micro-batch's metrics into CloudWatch (needs
                                  --region; the on-call alarms read them). Default none
  --master local[2]               Spark master (omit under spark-submit / EMR on EKS)
  --conf KEY=VALUE                extra Spark configuration (repeatable)

Kafka is read with Spark's own source (``spark-sql-kafka-0-10``, from the JVM manifest):
``subscribe`` one topic per source, ``startingOffsets`` for a new checkpoint only (a
checkpoint resumes at its own offsets), ``maxOffsetsPerTrigger`` to bound a batch after an
outage, and ``failOnDataLoss=true``: when the checkpoint's offsets are older than the topic's
retention (the stream was down longer than Kafka keeps the input), the query fails loudly
instead of skipping the lost records; ``--allow-data-loss`` is the deliberate, logged way on.

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
from dataclasses import dataclass

from pyspark.sql import SparkSession

from payments_contract import STREAM_QUERY_NAME
from spark_apps.kafka.security import SECURITY_MODES, spark_kafka_options
from spark_apps.secrets import DEFAULT_PAN_TOKEN_KEY_REF
from spark_apps.streaming.transforms import StreamSettings, build_stream

log = logging.getLogger("stream_index")
QUERY_NAME = STREAM_QUERY_NAME
DEFAULT_MAX_OFFSETS_PER_TRIGGER = 20_000
FETCH_MAX_WAIT_MS = 10
# Consumer group ids of Spark's Kafka source start with this (the MSK IAM policy names it).
CONSUMER_GROUP_PREFIX = "payments-stream-index"
# The settings without which the job cannot run: the supervisor passes them all (stream_control.stream_job).
REQUIRED_OPTIONS = (
    "bootstrap",
    "transactions_topic",
    "fraud_signals_topic",
    "alerts_topic",
    "dead_letter_topic",
    "raw_uri",
    "index_uri",
    "checkpoint_uri",
    "metrics_uri",
)
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
# Read once, when the session is built: a micro-batch's tasks start at once instead of waiting up
# to Spark's default 3 s for a preferred executor (the Kafka source prefers the executor caching
# its consumer, a shuffle read the executors holding its map outputs): seconds of alert latency on
# EMR, where executors are many; nothing to lose, the data is small and local to the cluster.
STREAM_SESSION_CONF = {"spark.locality.wait": "0s"}
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
    fail_on_data_loss: bool = True
    settings: StreamSettings = StreamSettings()
    reference_refresh_seconds: float = 300.0
    query_name: str = QUERY_NAME
    publish_metrics: str = "none"

    @property
    def checkpoint_location(self) -> str:
        return f"{self.checkpoint_uri.rstrip('/')}/{self.query_name}"


def kafka_source_options(options: StreamJobOptions, topic: str) -> dict[str, str]:
    """Spark's Kafka source options for one input topic (see the module docstring for the choices)."""
    source = {
        **spark_kafka_options(options.bootstrap, options.security),
        "subscribe": topic,
        "startingOffsets": options.starting_offsets,
        "failOnDataLoss": str(options.fail_on_data_loss).lower(),
        "groupIdPrefix": CONSUMER_GROUP_PREFIX,
        "includeHeaders": "false",
        # A micro-batch's task asks for an offset range that is already on the broker; Kafka's default
        # 500 ms was spent waiting on the consumer's earlier fetch for offsets beyond the last batch
        # (measured: a 50-record batch's read stage took 560 ms of which 30 ms CPU).
        "kafka.fetch.max.wait.ms": str(FETCH_MAX_WAIT_MS),
    }
    if options.max_offsets_per_trigger:
        source["maxOffsetsPerTrigger"] = str(options.max_offsets_per_trigger)
    return source


def kafka_stream(spark: SparkSession, options: StreamJobOptions, topic: str):
    return spark.readStream.format("kafka").options(**kafka_source_options(options, topic)).load()


PLAN_FILE = "_plan.json"
# The streaming plan's version: its stateful operators and their state. A checkpoint is bound
# to the plan it started with (Spark refuses other state schemas; this says so up front).
PLAN_VERSION = "v2: transformWithState by transaction id, card and user (jvm/stream-ops)"


class CheckpointError(RuntimeError):
    """The checkpoint was started by another version of the streaming plan."""


def check_checkpoint_plan(options: StreamJobOptions) -> None:
    """Record the plan version in a new checkpoint; refuse one that another plan version started.
    A checkpoint with batches but no record was started by the plan before v2 (Python rule state,
    Spark's dedup and join; and on the earlier broker, whose offsets mean nothing to this one)."""
    from pyarrow import fs as pafs

    from spark_apps import lake

    record_uri = f"{options.checkpoint_location}/{PLAN_FILE}"
    filesystem, record_path = lake._filesystem(record_uri)
    if filesystem.get_file_info(record_path).type != pafs.FileType.NotFound:
        recorded = json.loads(lake.read_text(record_uri)).get("plan")
    else:
        offsets_path = lake._filesystem(f"{options.checkpoint_location}/offsets")[1]
        started = filesystem.get_file_info(offsets_path).type != pafs.FileType.NotFound
        recorded = "v1" if started else PLAN_VERSION
        if not started:
            lake.write_text(record_uri, json.dumps({"plan": PLAN_VERSION}, sort_keys=True) + "\n")
    if recorded != PLAN_VERSION:
        raise CheckpointError(
            f"checkpoint {options.checkpoint_location} was started by streaming plan {recorded!r}, this job runs "
            f"{PLAN_VERSION!r}: its state cannot carry over. Start from a new checkpoint (another --checkpoint-uri or "
            "--query-name); with --starting-offsets choose where in Kafka it begins (docs/streaming.md, upgrading)."
        )


def start_stream_index(spark: SparkSession, options: StreamJobOptions, pan_key: bytes, rules, publishers=(), reference=None):
    """Start the query (and its metrics listener) with ``reference`` (a ReferenceData; loaded here
    if None); return (query, batch writer, listener)."""
    from spark_apps.kafka.sink import BatchKafkaSink
    from spark_apps.streaming.metrics import MetricsListener
    from spark_apps.streaming.writer import ReferenceData, StreamIndexBatchWriter

    # Spark re-optimizes the plan every micro-batch; constraint propagation over the validation
    # expressions (four branches of the same CASE chains) took most of each batch (measured: over a
    # minute of CPU per batch in PruneFilters). Switching it off changes optimization only, not results.
    spark.conf.set("spark.sql.constraintPropagation.enabled", "false")
    chosen = spark.sparkContext.getConf()
    for key, value in stream_conf(options.checkpoint_location).items():  # unless the session was built with a choice (--conf)
        if not chosen.contains(key):
            spark.conf.set(key, value)
    check_checkpoint_plan(options)
    if reference is None:
        reference = ReferenceData(spark, options.raw_uri)
        reference.load()
    stream_df = build_stream(
        kafka_stream(spark, options, options.transactions_topic),
        kafka_stream(spark, options, options.fraud_signals_topic),
        pan_key,
        rules,
        options.settings,
        reference.tables,
    )
    sink = BatchKafkaSink(options.bootstrap, f"{options.checkpoint_location}/_sent", options.security, options.region)
    writer = StreamIndexBatchWriter(
        options.index_uri, sink, options.alerts_topic, options.dead_letter_topic, options.checkpoint_location
    )
    listener = MetricsListener(
        options.metrics_uri,
        options.query_name,
        publishers=publishers,
        batch_stats=writer.stats,
        input_topics={"transactions": options.transactions_topic, "signals": options.fraud_signals_topic},
    )
    spark.streams.addListener(listener)
    # --available-now: Spark's Kafka source reads up to the end offsets it finds at the start
    # (in as many batches as maxOffsetsPerTrigger needs, a crashed run's uncommitted batch first), then stops.
    trigger = {"availableNow": True} if options.available_now else {"processingTime": options.trigger_interval}
    query = (
        stream_df.writeStream.queryName(options.query_name)
        .foreachBatch(writer)
        .option("checkpointLocation", options.checkpoint_location)
        .trigger(**trigger)
        .start()
    )
    return query, writer, listener


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(prog="stream_index", description=doc.split("\n\n")[0])
    add = parser.add_argument
    for name in REQUIRED_OPTIONS:
        add(f"--{name.replace('_', '-')}", required=True)
    add("--security", choices=SECURITY_MODES, default="plaintext")
    add("--region")
    add("--trigger-interval", default="200 milliseconds")
    add("--available-now", action="store_true")
    add("--starting-offsets", default="earliest")
    add("--max-offsets-per-trigger", type=int, default=DEFAULT_MAX_OFFSETS_PER_TRIGGER)
    add("--allow-data-loss", action="store_true")
    add("--state-partitions", type=int, default=1)
    add("--late-bound-seconds", type=int, default=StreamSettings.late_bound_seconds)
    add("--dedup-horizon-seconds", type=int, default=StreamSettings.dedup_horizon_seconds)
    add("--signal-window-seconds", type=int, default=StreamSettings.signal_window_seconds)
    add("--max-clock-skew-seconds", type=int, default=StreamSettings.max_clock_skew_seconds)
    add("--reference-refresh-seconds", type=float, default=300.0)
    add("--token-key-ref", default=DEFAULT_PAN_TOKEN_KEY_REF)
    add("--fraud-rules")
    add("--query-name", default=QUERY_NAME)
    add("--publish-metrics", choices=("none", "cloudwatch"), default="none")
    add("--master")
    add("--conf", action="append", default=[], metavar="KEY=VALUE")
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> StreamJobOptions:
    return StreamJobOptions(
        bootstrap=args.bootstrap,
        transactions_topic=args.transactions_topic,
        fraud_signals_topic=args.fraud_signals_topic,
        alerts_topic=args.alerts_topic,
        dead_letter_topic=args.dead_letter_topic,
        raw_uri=args.raw_uri,
        index_uri=args.index_uri,
        checkpoint_uri=args.checkpoint_uri,
        metrics_uri=args.metrics_uri,
        security=args.security,
        region=args.region or None,
        trigger_interval=args.trigger_interval,
        available_now=args.available_now,
        starting_offsets=args.starting_offsets,
        max_offsets_per_trigger=args.max_offsets_per_trigger or None,
        fail_on_data_loss=not args.allow_data_loss,
        settings=StreamSettings(
            args.late_bound_seconds, args.dedup_horizon_seconds, args.signal_window_seconds, args.max_clock_skew_seconds
        ),
        reference_refresh_seconds=args.reference_refresh_seconds,
        query_name=args.query_name,
        publish_metrics=args.publish_metrics,
    )


def session_settings(args: argparse.Namespace) -> tuple[str | None, dict[str, str]]:
    """(master, Spark conf) of the job's session: ``--master`` (else spark-submit's) and the stream's
    settings, with ``--conf`` last."""
    # A new checkpoint takes this; an existing one keeps the count it started with (Spark's rule).
    conf = {**STREAM_SESSION_CONF, "spark.sql.shuffle.partitions": str(args.state_partitions)}
    for item in args.conf:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--conf {item!r}: expected KEY=VALUE")
        conf[name] = value
    return args.master, conf


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    from spark_apps.fraud_rules import load_rules
    from spark_apps.secrets import pan_token_key
    from spark_apps.session import build_session

    options = options_from_args(args)
    if options.publish_metrics == "cloudwatch" and not options.region:
        raise SystemExit("--publish-metrics cloudwatch needs --region")
    master, conf = session_settings(args)
    pan_key = pan_token_key(args.token_key_ref or DEFAULT_PAN_TOKEN_KEY_REF, options.region)
    rules = load_rules(args.fraud_rules)
    spark = build_session(f"stream-index-{options.query_name}", master, conf)
    publishers = []
    if options.publish_metrics == "cloudwatch":
        from spark_apps.streaming.cloudwatch import CloudWatchPublisher

        publishers.append(CloudWatchPublisher(options.region))
    if not options.fail_on_data_loss:
        log.warning("--allow-data-loss: offsets Kafka no longer has are skipped, not failed on")
    try:
        run_until_stopped(spark, options, pan_key, rules, publishers)
    finally:
        spark.stop()
    return 0


def run_until_stopped(spark: SparkSession, options: StreamJobOptions, pan_key: bytes, rules, publishers=()) -> None:
    """Run the query; every ``reference_refresh_seconds`` look for a newer day of reference data and,
    when one has landed, stop the query and start it again with it (it resumes from its checkpoint:
    nothing is lost or repeated; the alerts of the batches in between wait a few seconds)."""
    from spark_apps.streaming.writer import ReferenceData

    reference = ReferenceData(spark, options.raw_uri)
    while True:
        reference.load()
        query, writer, listener = start_stream_index(spark, options, pan_key, rules, publishers, reference)
        log.info("query %s started: checkpoint %s, index %s", options.query_name, options.checkpoint_location, options.index_uri)
        restart = False
        while not restart and not query.awaitTermination(options.reference_refresh_seconds):
            restart = reference.stale()
            if restart:
                log.info("newer reference data landed: restarting query %s with it", options.query_name)
                query.stop()
        spark.streams.removeListener(listener)
        writer.close()
        if query.exception() is not None:
            raise query.exception()
        if not restart:  # ended on its own: --available-now done, or stopped
            return


if __name__ == "__main__":
    sys.exit(main())
