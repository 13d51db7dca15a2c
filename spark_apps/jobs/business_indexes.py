"""Business index job: one business index (or all) for one date, from the published aggregate index.

    python -m spark_apps.jobs.business_indexes --index reconciliation_index --date 2026-11-21 --version <id> \
        --index-uri <lake.index_uri> --raw-uri <lake.raw_uri> --metrics-uri <lake.metrics_uri> \
        --aggregate-location <published aggregate_index version of the date> \
        [--config include/config/indexes.yaml] [--fraud-labels-location <folder>] [--master local[2]] [--conf k=v ...]

``--index all`` builds every index in one Spark session. Each index is written to
``<index-uri>/<index>/dt=<date>/version=<version>/`` with a ``_manifest.json`` (rows and
per-index counts). Inputs besides the aggregate index: merchants and users
(``<raw-uri>/{merchants,users}/dt=<date>/``), statement lines
(``<raw-uri>/settlements/dt=<date>/``), streaming metrics (``<metrics-uri>/stream/``,
JSON lines) and the run manifests of the date (ops), confirmed fraud cases
(``--fraud-labels-location``, default ``<raw-uri>/fraud_labels/``; optional).
Prints one manifest (JSON) per index, the last line being the last index built.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from payments_contract import AGGREGATE_INDEX, BATCH_INDEX, BUSINESS_INDEXES
from spark_apps import lake
from spark_apps.indexes.compliance import build_compliance_index
from spark_apps.indexes.config import IndexConfig, load_index_config
from spark_apps.indexes.fraud import build_fraud_index
from spark_apps.indexes.inputs import exists, list_manifests, read_raw_side, read_table, stream_metric_records
from spark_apps.indexes.merchant_performance import build_merchant_performance_index
from spark_apps.indexes.ml_feedback import build_ml_feedback
from spark_apps.indexes.ops import build_ops_index, stage_run_from_manifest, stage_run_from_stream_metric, stage_runs_df
from spark_apps.indexes.reconciliation import build_reconciliation_index
from spark_apps.indexes.settlement_schedule import build_settlement_schedule_index
from spark_apps.indexes.user_spend import build_user_spend_index
from spark_apps.jobs.aggregate_index import parse_conf
from spark_apps.schemas import AGGREGATE_INDEX_SCHEMA, MERCHANT_SCHEMA, SETTLEMENT_LINE_SCHEMA, TABLE_SCHEMAS, USER_SCHEMA

# Tables whose run manifests feed the ops index (besides the streaming metrics).
# (The ops index's own earlier versions are not among them.)
OPS_MANIFEST_TABLES = [BATCH_INDEX, AGGREGATE_INDEX, *(index for index in BUSINESS_INDEXES if index != "ops_index")]


@dataclass
class IndexRun:
    """Everything one invocation knows; inputs are read lazily, once, by the indexes that need them."""

    spark: SparkSession
    date: str
    version: str
    index_uri: str
    raw_uri: str
    metrics_uri: str
    aggregate_location: str | None
    fraud_labels_location: str | None
    config: IndexConfig
    started_at: dt.datetime
    rejected: dict[str, int] = field(default_factory=dict)  # side-source rows the reader rejected, per source

    @property
    def run_date(self) -> dt.date:
        return dt.date.fromisoformat(self.date)

    @cached_property
    def aggregate_df(self) -> DataFrame:
        df = read_table(self.spark, self.aggregate_location, AGGREGATE_INDEX_SCHEMA, "aggregate index", required=True)
        return df.persist(StorageLevel.MEMORY_AND_DISK)

    def _side(self, source: str, schema) -> DataFrame:
        good_df, rejected_df = read_raw_side(self.spark, self.raw_uri, source, self.date, schema, self.version, self.started_at)
        self.rejected[source] = rejected_df.count()
        return good_df

    @cached_property
    def merchants_df(self) -> DataFrame:
        return self._side("merchants", MERCHANT_SCHEMA).dropDuplicates(["merchant_id"])

    @cached_property
    def users_df(self) -> DataFrame:
        return self._side("users", USER_SCHEMA).dropDuplicates(["user_id"])

    @cached_property
    def statements_df(self) -> DataFrame:
        return self._side("settlements", SETTLEMENT_LINE_SCHEMA).persist(StorageLevel.MEMORY_AND_DISK)

    def confirmed_fraud_df(self) -> DataFrame:
        location = self.fraud_labels_location or f"{self.raw_uri.rstrip('/')}/fraud_labels"
        if not exists(location):
            return self.spark.createDataFrame([], "transaction_id string")
        from spark_apps.readers import read_text_table

        labels = read_text_table(self.spark, location, ("transaction_id",))
        return (
            labels.where(F.col("transaction_id").isNotNull()).select("transaction_id")
            if labels is not None
            else self.spark.createDataFrame([], "transaction_id string")
        )

    def stage_runs(self) -> tuple[DataFrame, dict[str, int]]:
        metrics, bad_lines = stream_metric_records(self.metrics_uri, self.date)
        manifests = list_manifests(self.index_uri, OPS_MANIFEST_TABLES, self.date)
        runs = [stage_run_from_stream_metric(m) for m in metrics] + [stage_run_from_manifest(m) for m in manifests]
        info = {"stream_metric_lines": len(metrics), "stream_metric_lines_unreadable": bad_lines, "run_manifests": len(manifests)}
        return stage_runs_df(self.spark, runs), info


def _counts_by(df: DataFrame, column: str) -> dict[str, int]:
    return {str(row[column]): row["count"] for row in df.groupBy(column).count().collect()}


def _fraud(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_fraud_index(run.aggregate_df, run.run_date, run.config.fraud, run.version, run.started_at)
    return df, lambda written: {"by_recommended_action": _counts_by(written, "recommended_action")}


def _reconciliation(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_reconciliation_index(
        run.aggregate_df, run.statements_df, run.run_date, run.config.reconciliation, run.version, run.started_at
    )

    def counts(written: DataFrame) -> dict:
        lines = run.statements_df.count()
        lines_indexed = written.where(F.col("line_id").isNotNull()).count()
        if lines != lines_indexed:
            raise RuntimeError(f"reconciliation: {lines} statement lines read, {lines_indexed} indexed")
        return {
            "by_match_status": _counts_by(written, "match_status"),
            "statement_lines": lines,
            "statement_lines_rejected": run.rejected.get("settlements", 0),
            "transactions": written.where(F.col("reconciliation_key").startswith("txn:")).count(),
        }

    return df, counts


def _merchant_performance(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_merchant_performance_index(
        run.aggregate_df, run.merchants_df, run.run_date, run.config.merchant_performance, run.version, run.started_at
    )
    return df, lambda written: {
        "anomalies": written.where("is_anomaly").count(),
        "first_days": written.where("baseline_days = 0").count(),
    }


def _user_spend(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_user_spend_index(run.aggregate_df, run.users_df, run.run_date, run.config.user_spend, run.version, run.started_at)
    return df, lambda written: {"repeated_declines": written.where("has_repeated_declines").count()}


def _compliance(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_compliance_index(run.aggregate_df, run.users_df, run.run_date, run.config.compliance, run.version, run.started_at)
    flags = F.explode("aml_flags").alias("flag")
    return df, lambda written: {
        "requires_review": written.where("requires_review").count(),
        "by_aml_flag": _counts_by(written.select(flags), "flag"),
    }


def _settlement_schedule(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_settlement_schedule_index(
        run.statements_df,
        run.aggregate_df,
        run.merchants_df,
        run.run_date,
        run.config.settlement_schedule,
        run.version,
        run.started_at,
    )

    def counts(written: DataFrame) -> dict:
        lines = run.statements_df.count()
        scheduled = written.agg(F.sum("line_count")).first()[0] or 0
        if lines != scheduled:
            raise RuntimeError(f"settlement schedule: {lines} statement lines read, {scheduled} scheduled")
        return {"statement_lines": lines, "by_payout_status": _counts_by(written, "payout_status")}

    return df, counts


def _ops(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    runs_df, info = run.stage_runs()
    return build_ops_index(runs_df, run.run_date, run.version, run.started_at), lambda written: info


def _ml_feedback(run: IndexRun) -> tuple[DataFrame, Callable[[DataFrame], dict]]:
    df = build_ml_feedback(
        run.aggregate_df, run.confirmed_fraud_df(), run.run_date, run.config.ml_feedback, run.version, run.started_at
    )
    return df, lambda written: {"by_label_source": _counts_by(written, "label_source")}


BUILDERS: dict[str, Callable[[IndexRun], tuple[DataFrame, Callable[[DataFrame], dict]]]] = {
    "fraud_index": _fraud,
    "reconciliation_index": _reconciliation,
    "merchant_performance_index": _merchant_performance,
    "user_spend_index": _user_spend,
    "compliance_index": _compliance,
    "settlement_schedule_index": _settlement_schedule,
    "ops_index": _ops,
    "ml_feedback": _ml_feedback,
}


def run_business_index(run: IndexRun, index: str) -> dict:
    """Build, write and count one business index; return its manifest."""
    clock = time.monotonic()
    df, count = BUILDERS[index](run)
    location = lake.write_versioned(df, run.index_uri, index, run.date, run.version, TABLE_SCHEMAS[index])
    written = run.spark.read.parquet(location)
    manifest = {
        "table": index,
        "date": run.date,
        "version": run.version,
        "started_at": run.started_at.isoformat(),
        "rows": written.count(),
        "counts": count(written),
        "aggregate_location": run.aggregate_location,
        # {table: location} of the versions read (the quality gate resolves contract references from it)
        "inputs": {"aggregate_index": run.aggregate_location} if run.aggregate_location else {},
        "location": location,
        "raw_uri": run.raw_uri,
        "rejected_side_rows": dict(run.rejected),
    }
    manifest["finished_at"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    manifest["seconds"] = round(time.monotonic() - clock, 1)
    lake.write_manifest(location, manifest)
    return manifest


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="business_indexes", description="Build one business index (or all) for one date.")
    parser.add_argument("--index", required=True, choices=[*BUILDERS, "all"], help="the business index to build, or all")
    parser.add_argument("--date", required=True, help="partition date YYYY-MM-DD")
    parser.add_argument("--version", required=True, help="version id of this run: [A-Za-z0-9_.-], <= 128 chars")
    parser.add_argument("--index-uri", required=True, help="root of the indexes (lake.index_uri)")
    parser.add_argument("--raw-uri", required=True, help="root of the raw drops (merchants, users, settlements)")
    parser.add_argument(
        "--metrics-uri", required=True, help="root of the metrics (streaming metrics under <metrics-uri>/stream/)"
    )
    parser.add_argument(
        "--aggregate-location", default="", help="the aggregate_index version to derive from (required except for ops_index)"
    )
    parser.add_argument(
        "--fraud-labels-location",
        help="confirmed fraud cases (files with a transaction_id column); default <raw-uri>/fraud_labels",
    )
    parser.add_argument("--config", help="index configuration YAML (default include/config/indexes.yaml)")
    parser.add_argument("--master", help="Spark master, e.g. local[2] (omit under spark-submit)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark configuration")
    args = parser.parse_args(argv)
    if not args.aggregate_location and args.index != "ops_index":
        parser.error(f"--aggregate-location is required for {args.index}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from spark_apps.session import build_session

    date, version = lake.check_date(args.date), lake.check_version(args.version)
    spark = build_session(f"business-index-{args.index}-{date}", args.master, parse_conf(args.conf))
    run = IndexRun(
        spark, date, version, args.index_uri, args.raw_uri, args.metrics_uri, args.aggregate_location or None,
        args.fraud_labels_location, load_index_config(args.config), dt.datetime.now(dt.UTC).replace(microsecond=0),
    )  # fmt: skip
    try:
        for index in BUILDERS if args.index == "all" else [args.index]:
            print(json.dumps(run_business_index(run, index), sort_keys=True, default=str))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
