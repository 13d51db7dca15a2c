"""Where things live in the lake: versioned locations, control files, the ready marker, metrics.

A run writes one table's day to a NEW folder (DESIGN decision 4)::

    <root>/<table>/dt=<YYYY-MM-DD>/version=<version>/part-*.parquet
    <root>/<table>/dt=<YYYY-MM-DD>/version=<version>/_manifest.json   (the job, written last)
    <root>/<table>/dt=<YYYY-MM-DD>/version=<version>/_quality.json    (the orchestrator, after the gate)

``root`` is the profile's ``lake.index_uri`` (``lake.quarantine_uri`` for the quarantine table);
publishing points the catalog partition ``dt=<D>`` at one such folder. Roots may be local
paths, ``file://`` or ``s3://`` URIs: these functions only join and parse text.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import NamedTuple

from payments_contract.versions import DATE_PATTERN, VERSION_PATTERN, ContractError, check_date, check_version

DATE_SEGMENT = "dt="
HOUR_SEGMENT = "hour="
VERSION_SEGMENT = "version="
# Control files inside a version folder.
MANIFEST_FILE = "_manifest.json"  # the job's: rows written, inputs read, counts; a folder without one is unfinished
QUALITY_RESULT_FILE = "_quality.json"  # the gate's result; only the orchestrator writes it
# Under the raw root: written last by the upstream drop jobs (and the generator), so it means "the day is complete".
READY_MARKER = "_ready/dt={dt}.json"
# Under the metrics root.
STREAM_METRICS_DIR = "stream"  # <metrics>/stream/<query>/{latest.json,heartbeat.json,batches/...}
STREAM_LATEST_FILE = "latest.json"
STREAM_HEARTBEAT_FILE = "heartbeat.json"
SUPERVISOR_DIR = "supervisor"  # <metrics>/supervisor/{restarts.json,incident.json,STOPPED}
SUPERVISOR_RESTARTS_FILE = "restarts.json"
SUPERVISOR_INCIDENT_FILE = "incident.json"
SUPERVISOR_STOP_MARKER = "STOPPED"  # written by the supervisor's stop action: no restart until start
DAILY_SUMMARY_DIR = "daily"  # <metrics>/daily/dt=<D>/summary-<version>.json

_VERSIONED = re.compile(
    rf"^(?P<root>.*)/(?P<table>[A-Za-z_][A-Za-z0-9_]*)/{DATE_SEGMENT}(?P<dt>{DATE_PATTERN})"
    rf"(?:/{HOUR_SEGMENT}(?P<hour>\d{{1,2}}))?/{VERSION_SEGMENT}(?P<version>{VERSION_PATTERN})/?$"
)


class VersionedLocation(NamedTuple):
    root: str
    table: str
    dt: str
    version: str
    hour: int | None = None


def join(uri: str, *parts: str) -> str:
    """``uri`` and ``parts`` joined with single slashes (``s3://`` kept)."""
    return "/".join([uri.rstrip("/"), *(part.strip("/") for part in parts)])


def table_location(root: str, table: str) -> str:
    return join(root, table)


def date_location(root: str, table: str, date: str | dt.date) -> str:
    return join(root, table, f"{DATE_SEGMENT}{check_date(date)}")


def version_location(root: str, table: str, date: str | dt.date, version: str) -> str:
    """``<root>/<table>/dt=<date>/version=<version>`` (no trailing slash); date and version are checked."""
    return join(date_location(root, table, date), f"{VERSION_SEGMENT}{check_version(version)}")


def parse_version_location(location: str) -> VersionedLocation:
    """The parts of ``<root>/<table>/dt=<D>[/hour=<H>]/version=<V>[/]``; ContractError for any other location."""
    match = _VERSIONED.match(location)
    if not match or not match.group("root"):
        raise ContractError(
            f"location {location!r} is not a versioned location (<root>/<table>/{DATE_SEGMENT}<YYYY-MM-DD>/{VERSION_SEGMENT}<version>)"
        )
    hour = match.group("hour")
    return VersionedLocation(
        match.group("root"),
        match.group("table"),
        check_date(match.group("dt")),
        match.group("version"),
        None if hour is None else int(hour),
    )


def version_of(location: str) -> str:
    """The version id of a versioned location."""
    return parse_version_location(location).version


def manifest_location(location: str) -> str:
    return join(location, MANIFEST_FILE)


def quality_result_location(location: str) -> str:
    return join(location, QUALITY_RESULT_FILE)


def ready_marker_location(raw_root: str, date: str) -> str:
    """``<raw>/_ready/dt=<date>.json``. ``date`` is not checked: the sensor passes a template."""
    return join(raw_root, READY_MARKER.format(dt=date))


def stream_metrics_location(metrics_root: str, query_name: str) -> str:
    """``<metrics>/stream/<query>``: the stream job's ``latest.json``, ``heartbeat.json`` and ``batches/``."""
    return join(metrics_root, STREAM_METRICS_DIR, query_name)


def stream_batches_location(metrics_root: str, query_name: str, date: str) -> str:
    """``<metrics>/stream/<query>/batches/dt=<date>``: one JSON file per micro-batch committed that day."""
    return join(stream_metrics_location(metrics_root, query_name), "batches", f"{DATE_SEGMENT}{check_date(date)}")


def stream_batch_record_location(metrics_root: str, query_name: str, committed_at: str, batch_id: int) -> str:
    """The record of one micro-batch, filed by its commit time (ISO ``YYYY-MM-DDTHH...``, UTC)."""
    day, hour = committed_at[:10], committed_at[11:13]
    return join(
        stream_batches_location(metrics_root, query_name, day), f"{HOUR_SEGMENT}{hour}", f"batch-{int(batch_id):012d}.json"
    )


def supervisor_location(metrics_root: str, name: str) -> str:
    """``<metrics>/supervisor/<name>`` (``restarts.json``, ``incident.json``, ``STOPPED``)."""
    return join(metrics_root, SUPERVISOR_DIR, name)


def daily_summary_location(metrics_root: str, date: str, version: str) -> str:
    """``<metrics>/daily/dt=<date>/summary-<version>.json``: the daily run's summary."""
    return join(metrics_root, DAILY_SUMMARY_DIR, f"{DATE_SEGMENT}{check_date(date)}", f"summary-{check_version(version)}.json")
