"""Stream-index compaction: one file per hour, same rows, idempotent."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from spark_apps.jobs.compact_stream_index import compact_day


def test_compacts_each_hour_and_keeps_every_row(tmp_path):
    day = tmp_path / "stream_index" / "dt=2026-11-21"
    for hour, batches in (("hour=00", 3), ("hour=01", 1)):
        (day / hour).mkdir(parents=True)
        for batch in range(batches):
            pq.write_table(
                pa.table({"transaction_id": [f"{hour}-{batch}-a", f"{hour}-{batch}-b"]}), day / hour / f"part-b{batch}-0.parquet"
            )

    result = compact_day(str(tmp_path), "2026-11-21")

    assert result["files_removed"] == 2
    assert [p.name for p in sorted((day / "hour=00").iterdir())] == ["part-compacted-part-b0-0-to-part-b2-0.parquet"]
    rows = sorted(pq.read_table(day / "hour=00").column("transaction_id").to_pylist())
    assert rows == sorted(f"hour=00-{b}-{s}" for b in range(3) for s in "ab")
    assert [p.name for p in (day / "hour=01").iterdir()] == ["part-b0-0.parquet"], "a single file is left alone"
    assert compact_day(str(tmp_path), "2026-11-21")["files_removed"] == 0, "rerun is a no-op"


def test_missing_day_is_a_no_op(tmp_path):
    assert compact_day(str(tmp_path), "2026-11-21") == {
        "table": "stream_index",
        "dt": "2026-11-21",
        "hours": {},
        "files_removed": 0,
    }
