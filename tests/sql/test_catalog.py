"""The checked-in DDL and tables.json are generated from the schemas and parse as Athena SQL."""

from __future__ import annotations

import json

import pytest
import sqlglot
from pyspark.sql.types import ArrayType, DecimalType, IntegerType, LongType, StringType, StructField, StructType, TimestampType
from sqlglot import exp

from spark_apps import catalog
from spark_apps.schemas import TABLE_PARTITION_KEYS, TABLE_SCHEMAS


def test_checked_in_catalog_files_are_fresh():
    assert catalog.stale_files() == [], "run `python -m spark_apps.catalog write`"


def test_check_command_fails_on_a_stale_file(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "DDL_DIR", tmp_path / "ddl")
    monkeypatch.setattr(catalog, "TABLES_JSON", tmp_path / "tables.json")
    assert catalog.main(["check"]) == 1
    catalog.write_files()
    assert catalog.main(["check"]) == 0
    (tmp_path / "ddl" / "batch_index.sql").write_text("-- edited by hand\n")
    assert catalog.stale_files() == [tmp_path / "ddl" / "batch_index.sql"]
    (tmp_path / "ddl" / "dropped_table.sql").write_text("")
    assert tmp_path / "ddl" / "dropped_table.sql" in catalog.stale_files()


def test_hive_types_of_spark_types():
    assert catalog.hive_type(StringType()) == "string"
    assert catalog.hive_type(IntegerType()) == "int"
    assert catalog.hive_type(LongType()) == "bigint"
    assert catalog.hive_type(TimestampType()) == "timestamp"
    assert catalog.hive_type(DecimalType(18, 2)) == "decimal(18,2)"
    assert catalog.hive_type(ArrayType(StringType(), False)) == "array<string>"
    nested = StructType([StructField("a", IntegerType()), StructField("b", ArrayType(DecimalType(5, 4)))])
    assert catalog.hive_type(nested) == "struct<a:int,b:array<decimal(5,4)>>"


def test_unknown_spark_type_is_an_error():
    from pyspark.sql.types import TimestampNTZType

    with pytest.raises(TypeError, match="timestamp_ntz"):
        catalog.hive_type(TimestampNTZType())


def test_tables_json_shape_and_partition_keys():
    document = json.loads(catalog.TABLES_JSON.read_text())
    assert document["database"] == "payments"
    assert set(document["tables"]) == set(TABLE_SCHEMAS)
    batch = document["tables"]["batch_index"]
    assert set(batch) == {"description", "columns", "partition_keys"}
    assert batch["columns"][0] == {"name": "transaction_id", "type": "string"}
    assert {"name": "amount", "type": "decimal(18,2)"} in batch["columns"]
    assert {"name": "policy_flags", "type": "array<string>"} in batch["columns"]
    assert batch["partition_keys"] == [{"name": "dt", "type": "string"}]
    assert document["tables"]["stream_index"]["partition_keys"] == [
        {"name": "dt", "type": "string"},
        {"name": "hour", "type": "int"},
    ]
    for table, spec in document["tables"].items():
        assert [c["name"] for c in spec["columns"]] == TABLE_SCHEMAS[table].fieldNames()
        assert [p["name"] for p in spec["partition_keys"]] == list(TABLE_PARTITION_KEYS[table])
        assert not {c["name"] for c in spec["columns"]} & {p["name"] for p in spec["partition_keys"]}


@pytest.mark.parametrize("table", sorted(TABLE_SCHEMAS))
def test_ddl_parses_as_athena_and_matches_the_schema(table):
    text = (catalog.DDL_DIR / f"{table}.sql").read_text()
    statement = sqlglot.parse_one(text, read="athena")
    assert isinstance(statement, exp.Create) and statement.kind == "TABLE"
    assert statement.this.this.name == table and statement.this.this.db == "payments"
    columns = [(c.name, c.args["kind"].sql("hive").lower().replace(" ", "")) for c in statement.this.expressions]
    assert columns == [(c["name"], c["type"]) for c in catalog.table_columns(table)]
    partitioned = statement.find(exp.PartitionedByProperty)
    assert [c.name for c in partitioned.this.expressions] == list(TABLE_PARTITION_KEYS[table])
    assert statement.find(exp.FileFormatProperty).name.upper() == "PARQUET"
    assert statement.find(exp.LocationProperty).this.name == f"${{INDEX_URI}}/{table}/"


def test_render_ddl_fills_the_location():
    text = catalog.render_ddl("quarantine", "s3://lake/indexes/")
    assert "LOCATION 's3://lake/indexes/quarantine/'" in text
    assert "${INDEX_URI}" not in text


def test_partition_sql_parses_as_athena_and_points_at_the_version():
    statements = catalog.partition_sql(
        "stream_index", {"dt": "2026-11-20", "hour": 7}, "s3://lake/indexes/stream_index/dt=2026-11-20/hour=7"
    )
    assert statements == [
        "ALTER TABLE payments.stream_index ADD IF NOT EXISTS PARTITION (dt = '2026-11-20', hour = 7) LOCATION 's3://lake/indexes/stream_index/dt=2026-11-20/hour=7/'",
        "ALTER TABLE payments.stream_index PARTITION (dt = '2026-11-20', hour = 7) SET LOCATION 's3://lake/indexes/stream_index/dt=2026-11-20/hour=7/'",
    ]
    for statement in statements:
        assert isinstance(sqlglot.parse_one(statement, read="athena"), exp.Alter)
    with pytest.raises(ValueError, match=r"partition keys are \['dt'\]"):
        catalog.partition_sql("fraud_index", {"dt": "2026-11-20", "hour": 1}, "s3://x")
