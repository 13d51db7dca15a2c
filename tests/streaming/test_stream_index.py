"""The stream index job end to end against the real embedded broker: events in, index rows and alerts out."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.fraud_rules import load_rules
from spark_apps.schemas import STREAM_INDEX_SCHEMA, Reason
from spark_apps.streaming.metrics import read_latest
from tests.streaming.helpers import batch_records, consume_all, epoch_ms, job_options, produce, run_available_now, txn

pytestmark = [pytest.mark.kafka, pytest.mark.spark]

T0 = "2026-11-21T10:00:00Z"


def at(seconds: float) -> str:
    return (dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def signal(transaction_id: str, score: str, seconds: float) -> dict:
    return {
        "model_version": "m-7",
        "transaction_id": transaction_id,
        "fraud_score": score,
        "explanations": "{}",
        "inference_time": at(seconds),
    }


def read_index(spark, index_uri: str):
    return spark.read.parquet(f"{index_uri}/stream_index")


def parse_time(text: str) -> dt.datetime:
    """A JSON message's timestamp (UTC) as a naive datetime, like Spark returns timestamps."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)


def test_events_in_index_rows_alerts_and_dead_letters_out(spark, kafka_broker, kafka_topics, tmp_path):
    base = epoch_ms(T0)
    # ML output for t-sig arrives before its transaction.
    produce(kafka_broker.bootstrap, kafka_topics["fraud_signals"], [("t-sig", signal("t-sig", "0.9500", 0), base)])
    burst_pan = "4000000000000002"
    produce(
        kafka_broker.bootstrap,
        kafka_topics["transactions"],
        [
            ("t-sig", txn("t-sig", at(0), user="u-sig"), base + 100),
            ("t-high", txn("t-high", at(1), user="u-high", amount="6000.00", pan="5500000000000004"), base + 200),
            ("t-high", txn("t-high", at(1), user="u-high", amount="6000.00", pan="5500000000000004"), base + 300),  # resend
            *[
                (f"t-v{i}", txn(f"t-v{i}", at(10 + 10 * i), user="u-burst", amount="20.00", pan=burst_pan), base + 400 + i)
                for i in range(4)
            ],
            ("bad", '{"transaction_id": "bad", "pan": "4111111111111111", ', base + 500),  # cut off: unparseable
            ("t-nouser", {**txn("t-nouser", at(2)), "user_id": ""}, base + 600),
            ("t-late", txn("t-late", "2026-11-21T08:00:00Z", user="u-late"), base + 700),  # 2 h before produce
            ("t-future", txn("t-future", "2026-11-21T12:00:00Z", user="u-future"), base + 800),  # 2 h after produce
        ],
    )
    options = job_options(kafka_broker, kafka_topics, tmp_path)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_available_now(spark, options, load_rules())
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)

    index_df = read_index(spark, options.index_uri)
    # Parquet reads every column back as nullable: compare names and types.
    assert [(f.name, f.dataType.simpleString()) for f in index_df.drop("dt", "hour").schema] == [
        (f.name, f.dataType.simpleString()) for f in STREAM_INDEX_SCHEMA
    ]
    expected_index = [
        Row(
            transaction_id="t-high",
            fraud_score=None,
            rule_flags=["HIGH_AMOUNT"],
            policy_flags=[],
            risk_score=25,
            recommended_action="ALLOW",
            card_last4="0004",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
        Row(
            transaction_id="t-sig",
            fraud_score=Decimal("0.9500"),
            rule_flags=[],
            policy_flags=[],
            risk_score=57,
            recommended_action="ALLOW",
            card_last4="1111",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
        Row(
            transaction_id="t-v0",
            fraud_score=None,
            rule_flags=[],
            policy_flags=[],
            risk_score=0,
            recommended_action="ALLOW",
            card_last4="0002",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
        Row(
            transaction_id="t-v1",
            fraud_score=None,
            rule_flags=[],
            policy_flags=[],
            risk_score=0,
            recommended_action="ALLOW",
            card_last4="0002",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
        Row(
            transaction_id="t-v2",
            fraud_score=None,
            rule_flags=[],
            policy_flags=[],
            risk_score=0,
            recommended_action="ALLOW",
            card_last4="0002",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
        Row(
            transaction_id="t-v3",
            fraud_score=None,
            rule_flags=["VELOCITY"],
            policy_flags=[],
            risk_score=25,
            recommended_action="REQUIRE_3DS",
            card_last4="0002",
            dt=dt.date(2026, 11, 21),
            hour=10,
        ),
    ]
    columns = [
        "transaction_id",
        "fraud_score",
        "rule_flags",
        "policy_flags",
        "risk_score",
        "recommended_action",
        "card_last4",
        "dt",
        "hour",
    ]
    assertDataFrameEqual(index_df.select(*columns), spark.createDataFrame(expected_index, index_df.select(*columns).schema))

    alerts = {m["key"]: m["value"] for m in consume_all(kafka_broker.bootstrap, kafka_topics["fraud_alerts"])}
    assert sorted(alerts) == ["t-high", "t-v3"]
    assert alerts["t-v3"]["recommended_action"] == "REQUIRE_3DS" and alerts["t-v3"]["reasons"] == ["VELOCITY"]
    assert alerts["t-high"]["reasons"] == ["HIGH_AMOUNT"] and alerts["t-high"]["risk_score"] == 25

    dead = consume_all(kafka_broker.bootstrap, kafka_topics["dead_letter"])
    assert sorted((m["value"]["transaction_id"] or "", m["value"]["reason_code"]) for m in dead) == [
        ("", Reason.UNPARSEABLE),  # no transaction id could be read
        ("t-future", Reason.FUTURE_EVENT_TIME),
        ("t-late", Reason.LATE),
        ("t-nouser", Reason.MISSING_REQUIRED_FIELD),
    ]
    # Each message carries the time of the micro-batch that wrote it (the index row's ingested_at).
    ingested = {r.transaction_id: r.ingested_at for r in index_df.select("transaction_id", "ingested_at").collect()}
    assert all(started <= t <= finished for t in ingested.values())
    in_ms = {key: t.replace(microsecond=t.microsecond // 1000 * 1000) for key, t in ingested.items()}  # JSON keeps ms
    assert {key: parse_time(a["alert_time"]) for key, a in alerts.items()} == {key: in_ms[key] for key in alerts}
    assert all(started <= parse_time(m["value"]["quarantined_at"]) <= finished for m in dead)
    # A late record's dead letter carries the record as it arrived, masked like a rejected one.
    future = next(m["value"] for m in dead if m["value"]["reason_code"] == Reason.FUTURE_EVENT_TIME)
    assert future["reason_detail"] == (
        "event_time 2026-11-21T12:00:00Z is more than 300s after its produce time 2026-11-21T10:00:00Z"
    )
    late = next(m["value"] for m in dead if m["value"]["reason_code"] == Reason.LATE)
    assert late["reason_detail"] == "produced more than 600s after event_time: 2026-11-21T08:00:00Z"
    assert json.loads(late["payload_masked"]) == {
        **txn("t-late", "2026-11-21T08:00:00Z", user="u-late"),
        "pan": "****1111",
        "cvv": "***",
        "expiry": "12/**",
        "ip": "10.1.2.0/24",  # reduced as in the index
    }
    payloads = " ".join(m["value"]["payload_masked"] for m in dead)
    assert "4111111111111111" not in payloads and '"cvv":"123"' not in payloads and "[pan ****1111]" in payloads

    # Conservation: 11 records in = 6 indexed + 4 dead letters + 1 duplicate (over every micro-batch).
    records = batch_records(options.metrics_uri, options.query_name)
    duplicates = sum(r["duplicates_dropped"] for r in records)
    assert duplicates == 1
    assert read_latest(options.metrics_uri, options.query_name)["lag_total"] == 0
    assert sum(r["dead_letters"] or 0 for r in records) == len(dead) == 4
    assert index_df.count() + len(dead) + duplicates == 11
    # ... and each micro-batch recorded its own: every one conserves, and together they hold every record.
    conservation = [r["conservation"] for r in records]
    assert all(c["conserved"] for c in conservation), conservation
    totals = {k: sum(c[k] for c in conservation) for k in conservation[0] if k != "conserved"}
    assert {k: totals[k] for k in ("transactions_read", "indexed", "duplicates", "dead_letters_transactions")} == {
        "transactions_read": 11,
        "indexed": 6,
        "duplicates": 1,
        "dead_letters_transactions": 4,
    }
    # The ML output came before its transaction: it is in t-sig's index row, not a row of its own.
    assert (totals["signals_read"], totals["signals_paired"], totals["signals_unmatched"], totals["signals_unresolved"]) == (
        1,
        0,
        0,
        1,
    )


def test_late_signal_updates_the_alert_and_a_restart_keeps_every_transaction_once(spark, kafka_broker, kafka_topics, tmp_path):
    base = epoch_ms(T0)
    options = job_options(kafka_broker, kafka_topics, tmp_path)
    rules = load_rules()
    produce(
        kafka_broker.bootstrap,
        kafka_topics["transactions"],
        [
            ("t-a", txn("t-a", at(0), user="u-a", amount="7000.00"), base),
            ("t-b", txn("t-b", at(1), user="u-b", pan="5500000000000004"), base + 10),
        ],
    )
    run_available_now(spark, options, rules)
    # After the restart: t-a's ML output (after its transaction) and a resend of t-b.
    produce(kafka_broker.bootstrap, kafka_topics["fraud_signals"], [("t-a", signal("t-a", "0.9900", 5), base + 5000)])
    produce(
        kafka_broker.bootstrap,
        kafka_topics["transactions"],
        [("t-b", txn("t-b", at(1), user="u-b", pan="5500000000000004"), base + 6000)],
    )
    run_available_now(spark, options, rules)

    index_df = read_index(spark, options.index_uri)
    assertDataFrameEqual(
        index_df.select("transaction_id", "fraud_score", "version"),
        [
            Row(transaction_id="t-a", fraud_score=None, version="stream-b0"),
            Row(transaction_id="t-b", fraud_score=None, version="stream-b0"),
        ],
    )
    alerts = consume_all(kafka_broker.bootstrap, kafka_topics["fraud_alerts"])
    # First the rules alone (HIGH_AMOUNT: 25 points), then re-scored with the ML output (+ 0.99 * 60).
    assert [(a["key"], a["value"]["risk_score"], a["value"]["recommended_action"], a["value"]["reasons"]) for a in alerts] == [
        ("t-a", 25, "ALLOW", ["HIGH_AMOUNT"]),
        ("t-a", 84, "MANUAL_REVIEW", ["HIGH_AMOUNT", "ML_SCORE_0.9900"]),
    ]


def test_ids_are_remembered_for_the_dedup_horizon_and_ml_outputs_paired_within_the_window(
    spark, kafka_broker, kafka_topics, tmp_path
):
    """The watermark trails the newest produce time by half the dedup horizon (900 s -> 450 s). A
    copy of t-a 590 s later is a duplicate; once the watermark has passed t-a's produce time + 450 s
    (the id's event-time timer) the id is forgotten and t-a counts as new again. An ML output produced
    within the 300 s window after its transaction (in a later micro-batch) updates the alert; one
    produced after the window is counted as unmatched, also once the watermark has passed the
    remembered transaction (Spark fails a query whose operator emits a row older than the watermark)."""
    import time

    from spark_apps.jobs.stream_index import start_stream_index
    from tests.streaming.helpers import PAN_KEY

    options = job_options(kafka_broker, kafka_topics, tmp_path, available_now=False)
    assert (options.settings.dedup_horizon_seconds, options.settings.signal_window_seconds) == (900, 300)
    base = epoch_ms(T0)
    waves = [
        [("t-a", txn("t-a", at(0), user="u-a"), base)],
        [
            ("t-a", txn("t-a", at(0), user="u-a"), base + 590_000),  # a resend, on time: a duplicate
            ("t-f1", txn("t-f1", at(700), user="u-f1", amount="7000.00"), base + 700_000),
        ],
        [("t-f2", txn("t-f2", at(1000), user="u-f2"), base + 1_000_000)],
        [("t-f3", txn("t-f3", at(1005), user="u-f3"), base + 1_005_000)],
        [("t-a", txn("t-a", at(1010), user="u-a"), base + 1_010_000)],  # after the horizon: new again
        [("t-f4", txn("t-f4", at(1200), user="u-f4"), base + 1_200_000)],  # the watermark passes t-f1 (750 s)
        [("t-f5", txn("t-f5", at(1205), user="u-f5"), base + 1_205_000)],  # ... for late rows too
        [("t-f6", txn("t-f6", at(1210), user="u-f6"), base + 1_210_000)],
    ]
    signal_waves = [
        [],
        [],
        [("t-f1", signal("t-f1", "0.5000", 1000), base + 1_000_000)],  # 300 s after t-f1: paired
        [],
        [("t-f1", signal("t-f1", "0.9000", 1010), base + 1_010_000)],  # 310 s after: unmatched
        [],
        [],
        # t-f1 is still remembered (until the watermark passes 700 + 450 s) but the watermark has
        # passed its produce time: the unmatched row leaves the operator at the signal's time.
        [("t-f1", signal("t-f1", "0.7000", 1210), base + 1_210_000)],
    ]
    query, writer, listener = start_stream_index(spark, options, PAN_KEY, load_rules())
    try:
        for wave, messages in enumerate(waves):
            produce(kafka_broker.bootstrap, kafka_topics["fraud_signals"], signal_waves[wave])
            produce(kafka_broker.bootstrap, kafka_topics["transactions"], messages)
            deadline = time.monotonic() + 300
            while sum((writer.stats(b) or {}).get("index_rows", 0) for b in range(100)) < wave + 1:
                assert query.exception() is None, query.exception()
                assert time.monotonic() < deadline, f"wave {wave} not indexed"
                time.sleep(0.2)
    finally:
        query.stop()
        spark.streams.removeListener(listener)
        writer.close()
    index_df = read_index(spark, options.index_uri)
    assertDataFrameEqual(
        index_df.select("transaction_id"),
        [Row(transaction_id=t) for t in ("t-a", "t-f1", "t-f2", "t-f3", "t-a", "t-f4", "t-f5", "t-f6")],
    )
    stats = [writer.stats(b) for b in range(100) if writer.stats(b)]
    assert sum(s["duplicates"] for s in stats) == 1
    assert sum(s["signals_unmatched"] for s in stats) == 2
    alerts = consume_all(kafka_broker.bootstrap, kafka_topics["fraud_alerts"])
    assert [(a["key"], a["value"]["reasons"]) for a in alerts] == [
        ("t-f1", ["HIGH_AMOUNT"]),
        ("t-f1", ["HIGH_AMOUNT", "ML_SCORE_0.5000"]),
    ]


def test_a_micro_batch_reads_parses_and_shuffles_each_record_once(spark, kafka_broker, kafka_topics, tmp_path):
    """One chain: each topic is scanned and parsed once per micro-batch, and the rows are shuffled
    once per stateful pass (by transaction id, card, user), on the JVM; no Python worker runs."""
    from tests.streaming.helpers import run_available_now

    base = epoch_ms(T0)
    produce(kafka_broker.bootstrap, kafka_topics["fraud_signals"], [("t-1", signal("t-1", "0.5000", 1), base)])
    produce(kafka_broker.bootstrap, kafka_topics["transactions"], [("t-1", txn("t-1", at(1)), base + 1)])
    options = job_options(kafka_broker, kafka_topics, tmp_path)
    query = run_available_now(spark, options, load_rules()).query
    lines = query._jsq.streamingQuery().lastExecution().executedPlan().treeString().splitlines()
    assert sum("MicroBatchScan" in line for line in lines) == 2
    assert sum("from_json" in line for line in lines) == 2
    shuffles = [line.split("hashpartitioning(")[1].split("#")[0] for line in lines if "Exchange hashpartitioning(" in line]
    # One per stateful pass, by the key column the operators group on (user, card, transaction id), and
    # grouped by that column: no AppendColumns step turning rows into objects to compute a key.
    assert shuffles == ["_state_key", "_state_key", "_state_key"]
    assert sum("TransformWithState " in line for line in lines) == 3
    assert not any("AppendColumns" in line for line in lines)
    # Every projection but the JSON parse's is in generated code (no higher-order function keeps one
    # out of it; Spark 4.0's from_json has no generated code of its own).
    interpreted = [line for line in lines if line.lstrip(" :+-").startswith("Project [")]
    assert len(interpreted) == 2 and all("from_json(" in line for line in interpreted)
    assert not any(python in line for line in lines for python in ("Python", "ArrowEval", "BatchEval"))
    assert sum(progress.numInputRows for progress in query.recentProgress) == 2


def compilations(spark) -> int:
    """Generated-code compilations of this JVM so far (Spark's codegen metric)."""
    return spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount()


def test_a_running_stream_reuses_its_compiled_plan_code(spark, kafka_broker, kafka_topics, tmp_path):
    """After its first micro-batches a running query compiles (almost) nothing: its plans' code is
    the same every batch and stays cached. With Spark's default cache of 100 entries the stream
    evicted its own classes and compiled ~100 again every batch (spark_apps.session.BASE_CONF)."""
    import time

    from spark_apps.jobs.stream_index import start_stream_index
    from tests.streaming.helpers import PAN_KEY

    options = job_options(kafka_broker, kafka_topics, tmp_path, available_now=False)
    query, writer, listener = start_stream_index(spark, options, PAN_KEY, load_rules())
    per_wave = []
    try:
        for wave in range(4):
            before = compilations(spark)
            base = epoch_ms(T0) + wave * 1000
            ids = [f"w{wave}-{i}" for i in range(3)]
            produce(kafka_broker.bootstrap, kafka_topics["fraud_signals"], [(ids[0], signal(ids[0], "0.5000", 1), base)])
            produce(
                kafka_broker.bootstrap,
                kafka_topics["transactions"],
                [
                    *[(t, txn(t, at(1 + wave), user=f"u-{t}"), base + 1 + i) for i, t in enumerate(ids)],
                    (f"bad-{wave}", '{"transaction_id": ', base + 5),  # unparseable: a dead letter
                ],
            )
            deadline = time.monotonic() + 300
            while True:
                stats = [writer.stats(b) or {} for b in range(100)]
                if (
                    sum(s.get("index_rows", 0) for s in stats) == 3 * (wave + 1)
                    and sum(s.get("dead_letters", 0) for s in stats) == wave + 1
                ):
                    break
                assert query.exception() is None, query.exception()
                assert time.monotonic() < deadline, f"wave {wave} not written: {stats}"
                time.sleep(0.2)
            per_wave.append(compilations(spark) - before)
    finally:
        query.stop()
        spark.streams.removeListener(listener)
        writer.close()
    assert max(per_wave[2:]) <= 15, f"compilations per wave {per_wave}"
    # The metric counts: new code (a long literal is compiled into it) is one compilation more.
    before = compilations(spark)
    spark.range(1).selectExpr(f"id + {time.time_ns()}L").collect()
    assert compilations(spark) > before
