"""How long the quality gate takes on a staged batch index version, per engine and size.

    python bench/quality_gate.py [--rows 100000 1000000] [--spark]

Stages a clean batch_index version of each size (distinct transaction ids, one Parquet
file per 250k rows) in a temp folder, runs the gate (34 checks) and prints wall seconds
per engine. DuckDB always; Spark (local[2], Soda's Spark DataFrame source) with --spark.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spark_apps.lake import version_location, write_manifest
from spark_apps.quality import verify_staged_version
from tests.quality.conftest import NOW, VERSION, arrow_schema, clean_row

FILE_ROWS = 250_000


def stage_batch_index(base: Path, rows: int) -> str:
    location = version_location(str(base), "batch_index", "2026-11-22", VERSION)
    Path(location).mkdir(parents=True)
    one = pa.Table.from_pylist([clean_row("batch_index")], schema=arrow_schema("batch_index"))
    for part, start in enumerate(range(0, rows, FILE_ROWS)):
        count = min(FILE_ROWS, rows - start)
        table = one.take(pa.array([0] * count))
        ids = pc.binary_join_element_wise("t-", pc.cast(pa.array(range(start, start + count)), pa.string()), "")
        table = table.set_column(table.schema.get_field_index("transaction_id"), "transaction_id", ids)
        pq.write_table(table, f"{location}/part-{part:05d}.snappy.parquet")
    write_manifest(location, {"rows": rows})
    return location


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--spark", action="store_true")
    args = parser.parse_args()
    spark = None
    if args.spark:
        from spark_apps.session import build_session

        spark = build_session(
            "bench-quality-gate", "local[2]", {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4"}
        )
    print(f"{'rows':>10} {'engine':>7} {'checks':>6} {'seconds':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            location = stage_batch_index(Path(tmp) / str(rows), rows)
            for engine in ("duckdb", "spark") if spark else ("duckdb",):
                started = time.perf_counter()
                result = verify_staged_version("batch_index", location, engine=engine, spark=spark, now=NOW)
                seconds = time.perf_counter() - started
                assert result.passed, result.log
                print(f"{rows:>10} {engine:>7} {result.checks_total:>6} {seconds:>8.2f}")
    if spark:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
