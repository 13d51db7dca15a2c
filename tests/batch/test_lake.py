"""Spark-side lake access: manifests, version listings and schema-exact writes (the layout rules are
tested with the shared contract, tests/unit/test_contract.py)."""

from __future__ import annotations

import pytest
from pyspark.sql.types import DecimalType, StringType, StructField, StructType
from pyspark.testing import assertDataFrameEqual

from spark_apps import lake

SCHEMA = StructType([StructField("id", StringType(), False), StructField("amount", DecimalType(18, 2), True)])


def test_manifest_round_trip_and_version_listing(tmp_path):
    base = str(tmp_path)
    assert lake.list_versions(base, "t", "2026-11-21") == []
    for version in ("r2", "r1"):
        lake.write_manifest(lake.version_location(base, "t", "2026-11-21", version), {"version": version, "counts": {"read": 3}})
    # A version folder without a manifest is an unfinished run and is not listed.
    (tmp_path / "t" / "dt=2026-11-21" / "version=r3").mkdir()
    assert lake.list_versions(base, "t", "2026-11-21") == ["r1", "r2"]
    assert lake.read_manifest(lake.version_location(base, "t", "2026-11-21", "r1")) == {"version": "r1", "counts": {"read": 3}}
    with pytest.raises(FileNotFoundError):
        lake.read_manifest(lake.version_location(base, "t", "2026-11-21", "r3"))


def test_write_versioned_writes_exact_schema_and_replaces_same_run(spark, tmp_path):
    from decimal import Decimal

    df = spark.createDataFrame(
        [("b", Decimal("2.50"), "extra"), ("a", None, "x")], "amount_ignored string, amount decimal(18,2), extra string"
    )
    df = df.withColumnRenamed("amount_ignored", "id").drop("extra")
    location = lake.write_versioned(
        df.select("amount", "id"), str(tmp_path), "t", "2026-11-21", "r1", SCHEMA, manifest={"rows": 2}
    )
    assert location.endswith("/t/dt=2026-11-21/version=r1")
    written_df = spark.read.parquet(location)
    assert written_df.columns == ["id", "amount"]
    assertDataFrameEqual(written_df, [("a", None), ("b", Decimal("2.50"))], checkRowOrder=False)
    assert lake.read_manifest(location) == {"rows": 2}
    # Same run id again: replaced, not appended.
    lake.write_versioned(df.filter("id = 'a'"), str(tmp_path), "t", "2026-11-21", "r1", SCHEMA)
    assert spark.read.parquet(location).count() == 1


def test_conform_rejects_missing_extra_and_wrong_types(spark):
    df = spark.createDataFrame([("a", 1.5, "x")], "id string, amount double, extra string")
    with pytest.raises(lake.LakeError, match=r"extra=\['extra'\].*wrong_type=\['amount: double"):
        lake.conform_to_schema(df, SCHEMA)
    with pytest.raises(lake.LakeError, match=r"missing=\['amount'\]"):
        lake.conform_to_schema(df.select("id"), SCHEMA)


def test_null_in_required_column_fails_the_write(spark, tmp_path):
    df = spark.createDataFrame([(None, None)], "id string, amount decimal(18,2)")
    with pytest.raises(Exception, match="null in required column id"):
        lake.write_versioned(df, str(tmp_path), "t", "2026-11-21", "r1", SCHEMA)


def test_conformed_columns_are_built_once_and_stay_correct_in_every_plan(spark, monkeypatch):
    """The stream conforms every micro-batch: the columns are built once per schema and reused,
    and a reused column still fails a null in a required column and still keeps the rows."""
    from decimal import Decimal

    built = []
    original_required = lake._required
    monkeypatch.setattr(lake, "_required", lambda field: built.append(field.name) or original_required(field))
    lake._conformed_columns.cache_clear()
    good_df = spark.createDataFrame([("a", Decimal("1.00"))], "id string, amount decimal(18,2)")
    assertDataFrameEqual(lake.conform_to_schema(good_df, SCHEMA), [("a", Decimal("1.00"))])
    assertDataFrameEqual(lake.conform_to_schema(good_df.filter("id = 'b'"), SCHEMA), [])
    assert built == ["id", "amount"]  # once, not per call
    null_df = spark.createDataFrame([(None, Decimal("2.00"))], "id string, amount decimal(18,2)")
    with pytest.raises(Exception, match="null in required column id"):
        lake.conform_to_schema(null_df, SCHEMA).collect()
