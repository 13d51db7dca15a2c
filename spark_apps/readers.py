"""Read raw drops in any of the three formats into the shapes validation expects.

Transaction sources become "raw events" (every RAW_TRANSACTION_FIELDS value as text,
``_corrupt_record``, ``source_name``, ``source_format``, ``source_location``). Side
sources (fraud scores, settlements, reference data) are read as text and cast to their
schema; rows that do not fit become quarantine rows (never dropped silently).

The format of each file is chosen by its extension (spark_apps.sources.FORMAT_EXTENSIONS),
so one source folder may even mix formats.

CSV columns are mapped by their header names (case and surrounding spaces ignored), never by
position: a reordered header reads the same, columns the header does not name are null, unknown
columns are ignored. A file whose first (non-blank) line names none of the columns has no header:
every line of it, the first included, is a record quarantined as ``missing_header`` (which column
is which cannot be known). A header that lacks a required column, or names one twice, quarantines
every record of its file as ``missing_header`` too (the header line itself is not a record). The
record's raw line is its payload; :func:`inspect_csv_header` gives the rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_apps.lake import _filesystem
from spark_apps.masking import mask_card_numbers_col, mask_payload_text_col, masked_payload_json_col
from spark_apps.schemas import MAX_FIELD_LENGTH, QUARANTINE_SCHEMA, RAW_TRANSACTION_FIELDS, REQUIRED_TRANSACTION_FIELDS, Reason
from spark_apps.sources import FORMAT_EXTENSIONS
from spark_apps.validation import CORRUPT_COLUMN, HEADER_PROBLEM_COLUMN, parse_json_events

_CSV_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN, "multiLine": "false"}
# Each line of a file as one value: no quoting and a separator that text does not hold (a line
# that holds it comes back whole as the corrupt record).
_CSV_LINE_OPTIONS = {**_CSV_OPTIONS, "sep": "\u0001", "quote": ""}
_FIRST_LINE_LIMIT = 1 << 20  # bytes read at most to find a file's header line
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def list_files_by_format(location: str) -> dict[str, list[str]]:
    """Data files directly under ``location`` grouped by format; {} if the folder is absent."""
    from pyarrow import fs as pafs

    filesystem, path = _filesystem(location)
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=False))
    prefix = location.rstrip("/")
    found: dict[str, list[str]] = {}
    for info in infos:
        name = info.path.rstrip("/").rsplit("/", 1)[-1]
        if info.type != pafs.FileType.File or name.startswith(("_", ".")):
            continue
        for file_format, endings in FORMAT_EXTENSIONS.items():
            if name.endswith(endings):
                found.setdefault(file_format, []).append(f"{prefix}/{name}")
                break
    return {k: sorted(v) for k, v in found.items()}


# --- CSV by header names -----------------------------------------------------------------------


@dataclass(frozen=True)
class CsvHeader:
    """How one CSV file's columns map to the wanted fields (:func:`inspect_csv_header`)."""

    cells: tuple[str, ...]  # the header line's cells as written ((): the file has no header)
    positions: tuple[int | None, ...]  # per wanted field: its cell, None if the header does not name it
    problem: str | None = None  # why the file's records are quarantined (missing_header); None: usable

    @property
    def has_header(self) -> bool:
        return bool(self.cells)


def inspect_csv_header(line: str, fields: tuple[str, ...], required: tuple[str, ...] = ()) -> CsvHeader:
    """The mapping of a CSV file whose first non-blank line is ``line``.

    The line is a header when one of its cells names a wanted field (case and surrounding spaces
    ignored; quoted like the data, a leading byte-order mark dropped); then every wanted field it
    names is read from that cell. It is unusable (``problem`` set) when a ``required`` field is not
    named or a field is named twice. A line that names no field is not a header: the file has none.
    """
    cells = next(csv.reader([line.removeprefix("\ufeff")]), [])
    names = [cell.strip().lower() for cell in cells]
    wanted = [field.lower() for field in fields]
    if not set(names) & set(wanted):
        return CsvHeader((), (None,) * len(fields), "no header line: the first line names none of the columns")
    twice = [field for field, name in zip(fields, wanted, strict=True) if names.count(name) > 1]
    missing = [field for field in required if field.lower() not in names]
    positions = tuple(names.index(name) if name in names else None for name in wanted)
    problem = None
    if missing:
        problem = "header lacks required columns: " + ",".join(missing)
    elif twice:
        problem = "header names a column more than once: " + ",".join(twice)
    return CsvHeader(tuple(cells), positions, problem)


