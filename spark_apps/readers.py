"""Read raw drops in any of the three formats into the shapes validation expects.

Transaction sources become "raw events" (every RAW_TRANSACTION_FIELDS value as text,
``_corrupt_record``, ``source_name``, ``source_format``, ``source_location``). Side
sources (fraud scores, settlements, reference data) are read as text and cast to their
schema; rows that do not fit become quarantine rows (never dropped silently).

The format of each file is chosen by its extension (spark_apps.sources.FORMAT_EXTENSIONS),
so one source folder may even mix formats.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from spark_apps.lake import _filesystem
from spark_apps.masking import masked_payload_json_col
from spark_apps.schemas import MAX_FIELD_LENGTH, QUARANTINE_SCHEMA, RAW_TRANSACTION_FIELDS, Reason
from spark_apps.sources import FORMAT_EXTENSIONS
from spark_apps.validation import CORRUPT_COLUMN, RAW_WITH_CORRUPT_SCHEMA, parse_json_events


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


def _as_text_columns(df: DataFrame, fields: tuple[str, ...]) -> list:
    return [
        (F.col(f"`{name}`").cast("string") if name in df.columns else F.lit(None).cast("string")).alias(name) for name in fields
    ]


def read_raw_events(spark: SparkSession, location: str, source_name: str) -> DataFrame | None:
    """Raw transaction events of one source folder (all formats found), or None if it has no files."""
    frames = []
    for file_format, files in list_files_by_format(location).items():
        if file_format == "jsonl":
            text_df = spark.read.text(files).select("value", F.col("_metadata.file_path").alias("source_location"))
            df = parse_json_events(text_df, "value").drop("value")
        elif file_format == "csv":
            df = (
                spark.read.options(
                    header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN, escape='"', multiLine=False
                )
                .schema(RAW_WITH_CORRUPT_SCHEMA)
                .csv(files)
                .select(*RAW_TRANSACTION_FIELDS, CORRUPT_COLUMN, F.col("_metadata.file_path").alias("source_location"))
            )
        else:
            parquet_df = spark.read.parquet(*files)
            df = parquet_df.select(
                *_as_text_columns(parquet_df, RAW_TRANSACTION_FIELDS),
                F.lit(None).cast("string").alias(CORRUPT_COLUMN),
                F.col("_metadata.file_path").alias("source_location"),
            )
        frames.append(df.withColumn("source_name", F.lit(source_name)).withColumn("source_format", F.lit(file_format)))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result.select(*RAW_TRANSACTION_FIELDS, CORRUPT_COLUMN, "source_name", "source_format", "source_location")


def read_text_table(spark: SparkSession, location: str, fields: tuple[str, ...]) -> DataFrame | None:
    """Every file of a side source as text columns ``fields`` + corrupt/source columns, or None."""
    schema = StructType(
        [StructField(name, StringType(), True) for name in fields] + [StructField(CORRUPT_COLUMN, StringType(), True)]
    )
    frames = []
    for file_format, files in list_files_by_format(location).items():
        if file_format == "jsonl":
            reader = spark.read.options(mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN).schema(schema)
            df = reader.json(files).select(*fields, CORRUPT_COLUMN, F.col("_metadata.file_path").alias("source_location"))
        elif file_format == "csv":
            reader = spark.read.options(
                header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN, escape='"'
            ).schema(schema)
            df = reader.csv(files).select(*fields, CORRUPT_COLUMN, F.col("_metadata.file_path").alias("source_location"))
        else:
            parquet_df = spark.read.parquet(*files)
            df = parquet_df.select(
                *_as_text_columns(parquet_df, fields),
                F.lit(None).cast("string").alias(CORRUPT_COLUMN),
                F.col("_metadata.file_path").alias("source_location"),
            )
        frames.append(df.withColumn("source_format", F.lit(file_format)))
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def read_side_source(
    spark: SparkSession, location: str, source_name: str, schema: StructType, run_id: str, quarantined_at: dt.datetime
) -> tuple[DataFrame, DataFrame]:
    """(typed rows conforming to ``schema``, quarantine rows) of a side source; both empty if absent.

    A row is quarantined when unparseable, when a required value is missing, or when a
    value cannot be cast to its type (wrong_type), in that order.
    """
    tagged_df = read_tagged_side_source(spark, location, schema)
    return split_tagged_side_source(spark, tagged_df, source_name, schema, run_id, quarantined_at)


def read_tagged_side_source(spark: SparkSession, location: str, schema: StructType) -> DataFrame | None:
    """A side source's text rows with ``reason_code`` (null when the row fits ``schema``), or None
    if it has no files. Both halves of :func:`split_tagged_side_source` derive from it, so a
    caller that persists it parses the files once (the batch job does for the fraud scores)."""
    fields = tuple(f.name for f in schema.fields)
    text_df = read_text_table(spark, location, fields)
    if text_df is None:
        return None
    typed = _typed_side_columns(schema)
    required = [f.name for f in schema.fields if not f.nullable]
    missing = F.greatest(F.lit(False), *[F.col(n).isNull() | (F.trim(F.col(n)) == "") for n in required])
    wrong = F.greatest(F.lit(False), *[F.col(n).isNotNull() & (F.trim(F.col(n)) != "") & typed[n].isNull() for n in fields])
    reason = (
        F.when(F.col(CORRUPT_COLUMN).isNotNull(), Reason.UNPARSEABLE)
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
    run_id: str,
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
        "reason_detail": F.concat(F.lit(f"{source_name}: "), F.col("reason_code")),
        "source_name": F.lit(source_name),
        "source_format": F.col("source_format"),
        "source_location": F.col("source_location"),
        "transaction_id": F.when(F.length(transaction_id) <= MAX_FIELD_LENGTH, transaction_id),
        "payload_masked": F.coalesce(F.col(CORRUPT_COLUMN), masked_payload_json_col(fields)),
        "run_id": F.lit(run_id),
        "quarantined_at": F.lit(quarantined_at).cast("timestamp"),
    }
    bad_df = tagged_df.filter(F.col("reason_code").isNotNull()).select(
        *[bad_values[f.name].cast(f.dataType).alias(f.name) for f in QUARANTINE_SCHEMA.fields]
    )
    return good_df, bad_df
