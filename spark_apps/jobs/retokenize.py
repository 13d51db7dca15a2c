"""Re-tokenization after a PAN token key rotation (docs/security.md, "Rotating the token key").

Two steps, run by hand (or a one-off DAG run) during the dual-key period, when the keyring behind
``secrets.pan_token_key`` holds the new key as ``current`` and the old one beside it::

    # 1. where raw drops may be read (the ingest role): old -> new token pairs of every card
    #    present in the retained raw drops of each date
    python -m spark_apps.jobs.retokenize map --raw-uri <lake.raw_uri> --map-uri <lake.index_uri> \
        --date 2026-11-20 --date 2026-11-21 [--token-key-ref REF] [--region R] [--master local[2]]

    # 2. anywhere (no key, no raw data: the map holds tokens only): a table version rewritten
    #    with the new tokens, as a NEW run of that table and date (then gate and publish it)
    python -m spark_apps.jobs.retokenize apply --base-uri <lake.index_uri> --table aggregate_index \
        --date 2026-11-21 --from-version <published version> --version <new version> --map-uri <lake.index_uri> \
        --to-key-version v2 [--column card_token] [--master local[2]]

``map`` writes ``<map-uri>/token_map/from=<old>/to=<new>/dt=<date>/`` (Parquet: old_token,
new_token, old_version, new_version; a rerun of a date replaces it). ``apply`` reads every date of
``token_map/*/to=<current>`` and prints a JSON summary whose ``unmapped_by_version`` counts the
rows that still carry an older version: cards absent from every retained raw drop. HMAC tokens
cannot be reversed, so those rows cannot be re-tokenized; they keep their old token and version.
"""

from __future__ import annotations

import argparse
import json
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_apps import lake
from spark_apps.masking import retokenized, token_map, token_version_col
from spark_apps.secrets import DEFAULT_PAN_TOKEN_KEY_REF, PanTokenKeyring, pan_token_keyring

MAP_TABLE = "token_map"


def map_location(map_uri: str, old_version: str, new_version: str, date: str) -> str:
    return f"{lake.table_location(map_uri, MAP_TABLE)}/from={old_version}/to={new_version}/dt={lake.check_date(date)}"


def build_token_map(spark: SparkSession, raw_uri: str, date: str, keyring: PanTokenKeyring) -> DataFrame:
    """The date's old -> new token pairs, from every transaction source's raw drop."""
    from spark_apps.jobs.batch_index import read_transactions

    return token_map(read_transactions(spark, raw_uri, lake.check_date(date)), keyring)


def run_map(spark: SparkSession, raw_uri: str, map_uri: str, dates: list[str], keyring: PanTokenKeyring) -> dict:
    written = {}
    for date in dates:
        pairs_df = build_token_map(spark, raw_uri, date, keyring).persist()
        try:
            for old_version in keyring.previous:
                location = map_location(map_uri, old_version, keyring.current, date)
                version_df = pairs_df.filter(F.col("old_version") == old_version)
                version_df.write.mode("overwrite").parquet(location)
                written[location] = spark.read.parquet(location).count()
        finally:
            pairs_df.unpersist()
    return {"mode": "map", "current": keyring.current, "pairs": written}


def read_token_map(spark: SparkSession, map_uri: str, new_version: str) -> DataFrame:
    """Every written pair that maps to ``new_version`` (all old versions, all dates)."""
    return spark.read.option("basePath", lake.table_location(map_uri, MAP_TABLE)).parquet(
        f"{lake.table_location(map_uri, MAP_TABLE)}/from=*/to={new_version}/dt=*"
    )


def run_apply(
    spark: SparkSession,
    base_uri: str,
    table: str,
    date: str,
    from_version: str,
    version: str,
    map_uri: str,
    new_version: str,
    columns: tuple[str, ...] = ("card_token",),
) -> dict:
    source = lake.version_location(base_uri, table, date, lake.check_version(from_version))
    source_df = spark.read.parquet(source)
    rewritten_df = retokenized(source_df, read_token_map(spark, map_uri, new_version), columns)
    location = lake.write_versioned(rewritten_df, base_uri, table, date, lake.check_version(version), source_df.schema)
    written_df = spark.read.parquet(location)
    rows = written_df.count()
    versions = {}
    for name in columns:
        for row in written_df.groupBy(token_version_col(F.col(name)).alias("version")).count().collect():
            versions.setdefault(name, {})[row.version or "none"] = row["count"]
    unmapped = {name: {v: n for v, n in counts.items() if v not in (new_version, "none")} for name, counts in versions.items()}
    try:
        manifest = lake.read_manifest(source)
    except (OSError, ValueError):  # a table version without a manifest still gets one
        manifest = {}
    summary = {
        "mode": "apply",
        "source_location": source,
        "location": location,
        "rows": rows,
        "token_versions": versions,
        "unmapped_by_version": unmapped,
    }
    lake.write_manifest(location, {**manifest, "version": version, "rows": rows, "retokenized": summary})
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retokenize", description="Re-tokenize after a key rotation (module docstring).")
    modes = parser.add_subparsers(dest="mode", required=True)
    map_args = modes.add_parser("map", help="old -> new token pairs from retained raw drops")
    map_args.add_argument("--raw-uri", required=True)
    map_args.add_argument("--map-uri", required=True, help="root under which token_map/ is written")
    map_args.add_argument("--date", action="append", required=True, dest="dates", help="YYYY-MM-DD (repeatable)")
    map_args.add_argument("--token-key-ref", default=DEFAULT_PAN_TOKEN_KEY_REF, help="secret reference of the keyring")
    map_args.add_argument("--region", help="AWS region for secretsmanager: references")
    apply_args = modes.add_parser("apply", help="rewrite one table version's tokens as a new run")
    apply_args.add_argument("--base-uri", required=True, help="lake.index_uri (or the root holding the table)")
    apply_args.add_argument("--table", required=True)
    apply_args.add_argument("--date", required=True)
    apply_args.add_argument("--from-version", required=True, help="the version to rewrite")
    apply_args.add_argument("--version", required=True, help="the new version id")
    apply_args.add_argument("--map-uri", required=True)
    apply_args.add_argument("--to-key-version", required=True, help="the current key version, e.g. v2")
    apply_args.add_argument("--column", action="append", dest="columns", help="token column(s) (default card_token)")
    for mode_args in (map_args, apply_args):
        mode_args.add_argument("--master", help="Spark master, e.g. local[2] (omit under spark-submit)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from spark_apps.session import build_session

    keyring = pan_token_keyring(args.token_key_ref, args.region) if args.mode == "map" else None
    if keyring is not None and not keyring.previous:
        raise SystemExit(f"the keyring holds only {keyring.current}: nothing to map (add the old key beside the new one)")
    spark = build_session(f"retokenize-{args.mode}", args.master, {})
    try:
        if args.mode == "map":
            summary = run_map(spark, args.raw_uri, args.map_uri, args.dates, keyring)
        else:
            summary = run_apply(
                spark,
                args.base_uri,
                args.table,
                args.date,
                args.from_version,
                args.version,
                args.map_uri,
                args.to_key_version,
                tuple(args.columns or ("card_token",)),
            )
    finally:
        spark.stop()
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
