"""Unit-level checks of the stream's parts: metrics records, the producer's retiming, settings."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from devtools.generator.kafka_stream import TimedValue, merged_messages, retime_value, retime_value_json
from spark_apps.streaming.metrics import consumed_offsets, progress_record
from spark_apps.streaming.transforms import StreamSettings

PROGRESS = {
    "id": "q-1",
    "runId": "r-1",
    "name": "stream_index",
    "timestamp": "2026-11-21T10:00:00.000Z",
    "batchId": 7,
    "numInputRows": 30,
    "inputRowsPerSecond": 60.0,
    "processedRowsPerSecond": 40.0,
    "durationMs": {"triggerExecution": 750, "addBatch": 500},
    "eventTime": {"watermark": "2026-11-21T09:45:00.000Z"},
    "stateOperators": [
        {
            "operatorName": "transformWithStateExec",
            "numRowsTotal": 10,
            "memoryUsedBytes": 1000,
            "numRowsDroppedByWatermark": 0,
            "numRowsRemoved": 3,
            "allUpdatesTimeMs": 40,
            "allRemovalsTimeMs": 250,
            "commitTimeMs": 12,
        },
        {"operatorName": "transformWithStateExec", "numRowsTotal": 10, "memoryUsedBytes": 1000, "numRowsDroppedByWatermark": 0},
        {"operatorName": "transformWithStateExec", "numRowsTotal": 2, "memoryUsedBytes": 500, "numRowsDroppedByWatermark": 0},
    ],
    "sources": [
        {
            "description": "KafkaV2[Subscribe[tx]]",
            "startOffset": '{"tx": {"0": 5}}',
            "endOffset": '{"tx": {"0": 9, "1": 3}}',
            "numInputRows": 7,
            # Spark's Kafka source: records behind the latest offsets it fetched, over its partitions
            "metrics": {"avgOffsetsBehindLatest": "1.5", "maxOffsetsBehindLatest": "2", "minOffsetsBehindLatest": "1"},
        }
    ],
}


def test_progress_record_fields():
    record = progress_record(PROGRESS, stats={"duplicates": 2, "index_rows": 5, "signals_unmatched": 1})
    assert record["committed_at"] == "2026-11-21T10:00:00.750000Z"
    assert (record["batch_id"], record["input_rows"], record["batch_duration_ms"]) == (7, 30, 750)
    assert (record["state_rows_total"], record["state_memory_bytes"], record["duplicates_dropped"]) == (22, 2500, 2)
    assert (record["index_rows"], record["signals_unmatched"]) == (5, 1)
    assert record["lag"] == {"tx": {"max": 2, "avg": 1.5, "partitions": 2, "total": 3}}
    assert record["lag_total"] == 3 and record["watermark"] == "2026-11-21T09:45:00.000Z"
    assert record["sources"][0]["end_offset"] == {"tx": {"0": 9, "1": 3}}
    assert record["state_operators"][0] == {
        "name": "transformWithStateExec",
        "rows_total": 10,
        "memory_bytes": 1000,
        "rows_dropped_by_watermark": 0,
        "rows_removed": 3,
        "updates_ms": 40,
        "removals_ms": 250,
        "commit_ms": 12,
    }
    assert record["state_operators"][2]["removals_ms"] == 0  # absent in Spark's progress: 0
    json.dumps(record)  # serializable as written


def test_progress_record_without_state_or_sources():
    record = progress_record({**PROGRESS, "stateOperators": [], "sources": []})
    assert (record["state_rows_total"], record["duplicates_dropped"], record["lag"], record["lag_total"]) == (0, None, {}, 0)


def test_consumed_offsets_per_partition():
    assert consumed_offsets(PROGRESS) == {("tx", 0): 9, ("tx", 1): 3}


def test_retime_shifts_time_fields_and_keeps_broken_values():
    moved = json.loads(
        retime_value(b'{"timestamp":"2026-11-21T10:00:00Z","updated_at":"2026-11-21T10:00:01Z","amount":"5"}', 3_600_000)
    )
    assert moved == {"timestamp": "2026-11-21T11:00:00.000Z", "updated_at": "2026-11-21T11:00:01.000Z", "amount": "5"}
    assert retime_value(b"{broken", 1000) == b"{broken"
    assert json.loads(retime_value(b'{"timestamp":"not a time"}', 1000)) == {"timestamp": "not a time"}


@pytest.mark.parametrize(
    ("value", "moved"),
    [
        (b'{"timestamp":"2026-11-21T10:00:00.5Z"}', b'{"timestamp":"2026-11-21T10:00:02.000Z"}'),
        (b'{"timestamp":"2026-11-21 10:00:00"}', b'{"timestamp":"2026-11-21T10:00:01.500Z"}'),  # the JSON path
        (b'{"timestamp":"2026-11-21T10:00:00+01:00"}', b'{"timestamp":"2026-11-21T09:00:01.500Z"}'),
        (
            b'{"timestamp":null,"updated_at":"2026-11-21T23:59:59.999Z"}',
            b'{"timestamp":null,"updated_at":"2026-11-22T00:00:01.499Z"}',
        ),
        (b'{"timestamp":"2026-02-30T10:00:00Z","amount":"5"}', b'{"timestamp":"2026-02-30T10:00:00Z","amount":"5"}'),
        (b'{"timestamp":"2026-11-21T10:00:00Z","timestamp":"2026-11-21T11:00:00Z"}', b'{"timestamp":"2026-11-21T11:00:01.500Z"}'),
        (
            b'{"explanations":"{\\"timestamp\\":\\"2026-11-21T10:00:00Z\\"}"}',
            b'{"explanations":"{\\"timestamp\\":\\"2026-11-21T10:00:00Z\\"}"}',
        ),
    ],
)
def test_retime_without_parsing_equals_the_json_path(value, moved):
    assert retime_value(value, 1500) == retime_value_json(value, 1500) == moved


def test_retime_without_parsing_equals_the_json_path_for_every_generated_record():
    """The producer's fast path (TimedValue) gives the JSON path's bytes for every message of a
    generated day: transactions of every malformed class, ML outputs, late and duplicate events."""
    from devtools.generator.workload import WorkloadConfig, generate_day

    workload = generate_day(WorkloadConfig(date="2026-11-21", transactions=3000, seed=5, malformed_rate=0.05))
    values = [
        value
        for _topic, _key, value, _ts in merged_messages(workload.kafka_messages(), workload.fraud_signal_messages(), "t", "s")
    ]
    fast = [TimedValue.of(v) for v in values]
    assert sum(t is not None for t in fast) > 0.9 * len(values)  # the common case is the fast one
    for shift in (-86_400_001, 0, 1, 3_723_456):
        assert [retime_value(v, shift) for v in values] == [retime_value_json(v, shift) for v in values]


def test_settings_reject_a_dedup_horizon_shorter_than_the_late_bound():
    with pytest.raises(ValueError, match="dedup_horizon_seconds"):
        StreamSettings(late_bound_seconds=600, dedup_horizon_seconds=60)


def test_listener_publishes_batches_and_idle_heartbeats(tmp_path):
    from types import SimpleNamespace

    from spark_apps.streaming.metrics import MetricsListener

    published: list[dict] = []
    listener = MetricsListener(
        str(tmp_path),
        "stream_index",
        publishers=[published.append],
        batch_stats=lambda batch_id: {"dead_letters": 6} if batch_id == 7 else None,
    )
    listener.onQueryStarted(SimpleNamespace(id="q-1", name="stream_index"))
    progress = {**PROGRESS, "eventTime": {"max": "2026-11-21T09:59:59.000Z"}}
    listener.onQueryProgress(SimpleNamespace(progress=SimpleNamespace(json=json.dumps(progress))))
    listener.onQueryIdle(SimpleNamespace(id="q-1", timestamp="2026-11-21T10:05:00.123Z"))
    listener.onQueryIdle(SimpleNamespace(id="another-query", timestamp="2026-11-21T10:06:00.000Z"))
    batch, idle = published
    assert (batch["records_read"], batch["dead_letters"], batch["lag_total"]) == (7, 6, 3)  # from the source's metrics
    assert batch["quarantine_rate"] == pytest.approx(6 / 7)
    assert batch["newest_produced_at"] == idle["newest_produced_at"] == "2026-11-21T09:59:59.000000Z"
    assert (idle["input_rows"], idle["lag_total"], idle["quarantine_rate"]) == (0, 0, None)  # idle: nothing new to read
    assert json.loads((tmp_path / "stream" / "stream_index" / "latest.json").read_text())["dead_letters"] == 6
    heartbeat = json.loads((tmp_path / "stream" / "stream_index" / "heartbeat.json").read_text())
    assert (heartbeat["heartbeat_at"], heartbeat["query_id"], heartbeat["lag_total"]) == ("2026-11-21T10:05:00.123000Z", "q-1", 0)
    assert heartbeat == idle  # the other query's idle event wrote nothing


def record_jvm_calls(monkeypatch) -> list[str]:
    """From now on in the test, every Py4J command the driver sends to the JVM, in order."""
    import py4j.clientserver

    sent: list[str] = []
    original = py4j.clientserver.ClientServerConnection.send_command

    def recording(self, command):
        if not command.startswith("m\nd\n"):  # Py4J's release of a garbage-collected proxy: not ours
            sent.append(command)
        return original(self, command)

    monkeypatch.setattr(py4j.clientserver.ClientServerConnection, "send_command", recording)
    return sent


def test_building_a_column_makes_no_call_site_round_trips_to_the_jvm(spark, monkeypatch):
    """The micro-batch writer builds its scoring plan anew every batch. With PySpark's DataFrame
    debugging on (its default), every Column call also sent the Python call site to the JVM:
    five extra round trips each (measured before the function lookups were cached: 33 instead of
    13 for this expression, together over a second per batch). spark_apps.session.BASE_CONF
    turns it off (a static setting)."""
    import pyspark.errors.utils
    from pyspark.sql import functions as F

    monkeypatch.setattr(pyspark.errors.utils, "_enable_debugging_cache", None)
    F.col("warm_up")  # PySpark reads the session's setting once, on the first Column call
    sent = record_jvm_calls(monkeypatch)
    F.when(F.col("amount") > F.lit(5), F.lit("high"))
    assert len(sent) <= 13, f"{len(sent)} JVM calls to build one CASE expression"


def test_a_function_call_resolves_its_jvm_method_once(spark, monkeypatch):
    """spark_apps.session.cache_jvm_function_lookups: after the first F.col the next ones make one
    JVM round trip (the call) instead of three (two reflection lookups, then the call)."""
    from pyspark.sql import functions as F

    F.col("warm_up")
    sent = record_jvm_calls(monkeypatch)
    column = F.col("amount")
    assert len(sent) == 1, sent
    assert str(column) == "Column<'amount'>"


def checkpoint_options(tmp_path):
    from spark_apps.jobs.stream_index import StreamJobOptions

    lake_dir = tmp_path / "lake"
    return StreamJobOptions("127.0.0.1:9", "t", "s", "a", "d", *(str(lake_dir / n) for n in ("raw", "index", "cp", "metrics")))


def test_a_new_checkpoint_records_the_plan_version_and_keeps_it(tmp_path):
    from spark_apps.jobs.stream_index import PLAN_FILE, PLAN_VERSION, check_checkpoint_plan

    options = checkpoint_options(tmp_path)
    check_checkpoint_plan(options)
    record = tmp_path / "lake" / "cp" / "stream_index" / PLAN_FILE
    assert json.loads(record.read_text()) == {"plan": PLAN_VERSION}
    (record.parent / "offsets").mkdir()  # the query ran
    check_checkpoint_plan(options)  # the same plan goes on


def test_a_checkpoint_of_the_earlier_plan_is_refused_with_what_to_do(tmp_path):
    """A checkpoint that ran before the plan recorded its version holds the v1 state (Python rule
    state, Spark's dedup and join) and the earlier broker's offsets: refused, not misread."""
    from spark_apps.jobs.stream_index import PLAN_FILE, CheckpointError, check_checkpoint_plan

    options = checkpoint_options(tmp_path)
    (tmp_path / "lake" / "cp" / "stream_index" / "offsets").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="started by streaming plan 'v1'.*new checkpoint"):
        check_checkpoint_plan(options)
    assert not (tmp_path / "lake" / "cp" / "stream_index" / PLAN_FILE).exists()


def test_settings_bound_the_horizon_and_derive_the_state_times():
    settings = StreamSettings(late_bound_seconds=600, dedup_horizon_seconds=901, signal_window_seconds=300)
    assert (settings.watermark_delay_seconds, settings.keep_transaction_seconds, settings.lookback_seconds) == (451, 451, 900)
    assert StreamSettings(dedup_horizon_seconds=900, signal_window_seconds=800).keep_transaction_seconds == 800
    with pytest.raises(ValueError, match="dedup_horizon_seconds"):
        StreamSettings(late_bound_seconds=600, dedup_horizon_seconds=599)
    with pytest.raises(ValueError, match="positive"):
        StreamSettings(signal_window_seconds=0)
    with pytest.raises(ValueError, match="max_clock_skew_seconds"):
        StreamSettings(max_clock_skew_seconds=-1)
    assert StreamSettings().max_clock_skew_seconds == 300


def test_split_output_takes_index_rows_alerts_of_txn_and_signal_rows_and_dead_letters():
    """A ``txn`` row is an index row and, when flagged, an alert; a ``signal`` row (an earlier
    transaction's late ML output) only an alert; dead letters go by their key; every kind is counted."""
    import pyarrow as pa

    from spark_apps.schemas import STREAM_INDEX_SCHEMA
    from spark_apps.streaming.transforms import BATCH_TIME_PLACEHOLDER_JSON
    from spark_apps.streaming.writer import split_output

    placeholder = f'"{BATCH_TIME_PLACEHOLDER_JSON}"'
    rows = [
        {"row_kind": "txn", "transaction_id": "t-2", "alert": '{"a":2,"alert_time":' + placeholder + "}"},
        {"row_kind": "txn", "transaction_id": "t-1", "alert": None},  # not flagged
        {"row_kind": "signal", "transaction_id": "t-0", "alert": '{"a":0}'},
        {"row_kind": "signal", "transaction_id": "t-9", "alert": None},  # re-scored, not flagged
        {"row_kind": "duplicate", "transaction_id": "t-2", "alert": None},
        {"row_kind": "dead_letter", "dead_letter_message": '{"d":1,"at":' + placeholder + "}", "dead_letter_key": "tx/0/5"},
    ]
    types = {"ingested_at": pa.timestamp("us", tz="UTC")}
    columns = {name: pa.array([r.get(name) for r in rows], types.get(name)) for name in STREAM_INDEX_SCHEMA.fieldNames()}
    for name in ("row_kind", "alert", "dead_letter_message", "dead_letter_key"):
        columns[name] = pa.array([r.get(name) for r in rows], pa.string())
    columns.update({"dt": ["2026-11-21"] * len(rows), "hour": ["10"] * len(rows)})
    batch_time = dt.datetime(2026, 11, 21, 10, 5, 7, 123456, tzinfo=dt.UTC)
    index, alerts, dead, counts = split_output(pa.table(columns), 7, batch_time)
    assert index.column("transaction_id").to_pylist() == ["t-2", "t-1"]
    assert index.column("version").to_pylist() == ["stream-b7", "stream-b7"]
    assert index.column("ingested_at").to_pylist() == [batch_time, batch_time]
    assert index.column_names == [*STREAM_INDEX_SCHEMA.fieldNames(), "dt", "hour"]
    # The plan's placeholder becomes the batch's time (from its offset log) in every message.
    assert alerts == [("t-0", '{"a":0}'), ("t-2", '{"a":2,"alert_time":"2026-11-21T10:05:07.123Z"}')]
    assert dead == [("tx/0/5", '{"d":1,"at":"2026-11-21T10:05:07.123Z"}')]
    assert counts == {"txn": 2, "signal": 2, "dead_letter": 1, "duplicate": 1, "signal_unmatched": 0}


def test_a_local_checkpoint_is_written_through_hadoops_file_system_api(spark, tmp_path):
    """On a local disk the checkpoint files go through Spark's FileSystem-based manager (its default,
    FileContext, starts readlink and chmod processes for every file without Hadoop's native
    library: 35 ms vs 10 ms per file); on S3 Spark's default stays."""
    from spark_apps.jobs.stream_index import CHECKPOINT_FILE_MANAGER, LOCAL_CHECKPOINT_FILE_MANAGER, stream_conf

    assert stream_conf(str(tmp_path))[CHECKPOINT_FILE_MANAGER] == LOCAL_CHECKPOINT_FILE_MANAGER
    assert stream_conf(f"file://{tmp_path}")[CHECKPOINT_FILE_MANAGER] == LOCAL_CHECKPOINT_FILE_MANAGER
    assert CHECKPOINT_FILE_MANAGER not in stream_conf("s3://payments-checkpoints/stream_index")
    # The key is the one Spark reads when it opens a checkpoint (offsets, commits, state changelogs).
    jvm, previous = spark._jvm, spark.conf.get(CHECKPOINT_FILE_MANAGER, None)
    spark.conf.set(CHECKPOINT_FILE_MANAGER, LOCAL_CHECKPOINT_FILE_MANAGER)
    try:
        hadoop_conf = spark._jsparkSession.sessionState().newHadoopConf()
        manager = jvm.org.apache.spark.sql.execution.streaming.CheckpointFileManager.create(
            jvm.org.apache.hadoop.fs.Path(f"file://{tmp_path}"), hadoop_conf
        )
        assert manager.getClass().getName() == LOCAL_CHECKPOINT_FILE_MANAGER
    finally:
        if previous is None:
            spark.conf.unset(CHECKPOINT_FILE_MANAGER)
        else:
            spark.conf.set(CHECKPOINT_FILE_MANAGER, previous)


# --- per-batch conservation --------------------------------------------------------------------

TOPICS = {"transactions": "tx", "signals": "sig"}
TWO_TOPICS = {
    **PROGRESS,
    "sources": [
        {
            "description": "KafkaV2[Subscribe[tx]]",
            "startOffset": '{"tx": {"0": 0}}',
            "endOffset": '{"tx": {"0": 10}}',
            "numInputRows": 10,
        },
        {
            "description": "KafkaV2[Subscribe[sig]]",
            "startOffset": '{"sig": {"0": 0}}',
            "endOffset": '{"sig": {"0": 4}}',
            "numInputRows": 4,
        },
    ],
}
# 10 transactions: 6 indexed, 1 duplicate, 3 dead letters; 4 ML outputs: 1 dead letter, 1 paired with an
# earlier transaction, 1 unmatched, 1 waiting in state (or folded into a transaction's row).
STATS = {
    "index_rows": 6,
    "duplicates": 1,
    "signals_paired": 1,
    "signals_unmatched": 1,
    "dead_letters": 4,
    "dead_letters_by_topic": {"tx": 3, "sig": 1},
}


def test_a_batch_that_accounts_for_every_record_conserves():
    record = progress_record(TWO_TOPICS, stats=STATS, input_topics=TOPICS)
    assert record["conservation"] == {
        "transactions_read": 10,
        "signals_read": 4,
        "indexed": 6,
        "duplicates": 1,
        "dead_letters_transactions": 3,
        "dead_letters_signals": 1,
        "dead_letters_other": 0,
        "signals_paired": 1,
        "signals_unmatched": 1,
        "dropped_by_watermark": 0,
        "transactions_unaccounted": 0,
        "signals_unresolved": 1,
        "conserved": True,
    }


@pytest.mark.parametrize(
    ("change", "conserved"),
    [
        ({"stats": {**STATS, "index_rows": 5}}, False),  # a transaction lost between read and write
        ({"stats": {**STATS, "duplicates": 2}}, False),  # one counted twice
        ({"stats": {**STATS, "dead_letters_by_topic": {"tx": 3, "sig": 1, "unknown": 1}}}, False),
        ({"stats": {**STATS, "dead_letters_by_topic": {"tx": 3, "sig": 5}}}, False),  # more than the topic's records
        ({"stats": {**STATS, "index_rows": 5}, "dropped": 1}, True),  # the watermark dropped it: counted by Spark
        ({"stats": {**STATS, "index_rows": 4}, "dropped": 1}, False),  # one dropped, two missing
        ({"stats": {**STATS, "signals_paired": 3}}, True),  # waiting ML outputs resolved: not checked per batch
    ],
)
def test_conservation_fails_for_a_lost_or_invented_record(change, conserved):
    progress = {
        **TWO_TOPICS,
        "stateOperators": [{**PROGRESS["stateOperators"][0], "numRowsDroppedByWatermark": change.get("dropped", 0)}],
    }
    record = progress_record(progress, stats=change["stats"], input_topics=TOPICS)
    assert record["conservation"]["conserved"] is conserved


def test_no_conservation_record_without_the_writers_counts_or_the_topics():
    assert progress_record(TWO_TOPICS, stats=STATS)["conservation"] is None
    assert progress_record(TWO_TOPICS, input_topics=TOPICS)["conservation"] is None


def test_rows_read_per_topic_come_from_each_sources_rows():
    from spark_apps.streaming.metrics import rows_read_by_topic

    assert rows_read_by_topic(TWO_TOPICS) == {"tx": 10, "sig": 4}
    both = {
        "sources": [
            {"startOffset": '{"a": {"0": 2}, "b": {"0": 0}}', "endOffset": '{"a": {"0": 5}, "b": {"0": 1}}', "numInputRows": 4}
        ]
    }
    assert rows_read_by_topic(both) == {"a": 3, "b": 1}  # one source of two topics: its offset ranges


def test_conservation_is_published_as_a_violation_count():
    import datetime as dt

    from spark_apps.streaming.cloudwatch import cloudwatch_metric_data

    now = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)

    def violations(record):
        return [d["Value"] for d in cloudwatch_metric_data(record, now) if d["MetricName"] == "ConservationViolations"]

    good = progress_record(TWO_TOPICS, stats=STATS, input_topics=TOPICS)
    bad = progress_record(TWO_TOPICS, stats={**STATS, "index_rows": 5}, input_topics=TOPICS)
    assert (violations(good), violations(bad)) == ([0.0], [1.0])
    assert violations({"lag_total": 0}) == []  # a heartbeat holds no batch: nothing to count


def test_the_writer_counts_dead_letters_per_input_topic():
    import pyarrow as pa

    from spark_apps.streaming.writer import dead_letters_by_topic

    table = pa.table(
        {
            "row_kind": ["txn", "dead_letter", "dead_letter", "dead_letter", "duplicate"],
            "dead_letter_topic": [None, "tx", "sig", "tx", None],
        }
    )
    assert dead_letters_by_topic(table) == {"tx": 2, "sig": 1}
    assert dead_letters_by_topic(table.drop_columns(["dead_letter_topic"])) == {}


def test_the_listener_records_the_batchs_conservation(tmp_path):
    from types import SimpleNamespace

    from spark_apps.streaming.metrics import MetricsListener

    published: list[dict] = []
    listener = MetricsListener(
        str(tmp_path), "stream_index", publishers=[published.append], batch_stats=lambda batch_id: STATS, input_topics=TOPICS
    )
    listener.onQueryProgress(SimpleNamespace(progress=SimpleNamespace(json=json.dumps(TWO_TOPICS))))
    written = json.loads((tmp_path / "stream" / "stream_index" / "latest.json").read_text())
    assert written["conservation"]["conserved"] is True and published[0]["conservation"] == written["conservation"]


def test_the_supervisor_passes_the_clock_skew_allowance_and_the_job_applies_it():
    from payments_platform.profiles import load_profile
    from payments_platform.stream_control import stream_job
    from spark_apps.jobs.stream_index import options_from_args, parse_args

    arguments = stream_job(load_profile("local")).arguments
    assert arguments[arguments.index("--max-clock-skew-seconds") + 1] == "300"
    assert options_from_args(parse_args(arguments)).settings.max_clock_skew_seconds == 300
    changed = [*arguments, "--max-clock-skew-seconds", "60"]
    assert options_from_args(parse_args(changed)).settings == StreamSettings(max_clock_skew_seconds=60)


def test_the_local_controller_passes_every_setting_the_job_requires(tmp_path, monkeypatch):
    """The local supervisor's spark-submit command carries every required option: the job parses it
    with no runtime profile (it imports nothing of the Airflow side) and runs on exactly those values."""
    from payments_platform.profiles import load_profile
    from payments_platform.stream_control import LocalStreamController
    from spark_apps.jobs.stream_index import REQUIRED_OPTIONS, options_from_args, parse_args

    profile = load_profile("local")
    command = LocalStreamController(profile, state_dir=tmp_path).command()
    job_arguments = command[next(i for i, part in enumerate(command) if part.endswith("/stream_index.py")) + 1 :]
    for name in REQUIRED_OPTIONS:
        assert f"--{name.replace('_', '-')}" in job_arguments, name
    options = options_from_args(parse_args(job_arguments))
    assert (options.bootstrap, options.raw_uri, options.index_uri, options.checkpoint_uri, options.metrics_uri) == (
        profile.kafka.bootstrap_servers,
        profile.lake.raw_uri,
        profile.lake.index_uri,
        profile.lake.checkpoint_uri,
        profile.lake.metrics_uri,
    )
    assert command[command.index("--master") + 1] == profile.spark.master
    with pytest.raises(SystemExit):
        parse_args(job_arguments[: job_arguments.index("--metrics-uri")])  # a missing location is an error, not a default
