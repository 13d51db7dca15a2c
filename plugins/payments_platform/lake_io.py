"""Small file operations on the lake, for local folders and ``s3://`` URIs alike.

The Airflow side only reads and writes small control files (run manifests, quality
results, publication markers) and lists version folders; data stays in Spark. Where those
live (versioned locations, control-file names, the ready marker) is the shared contract's,
re-exported here: ``payments_contract``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from payments_contract import (
    MANIFEST_FILE,
    QUALITY_RESULT_FILE,
    READY_MARKER,
    join,
    manifest_location,
    parse_version_location,
    quality_result_location,
    ready_marker_location,
    version_location,
    version_of,
)

__all__ = [
    "MANIFEST_FILE",
    "QUALITY_RESULT_FILE",
    "READY_MARKER",
    "delete_file",
    "has_data_files",
    "is_s3",
    "join",
    "list_children",
    "manifest_location",
    "parse_version_location",
    "quality_result_location",
    "read_json",
    "read_text",
    "ready_marker_location",
    "remove_tree",
    "version_location",
    "version_of",
    "write_json",
    "write_text",
]


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _s3_hook(aws_conn_id: str | None = None):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=aws_conn_id)


def read_text(uri: str, aws_conn_id: str | None = None) -> str | None:
    """The file's text, or None when it does not exist."""
    if is_s3(uri):
        bucket, key = _split(uri)
        hook = _s3_hook(aws_conn_id)
        return hook.read_key(key, bucket) if hook.check_for_key(key, bucket) else None
    path = Path(uri)
    return path.read_text() if path.is_file() else None


def read_json(uri: str, aws_conn_id: str | None = None) -> Any:
    text = read_text(uri, aws_conn_id)
    return None if text is None else json.loads(text)


def write_text(uri: str, text: str, aws_conn_id: str | None = None) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        _s3_hook(aws_conn_id).load_string(text, key, bucket, replace=True, encrypt=False)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic: readers never see a half-written control file


def write_json(uri: str, payload: Any, aws_conn_id: str | None = None) -> None:
    write_text(uri, json.dumps(payload, indent=2, sort_keys=True, default=str), aws_conn_id)


def list_children(uri: str, aws_conn_id: str | None = None) -> list[str]:
    """Names of the immediate sub-folders of ``uri``."""
    if is_s3(uri):
        bucket, key = _split(uri)
        prefix = key.rstrip("/") + "/"
        prefixes = _s3_hook(aws_conn_id).list_prefixes(bucket, prefix=prefix, delimiter="/") or []
        return sorted(p[len(prefix) :].rstrip("/") for p in prefixes)
    path = Path(uri)
    return sorted(child.name for child in path.iterdir() if child.is_dir()) if path.is_dir() else []


def has_data_files(uri: str, aws_conn_id: str | None = None) -> bool:
    if is_s3(uri):
        bucket, key = _split(uri)
        keys = _s3_hook(aws_conn_id).list_keys(bucket, prefix=key.rstrip("/") + "/") or []
        return any(k.endswith(".parquet") for k in keys)
    path = Path(uri)
    return path.is_dir() and any(path.glob("*.parquet"))


def remove_tree(uri: str, aws_conn_id: str | None = None) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        hook = _s3_hook(aws_conn_id)
        keys = hook.list_keys(bucket, prefix=key.rstrip("/") + "/") or []
        if keys:
            hook.delete_objects(bucket, keys)
        return
    shutil.rmtree(uri, ignore_errors=True)


def delete_file(uri: str, aws_conn_id: str | None = None) -> None:
    if is_s3(uri):
        bucket, key = _split(uri)
        _s3_hook(aws_conn_id).delete_objects(bucket, [key])
        return
    Path(uri).unlink(missing_ok=True)