def first_csv_line(path: str) -> str | None:
    """The first non-blank line of a (possibly gzipped) file, as Spark's CSV reader takes its
    header; None if the file has none. Reads at most the first MiB."""
    filesystem, file_path = _filesystem(path)
    data = b""
    with filesystem.open_input_stream(file_path) as stream:  # .gz is decompressed (detected by name)
        while len(data) < _FIRST_LINE_LIMIT:
            chunk = stream.read(64 * 1024)
            data += chunk
            lines = _LINE_BREAK.split(data.decode("utf-8", errors="replace"))
            complete = lines if not chunk else lines[:-1]  # the last piece may be cut off
            for text in complete:
                if text.strip():
                    return text
            if not chunk:
                return None
    return data.decode("utf-8", errors="replace")


def _null_text(name: str):
    return F.lit(None).cast("string").alias(name)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read_csv_by_header(
    spark: SparkSession, files: list[str], fields: tuple[str, ...], required: tuple[str, ...] = ()
) -> DataFrame | None:
    """CSV files as text columns ``fields`` + ``_corrupt_record``, ``source_location`` and
    ``_header_problem`` (the validation's HEADER_PROBLEM_COLUMN), each file mapped by its own header
    (:func:`inspect_csv_header`); files with one header are read together. None if no file holds a line.

    A usable header: one row per record, a line with another number of cells than the header has is
    a corrupt record (unparseable). No usable header: one row per non-blank line (the header line
    excluded, if there is one) with the line as ``_corrupt_record`` and the problem in
    ``_header_problem``; the fields are null."""
    groups: dict[CsvHeader, list[str]] = {}
    for path in files:
        line = first_csv_line(path)
        if line is not None:  # an empty file holds no record
            groups.setdefault(inspect_csv_header(line, fields, required), []).append(path)
    frames = []
    for header, paths in groups.items():
        if header.problem is None:
            frames.append(_csv_records(spark, paths, header, fields))
        else:
            frames.append(_csv_lines(spark, paths, header, fields))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _csv_records(spark: SparkSession, paths: list[str], header: CsvHeader, fields: tuple[str, ...]) -> DataFrame:
    # The schema names the header's cells (then Spark's header check has nothing to warn about),
    # or positions where cells repeat or are blank; columns are picked by position either way.
    lowered = [cell.strip().lower() for cell in header.cells]
    usable = all(lowered) and len(set(lowered)) == len(lowered) and CORRUPT_COLUMN not in lowered
    names = list(header.cells) if usable else [f"_c{i}" for i in range(len(header.cells))]
    schema = StructType([StructField(name, StringType(), True) for name in names] + [StructField(CORRUPT_COLUMN, StringType())])
    df = spark.read.options(header=True, escape='"', enforceSchema=True, **_CSV_OPTIONS).schema(schema).csv(paths)
    columns = [
        (F.col(_quoted(names[position])) if position is not None else F.lit(None).cast("string")).alias(field)
        for field, position in zip(fields, header.positions, strict=True)
    ]
    return df.select(
        *columns,
        F.col(CORRUPT_COLUMN),
        F.col("_metadata.file_path").alias("source_location"),
        _null_text(HEADER_PROBLEM_COLUMN),
    )


