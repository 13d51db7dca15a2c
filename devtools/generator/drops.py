"""Write a generated day as raw drops (JSON lines, CSV, Parquet) plus its ground truth.

Layout (see spark_apps.sources)::

    <raw_uri>/<source>/dt=<D>/part-00000.<jsonl|csv|parquet>
    <raw_uri>/_ground_truth/dt=<D>/ground_truth.json
    <raw_uri>/_ground_truth/dt=<D>/reconciliation.parquet

JSON lines and CSV are written by DuckDB (correct quoting/escaping, fast); records
whose serialization is itself broken (``raw_text``, and a side source's
``Workload.side_raw_lines``) are appended verbatim.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devtools.generator.workload import Workload
from spark_apps.sources import FORMATS, GROUND_TRUTH_DIR, RAW_SOURCES, source_location

EXTENSION = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}


def _write_table(table: pa.Table, path: Path, file_format: str) -> None:
    if file_format == "parquet":
        pq.write_table(table, path, compression="snappy")
        return
    import duckdb

    connection = duckdb.connect()
    try:
        connection.execute("SET preserve_insertion_order = true")
        connection.register("drop_table", table)
        options = "FORMAT json" if file_format == "jsonl" else "FORMAT csv, HEADER true"
        connection.execute(f"COPY (SELECT * FROM drop_table) TO '{path}' ({options})")
    finally:
        connection.close()


def write_drops(workload: Workload, raw_uri: str, formats: dict[str, str] | None = None) -> dict[str, dict]:
    """Write every source of ``workload`` under ``raw_uri`` (a local folder); return per-source info.

    ``formats`` overrides the default format of any source (``{"gateway_a": "parquet"}``).
    A rerun replaces the day's files. Broken records go only to text formats: a
    gateway switched to Parquet gets its unparseable lines as a ``.jsonl`` side file.
    """
    formats = {**{s.name: s.default_format for s in RAW_SOURCES}, **(formats or {})}
    return {source.name: _write_source(workload, raw_uri, source, formats[source.name]) for source in RAW_SOURCES}


def _write_source(workload: Workload, raw_uri: str, source, file_format: str) -> dict:
    """One source's drop of the day: its records, then its verbatim broken lines."""
    if file_format not in FORMATS:
        raise ValueError(f"{source.name}: unknown format {file_format!r} (use one of {FORMATS})")
    folder = _emptied_folder(source_location(raw_uri, source.name, workload.config.date))
    table = workload.source_table(source.name)
    if source.kind == "transactions":
        broken = pc.is_valid(table.column("raw_text"))
        records = table.filter(pc.invert(broken)).drop_columns(["source_name", "produce_ms", "raw_text"])
        broken_lines = table.filter(broken).column("raw_text").to_pylist()
    else:
        records, broken_lines = table, workload.side_raw_lines.get(source.name, [])
    target = folder / f"part-00000.{EXTENSION[file_format]}"
    _write_table(records, target, file_format)
    files = [target.name, *_append_lines(target, file_format, broken_lines)]
    info = {"format": file_format, "records": int(table.num_rows), "location": str(folder), "files": files}
    if source.kind != "transactions" and broken_lines:
        info["unparseable_lines"] = len(broken_lines)
    return info


def _emptied_folder(location: str) -> Path:
    """The folder, made or emptied of its files (a rerun replaces the day's drop)."""
    folder = Path(location)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    return folder


def _append_lines(target: Path, file_format: str, lines: list[str]) -> list[str]:
    """Append verbatim lines to the drop's text file, or for Parquet to a JSON lines side file;
    return the side file's name if one was written."""
    if not lines:
        return []
    side = target if file_format != "parquet" else target.with_name("part-00001.jsonl")
    with open(side, "a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return [] if side == target else [side.name]


def ground_truth_location(raw_uri: str, date: str) -> str:
    return f"{raw_uri.rstrip('/')}/{GROUND_TRUTH_DIR}/dt={date}"


def write_ground_truth(workload: Workload, raw_uri: str, written: dict[str, dict] | None = None) -> str:
    """Write ground_truth.json (+ reconciliation.parquet) for the day; return the JSON path."""
    folder = Path(ground_truth_location(raw_uri, workload.config.date))
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(workload.reconciliation_truth, folder / "reconciliation.parquet")
    truth = dict(workload.truth)
    if written is not None:
        truth["sources"] = written
    path = folder / "ground_truth.json"
    tmp = folder / "ground_truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return str(path)


def read_ground_truth(raw_uri: str, date: str) -> dict:
    return json.loads((Path(ground_truth_location(raw_uri, date)) / "ground_truth.json").read_text())
