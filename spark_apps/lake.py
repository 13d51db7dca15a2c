"""Spark-side lake access: manifests, version listings and schema-exact versioned writes.

The layout itself (DESIGN decision 4) is the shared contract's (``payments_contract``)::

    <base_uri>/<table>/dt=<YYYY-MM-DD>/version=<version>/part-*.parquet
    <base_uri>/<table>/dt=<YYYY-MM-DD>/version=<version>/_manifest.json

where ``base_uri`` is ``lake.index_uri`` for indexes and ``lake.quarantine_uri``
for quarantine tables. A Soda contract then audits the location and only then is
the catalog partition ``dt=D`` pointed at it; older versions stay for time travel.

``base_uri`` may be a local path, ``file://...`` or ``s3://`` / ``s3a://``. The
manifest is written with ``pyarrow.fs`` so the same code works on S3 (EMR on EKS)
and locally; the Parquet data is written by Spark.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Mapping
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from payments_contract import MANIFEST_FILE, VERSION_SEGMENT, ContractError, date_location, version_location
from payments_contract import check_date as check_date
from payments_contract import check_version as check_version
from payments_contract import new_version as new_version
from payments_contract import table_location as table_location
from payments_contract import version_from_airflow_run_id as version_from_airflow_run_id

# A bad location, version, date or schema at a lake boundary (the contract's error: one type to catch).
LakeError = ContractError


# --- file system access (manifests, listings) ---------------------------------------


def _filesystem(uri: str):
    """(pyarrow FileSystem, path) for a local path, file:// or s3(a):// URI."""
    from pyarrow import fs as pafs

    if uri.startswith("s3a://") or uri.startswith("s3n://"):
        uri = "s3://" + uri.split("://", 1)[1]
    if uri.startswith("s3://") and "?" not in uri:
        # Writes open at their first upload: a small file is one PUT, not a 3-request multipart
        # upload. An error (no such bucket, access) then surfaces when the stream is closed.
        uri += "?allow_delayed_open=true"
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def is_object_store(filesystem) -> bool:
    """No folders: a key is written without its parents, and one PUT replaces an object atomically."""
    return filesystem.type_name in ("s3", "gcs")


def write_text(uri: str, text: str) -> None:
    filesystem, path = _filesystem(uri)
    if not is_object_store(filesystem):  # on S3, folder marker objects cost 4 requests
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(text.encode("utf-8"))


def read_text(uri: str) -> str:
    filesystem, path = _filesystem(uri)
    with filesystem.open_input_stream(path) as stream:
        return stream.read().decode("utf-8")


def write_manifest(location: str, manifest: Mapping[str, Any]) -> str:
    """Write ``manifest`` as ``<location>/_manifest.json`` (sorted keys); return its URI."""
    uri = f"{location.rstrip('/')}/{MANIFEST_FILE}"
    write_text(uri, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return uri


def read_manifest(location: str) -> dict[str, Any]:
    """The manifest of a versioned location; raises FileNotFoundError if the run never finished."""
    return json.loads(read_text(f"{location.rstrip('/')}/{MANIFEST_FILE}"))


def list_versions(base_uri: str, table: str, date: str | dt.date) -> list[str]:
    """Versions written for ``table`` and ``date`` that have a manifest, oldest first (by id)."""
    from pyarrow import fs as pafs

    filesystem, path = _filesystem(date_location(base_uri, table, date))
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except FileNotFoundError:
        return []
    versions = []
    for info in infos:
        name = info.path.rstrip("/").rsplit("/", 1)[-1]
        if info.type == pafs.FileType.Directory and name.startswith(VERSION_SEGMENT):
            manifest = filesystem.get_file_info(f"{info.path.rstrip('/')}/{MANIFEST_FILE}")
            if manifest.type == pafs.FileType.File:
                versions.append(name.removeprefix(VERSION_SEGMENT))
    return sorted(versions)


# --- schema-exact DataFrame writes -----------------------------------------------------


def _required(field: StructField) -> Column:
    column = F.col(field.name)
    if field.nullable:
        return column
    # Evaluated inside the write itself (no extra pass): a null in a required column fails the job.
    return F.when(column.isNull(), F.raise_error(F.lit(f"null in required column {field.name}"))).otherwise(column)


def conform_to_schema(df: DataFrame, schema: StructType, keep: tuple[str, ...] = ()) -> DataFrame:
    """Select exactly ``schema``'s columns, in order, with its types; fail on missing/extra columns or type drift.

    Types must already match (no silent casts of money or timestamps). Non-nullable
    columns raise at write time if a null reaches them. ``keep`` columns of ``df`` follow
    the schema's, unchecked.
    """
    expected = {f.name: f.dataType for f in schema.fields}
    actual = {f.name: f.dataType for f in df.schema.fields if f.name not in keep}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(
        f"{name}: {actual[name].simpleString()} != {dtype.simpleString()}"
        for name, dtype in expected.items()
        if name in actual and without_nullability(actual[name]) != without_nullability(dtype)
    )
    if missing or extra or wrong:
        raise LakeError(f"schema mismatch: missing={missing} extra={extra} wrong_type={wrong}")
    return df.select(*_conformed_columns(schema, tuple(keep)))


@functools.cache
def _conformed_columns(schema: StructType, keep: tuple[str, ...]) -> tuple[Column, ...]:
    # Built once per schema: the stream conforms every micro-batch, and each Column call is a
    # Py4J round trip (a Column is an unresolved expression, resolved anew in each plan).
    return tuple(_required(f).alias(f.name) for f in schema.fields) + tuple(F.col(name) for name in keep)


def without_nullability(dtype):
    """``dtype`` with every nested element/field nullable: Parquet does not keep element nullability,
    so written and read-back types compare equal only this way."""
    from pyspark.sql.types import ArrayType, MapType

    if isinstance(dtype, ArrayType):
        return ArrayType(without_nullability(dtype.elementType), True)
    if isinstance(dtype, MapType):
        return MapType(without_nullability(dtype.keyType), without_nullability(dtype.valueType), True)
    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, without_nullability(f.dataType), True) for f in dtype.fields])
    return dtype


def write_versioned(
    df: DataFrame,
    base_uri: str,
    table: str,
    date: str | dt.date,
    version: str,
    schema: StructType,
    manifest: Mapping[str, Any] | None = None,
) -> str:
    """Write ``df`` (conformed to ``schema``) as Parquet to the run's versioned location; return the location.

    Rewriting the same version replaces its files (a retry of the same run);
    a new version never touches an earlier one. The manifest, if given, is written
    last, so a location with a manifest is a complete run.
    """
    location = version_location(base_uri, table, date, version)
    conform_to_schema(df, schema).write.mode("overwrite").parquet(location)
    if manifest is not None:
        write_manifest(location, manifest)
    return location