def _csv_lines(spark: SparkSession, paths: list[str], header: CsvHeader, fields: tuple[str, ...]) -> DataFrame:
    schema = StructType([StructField("_line", StringType()), StructField(CORRUPT_COLUMN, StringType())])
    df = spark.read.options(header=header.has_header, **_CSV_LINE_OPTIONS).schema(schema).csv(paths)
    return df.select(
        *[_null_text(field) for field in fields],
        F.coalesce(F.col(CORRUPT_COLUMN), F.col("_line")).alias(CORRUPT_COLUMN),
        F.col("_metadata.file_path").alias("source_location"),
        F.lit(header.problem).alias(HEADER_PROBLEM_COLUMN),
    )


# --- every format ---------------------------------------------------------------------------------


def _as_text_columns(df: DataFrame, fields: tuple[str, ...]) -> list:
    return [
        (F.col(f"`{name}`").cast("string") if name in df.columns else F.lit(None).cast("string")).alias(name) for name in fields
    ]


# The columns of read_raw_events: the validation's raw events + the CSV header check's column.
RAW_EVENT_COLUMNS = (
    *RAW_TRANSACTION_FIELDS,
    CORRUPT_COLUMN,
    "source_name",
    "source_format",
    "source_location",
    HEADER_PROBLEM_COLUMN,
)


def read_raw_events(spark: SparkSession, location: str, source_name: str) -> DataFrame | None:
    """Raw transaction events of one source folder (all formats found), or None if it has no files
    (columns :data:`RAW_EVENT_COLUMNS`; CSV mapped by header, see the module docstring)."""
    frames = []
    for file_format, files in list_files_by_format(location).items():
        if file_format == "jsonl":
            text_df = spark.read.text(files).select("value", F.col("_metadata.file_path").alias("source_location"))
            df = (
                parse_json_events(text_df, "value")
                .drop("value")
                .withColumn(HEADER_PROBLEM_COLUMN, _null_text(HEADER_PROBLEM_COLUMN))
            )
        elif file_format == "csv":
            df = read_csv_by_header(spark, files, RAW_TRANSACTION_FIELDS, REQUIRED_TRANSACTION_FIELDS)
            if df is None:
                continue
        else:
            parquet_df = spark.read.parquet(*files)
            df = parquet_df.select(
                *_as_text_columns(parquet_df, RAW_TRANSACTION_FIELDS),
                F.lit(None).cast("string").alias(CORRUPT_COLUMN),
                F.col("_metadata.file_path").alias("source_location"),
                _null_text(HEADER_PROBLEM_COLUMN),
            )
        frames.append(df.withColumn("source_name", F.lit(source_name)).withColumn("source_format", F.lit(file_format)))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result.select(*RAW_EVENT_COLUMNS)


def read_text_table(
    spark: SparkSession, location: str, fields: tuple[str, ...], required: tuple[str, ...] = ()
) -> DataFrame | None:
    """Every file of a side source as text columns ``fields`` + corrupt/source columns and
    ``_header_problem`` (CSV by header; ``required``: what a CSV header must name), or None."""
    schema = StructType(
        [StructField(name, StringType(), True) for name in fields] + [StructField(CORRUPT_COLUMN, StringType(), True)]
    )
    frames = []
    for file_format, files in list_files_by_format(location).items():
        if file_format == "jsonl":
            reader = spark.read.options(mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN).schema(schema)
            df = reader.json(files).select(
                *fields, CORRUPT_COLUMN, F.col("_metadata.file_path").alias("source_location"), _null_text(HEADER_PROBLEM_COLUMN)
            )
        elif file_format == "csv":
            df = read_csv_by_header(spark, files, fields, required)
            if df is None:
                continue
        else:
            parquet_df = spark.read.parquet(*files)
            df = parquet_df.select(
                *_as_text_columns(parquet_df, fields),
                F.lit(None).cast("string").alias(CORRUPT_COLUMN),
                F.col("_metadata.file_path").alias("source_location"),
                _null_text(HEADER_PROBLEM_COLUMN),
            )
        frames.append(df.withColumn("source_format", F.lit(file_format)))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def read_side_source(
    spark: SparkSession, location: str, source_name: str, schema: StructType, version: str, quarantined_at: dt.datetime
) -> tuple[DataFrame, DataFrame]:
    """(typed rows conforming to ``schema``, quarantine rows) of a side source; both empty if absent.

    A row is quarantined when its CSV file has no usable header (missing_header), when
    unparseable, when a required value is missing, or when a value cannot be cast to its type
    (wrong_type), in that order.
    """
    tagged_df = read_tagged_side_source(spark, location, schema)
    return split_tagged_side_source(spark, tagged_df, source_name, schema, version, quarantined_at)


