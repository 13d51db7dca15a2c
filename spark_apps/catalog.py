"""Catalog artefacts derived from ``spark_apps.schemas``: Athena DDL and the Glue table JSON.

``TABLE_SCHEMAS`` + ``TABLE_PARTITION_KEYS`` are the only source; this module turns
them into

* ``include/sql/ddl/<table>.sql``: one Athena ``CREATE EXTERNAL TABLE`` per table
  (Parquet, partitioned by ``dt`` [+ ``hour``]); the ``LOCATION`` holds the
  placeholder ``${INDEX_URI}`` that :func:`render_ddl` replaces with the lake's
  index root;
* ``include/sql/tables.json``: the same tables for Terraform's Glue resources.

Regenerate both after a schema change with ``python -m spark_apps.catalog write``;
``python -m spark_apps.catalog check`` (and the test suite) fails when they are stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampType,
)

from spark_apps.schemas import TABLE_PARTITION_KEYS, TABLE_SCHEMAS

DATABASE = "payments"
INDEX_URI_PLACEHOLDER = "${INDEX_URI}"
SQL_DIR = Path(__file__).resolve().parents[1] / "include" / "sql"
DDL_DIR = SQL_DIR / "ddl"
TABLES_JSON = SQL_DIR / "tables.json"

# Catalog types of the partition keys (they are folder names, not columns in the files).
PARTITION_KEY_TYPES: dict[str, str] = {"dt": "string", "hour": "int"}

TABLE_DESCRIPTIONS: dict[str, str] = {
    "batch_index": "One validated, masked, deduplicated and enriched row per transaction per day (batch).",
    "stream_index": "One row per transaction event from the streaming app, minutes fresh.",
    "quarantine": "Rejected batch records with a reason code; the stream's dead letters carry the same fields.",
    "aggregate_index": "Latest state per transaction: stream and batch merged, settlement from statements final.",
    "audit_trail": "Every change of fraud score or status between two aggregate index versions.",
    "fraud_index": "Suspicious or high-risk transactions with scores, reasons, rule flags and recommended action.",
    "reconciliation_index": "Each internal transaction and each statement line once, with a match status and difference.",
    "merchant_performance_index": "Per merchant per day: volume, approvals, refunds, chargebacks and an anomaly flag.",
    "user_spend_index": "Per user: 1/7/30-day spend and counts, average ticket, repeated declines, velocity.",
    "compliance_index": "KYC/AML and policy flags per transaction, masked PII only, with lineage columns.",
    "settlement_schedule_index": "Per merchant and expected payout date: gross, refunds, chargebacks, fees, net, status.",
    "ops_index": "Per pipeline stage per hour: throughput, latency percentiles, error and quarantine rates.",
    "ml_feedback": "Labeled training set (features + label from chargebacks and confirmed fraud) for the fraud model.",
}


# Spark types whose catalog type has no parameters.
_SIMPLE_HIVE_TYPES: dict[type, str] = {
    StringType: "string",
    IntegerType: "int",
    LongType: "bigint",
    BooleanType: "boolean",
    DoubleType: "double",
    DateType: "date",
    TimestampType: "timestamp",
}


def hive_type(dtype: DataType) -> str:
    """The Hive/Glue/Athena type string of a Spark type; unknown types are an error, not a guess."""
    simple = next((name for spark_type, name in _SIMPLE_HIVE_TYPES.items() if isinstance(dtype, spark_type)), None)
    if simple is not None:
        return simple
    if isinstance(dtype, DecimalType):
        return f"decimal({dtype.precision},{dtype.scale})"
    if isinstance(dtype, ArrayType):
        return f"array<{hive_type(dtype.elementType)}>"
    if isinstance(dtype, MapType):
        return f"map<{hive_type(dtype.keyType)},{hive_type(dtype.valueType)}>"
    if isinstance(dtype, StructType):
        return "struct<" + ",".join(f"{field.name}:{hive_type(field.dataType)}" for field in dtype.fields) + ">"
    raise TypeError(f"no catalog type for Spark type {dtype.simpleString()}")


def table_description(table: str) -> str:
    return TABLE_DESCRIPTIONS.get(table, f"The {table} table.")


def table_columns(table: str) -> list[dict[str, str]]:
    return [{"name": field.name, "type": hive_type(field.dataType)} for field in TABLE_SCHEMAS[table].fields]


def partition_columns(table: str) -> list[dict[str, str]]:
    return [{"name": key, "type": PARTITION_KEY_TYPES[key]} for key in TABLE_PARTITION_KEYS[table]]


def tables_document() -> dict:
    """The ``tables.json`` content Terraform builds the Glue tables from."""
    return {
        "database": DATABASE,
        "tables": {
            table: {
                "description": table_description(table),
                "columns": table_columns(table),
                "partition_keys": partition_columns(table),
            }
            for table in TABLE_SCHEMAS
        },
    }


def ddl(table: str) -> str:
    """Athena ``CREATE EXTERNAL TABLE`` text with the ``${INDEX_URI}`` location placeholder."""
    columns = ",\n".join(f"  `{c['name']}` {c['type']}" for c in table_columns(table))
    partitions = ", ".join(f"`{c['name']}` {c['type']}" for c in partition_columns(table))
    description = table_description(table).replace("'", "''")
    return (
        f"-- Generated by `python -m spark_apps.catalog write` from spark_apps/schemas.py; do not edit.\n"
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {DATABASE}.{table} (\n"
        f"{columns}\n"
        f")\n"
        f"COMMENT '{description}'\n"
        f"PARTITIONED BY ({partitions})\n"
        f"STORED AS PARQUET\n"
        f"LOCATION '{INDEX_URI_PLACEHOLDER}/{table}/'\n"
        f"TBLPROPERTIES ('parquet.compression'='SNAPPY')\n"
    )


def render_ddl(table: str, index_uri: str) -> str:
    """The DDL of ``table`` with its LOCATION under ``index_uri`` (for example ``s3://lake/indexes``)."""
    return ddl(table).replace(INDEX_URI_PLACEHOLDER, index_uri.rstrip("/"))


def partition_sql(table: str, values: dict[str, str | int], location: str) -> list[str]:
    """Athena statements that point partition ``values`` of ``table`` at a versioned ``location``:
    create it if missing, then repoint it (both idempotent)."""
    keys = TABLE_PARTITION_KEYS[table]
    if set(values) != set(keys):
        raise ValueError(f"{table}: partition keys are {list(keys)}, got {sorted(values)}")

    def literal(key: str) -> str:
        value = values[key]
        if PARTITION_KEY_TYPES[key] == "int":
            return str(int(value))
        return "'" + str(value).replace("'", "''") + "'"

    spec = ", ".join(f"{key} = {literal(key)}" for key in keys)
    quoted = location.rstrip("/").replace("'", "''") + "/"
    return [
        f"ALTER TABLE {DATABASE}.{table} ADD IF NOT EXISTS PARTITION ({spec}) LOCATION '{quoted}'",
        f"ALTER TABLE {DATABASE}.{table} PARTITION ({spec}) SET LOCATION '{quoted}'",
    ]


def expected_files() -> dict[Path, str]:
    files = {DDL_DIR / f"{table}.sql": ddl(table) for table in TABLE_SCHEMAS}
    files[TABLES_JSON] = json.dumps(tables_document(), indent=2) + "\n"
    return files


def stale_files() -> list[Path]:
    """Generated files that are missing or differ from what the schemas produce now."""
    stale = [path for path, text in expected_files().items() if not path.exists() or path.read_text() != text]
    generated = {path.name for path in expected_files() if path.parent == DDL_DIR}
    if DDL_DIR.exists():
        stale += [path for path in sorted(DDL_DIR.glob("*.sql")) if path.name not in generated]
    return stale


def write_files() -> list[Path]:
    DDL_DIR.mkdir(parents=True, exist_ok=True)
    generated = expected_files()
    for path in DDL_DIR.glob("*.sql"):
        if path not in generated:
            path.unlink()  # a table removed from the registry
    for path, text in generated.items():
        path.write_text(text)
    return sorted(generated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("write", "check"))
    args = parser.parse_args(argv)
    if args.command == "write":
        for path in write_files():
            print(f"wrote {path.relative_to(SQL_DIR.parents[1])}")
        return 0
    stale = stale_files()
    for path in stale:
        print(f"stale: {path} (run `python -m spark_apps.catalog write`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
