"""The stream index commit: a replayed micro-batch replaces its own files, never duplicates rows."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from spark_apps.streaming.writer import commit_index_batch

pytestmark = [pytest.mark.spark]


def test_replayed_batch_replaces_its_files(spark, tmp_path):
    index_uri = str(tmp_path / "indexes")
    rows = [
        Row(
            transaction_id=f"t{i}", event_time=dt.datetime(2026, 11, 21, 10 + i % 2, 0), dt="2026-11-21", hour=f"{10 + i % 2:02d}"
        )
        for i in range(6)
    ]
    df = spark.createDataFrame(rows)
    assert commit_index_batch(df.repartition(3), index_uri, 5) >= 2
    # The replay after a crash writes the same rows with another file split.
    commit_index_batch(df.coalesce(1), index_uri, 5)
    commit_index_batch(
        spark.createDataFrame([Row(transaction_id="t9", event_time=dt.datetime(2026, 11, 21, 10), dt="2026-11-21", hour="10")]),
        index_uri,
        6,
    )
    written = spark.read.parquet(f"{index_uri}/stream_index")
    assertDataFrameEqual(written.select("transaction_id"), [Row(transaction_id=f"t{i}") for i in (*range(6), 9)])
    files = sorted(p.name for p in (tmp_path / "indexes" / "stream_index" / "dt=2026-11-21" / "hour=10").glob("*.parquet"))
    assert files == ["part-b000000000005-00000.parquet", "part-b000000000006-00000.parquet"]
    assert not list((tmp_path / "indexes" / "stream_index" / "_staging").glob("*"))
