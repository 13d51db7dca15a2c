"""Compact one day's stream-index files: one Parquet file per hour folder.

    spark-submit spark_apps/jobs/compact_stream_index.py --date 2026-11-21 --index-uri <uri>

The streaming job writes ``<index-uri>/stream_index/dt=<D>/hour=<HH>/part-b<batch>-<n>.parquet``
(several small files per micro-batch). Once the day is closed the daily DAG runs this
job. Per hour folder it writes all rows into one file under a name readers skip
(``_compacting-*``), checks the row count, removes the small files and renames the
compacted file into place. Rows are never duplicated: between the removal and the
rename an hour briefly reads as empty, which is why this runs only on closed days.
Rerunning is a no-op for hours that already hold a single file.
"""

from __future__ import annotations

import argparse
import json
import sys

import pyarrow.parquet as pq
from pyarrow import fs as pafs

from payments_contract import STREAM_INDEX
from spark_apps.lake import _filesystem, check_date, date_location

TABLE = STREAM_INDEX


def compact_hour(filesystem: pafs.FileSystem, folder: str) -> dict[str, int]:
    files = sorted(
        info.path
        for info in filesystem.get_file_info(pafs.FileSelector(folder))
        if info.type == pafs.FileType.File and info.base_name.endswith(".parquet") and not info.base_name.startswith(("_", "."))
    )
    if len(files) <= 1:
        return {"files_before": len(files), "files_after": len(files), "rows": 0}
    table = pq.ParquetDataset(files, filesystem=filesystem).read()
    first, last = files[0].rsplit("/", 1)[-1].removesuffix(".parquet"), files[-1].rsplit("/", 1)[-1].removesuffix(".parquet")
    staging = f"{folder}/_compacting-{first}.parquet"
    pq.write_table(table, staging, filesystem=filesystem, compression="snappy")
    if pq.ParquetFile(filesystem.open_input_file(staging)).metadata.num_rows != table.num_rows:
        filesystem.delete_file(staging)
        raise RuntimeError(f"{folder}: compacted row count differs; left the small files in place")
    for path in files:
        filesystem.delete_file(path)
    filesystem.move(staging, f"{folder}/part-compacted-{first}-to-{last}.parquet")
    return {"files_before": len(files), "files_after": 1, "rows": table.num_rows}


def compact_day(index_uri: str, date: str) -> dict[str, object]:
    day = date_location(index_uri, TABLE, check_date(date))
    filesystem, root = _filesystem(day)
    hours = [
        info.path
        for info in filesystem.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        if info.type == pafs.FileType.Directory and info.base_name.startswith("hour=")
    ]
    per_hour = {path.rsplit("/", 1)[-1]: compact_hour(filesystem, path) for path in sorted(hours)}
    return {
        "table": TABLE,
        "dt": date,
        "hours": per_hour,
        "files_removed": sum(h["files_before"] - h["files_after"] for h in per_hour.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", required=True)
    parser.add_argument("--index-uri", required=True)
    args = parser.parse_args(argv)
    print(json.dumps(compact_day(args.index_uri, args.date), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