def read_tagged_side_source(spark: SparkSession, location: str, schema: StructType) -> DataFrame | None:
    """A side source's text rows with ``reason_code`` (null when the row fits ``schema``), or None
    if it has no files. Both halves of :func:`split_tagged_side_source` derive from it, so a
    caller that persists it parses the files once (the batch job does for the fraud scores)."""
    fields = tuple(f.name for f in schema.fields)
    required = tuple(f.name for f in schema.fields if not f.nullable)
    text_df = read_text_table(spark, location, fields, required)
    if text_df is None:
        return None
    typed = _typed_side_columns(schema)
    missing = F.greatest(F.lit(False), *[F.col(n).isNull() | (F.trim(F.col(n)) == "") for n in required])
    wrong = F.greatest(F.lit(False), *[F.col(n).isNotNull() & (F.trim(F.col(n)) != "") & typed[n].isNull() for n in fields])
    reason = (
        F.when(F.col(HEADER_PROBLEM_COLUMN).isNotNull(), Reason.MISSING_HEADER)
        .when(F.col(CORRUPT_COLUMN).isNotNull(), Reason.UNPARSEABLE)
        .when(missing, Reason.MISSING_REQUIRED_FIELD)
        .when(wrong, Reason.WRONG_TYPE)
    )
    return text_df.withColumn("reason_code", reason)


def _typed_side_columns(schema: StructType) -> dict:
    return {f.name: F.trim(F.col(f.name)).try_cast(f.dataType) for f in schema.fields}


def split_tagged_side_source(
    spark: SparkSession,
    tagged_df: DataFrame | None,
    source_name: str,
    schema: StructType,
    version: str,
    quarantined_at: dt.datetime,
) -> tuple[DataFrame, DataFrame]:
    """(typed rows, quarantine rows) of a :func:`read_tagged_side_source` frame; both empty for None."""
    if tagged_df is None:
        return spark.createDataFrame([], schema), spark.createDataFrame([], QUARANTINE_SCHEMA)
    fields = tuple(f.name for f in schema.fields)
    typed = _typed_side_columns(schema)
    good_df = tagged_df.filter(F.col("reason_code").isNull()).select(*[typed[n].alias(n) for n in fields])
    transaction_id = (
        F.col("transaction_id")
        if "transaction_id" in fields
        else (F.col("transaction_ref") if "transaction_ref" in fields else F.lit(None))
    )
    bad_values = {
        "reason_code": F.col("reason_code"),
        "reason_detail": F.concat(
            F.lit(f"{source_name}: "),
            F.col("reason_code"),
            F.coalesce(F.concat(F.lit(": "), F.col(HEADER_PROBLEM_COLUMN)), F.lit("")),
        ),
        "source_name": F.lit(source_name),
        "source_format": F.col("source_format"),
        "source_location": F.col("source_location"),
        "transaction_id": mask_card_numbers_col(F.when(F.length(transaction_id) <= MAX_FIELD_LENGTH, transaction_id)),
        "payload_masked": F.coalesce(mask_payload_text_col(F.col(CORRUPT_COLUMN)), masked_payload_json_col(fields)),
        "version": F.lit(version),
        "quarantined_at": F.lit(quarantined_at).cast("timestamp"),
    }
    bad_df = tagged_df.filter(F.col("reason_code").isNotNull()).select(
        *[bad_values[f.name].cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields]
    )
    return good_df, bad_df
