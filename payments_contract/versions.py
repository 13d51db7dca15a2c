"""Version ids and partition dates: the two values every versioned location is built from."""

from __future__ import annotations

import datetime as dt
import re
import uuid

MAX_VERSION_LENGTH = 128
# One path segment: letters, digits, ``_ . -``, starting with a letter or digit (no ``..``, no ``/``).
VERSION_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_VERSION_LENGTH - 1}}}"
DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
# The part of an Airflow run id kept in a version id (the rest is ``-<unique>``).
_AIRFLOW_PART = 100

_VERSION = re.compile(rf"^{VERSION_PATTERN}$")
_DATE = re.compile(rf"^{DATE_PATTERN}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


class ContractError(ValueError):
    """A version id, date or location that breaks the shared lake contract."""


def check_version(version: str) -> str:
    """Return ``version`` if it is a valid version id (one safe path segment), else raise ContractError.

    Airflow run ids such as ``scheduled__2026-11-21T00:00:00+00:00`` are not: the Airflow side
    makes a version id from one with :func:`version_from_airflow_run_id`.
    """
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ContractError(
            f"version {version!r}: use 1-{MAX_VERSION_LENGTH} characters from [A-Za-z0-9_.-], starting with a letter or digit"
        )
    return version


def version_from_airflow_run_id(airflow_run_id: str, unique: str | None = None) -> str:
    """The version id of one attempt of one Airflow DAG run: ``<sanitized run id>-<unique>``.

    The run id's unsafe characters become ``_`` (at most 100 characters are kept) and ``unique``
    (default: 8 random hex digits) tells two attempts of the same run apart, so a rerun never
    writes into the folder an earlier attempt wrote. The same arguments give the same id.
    """
    safe = _UNSAFE.sub("_", airflow_run_id).strip("_.-")[:_AIRFLOW_PART].strip("_.-") or "run"
    return check_version(f"{safe}-{unique or uuid.uuid4().hex[:8]}")


def new_version(now: dt.datetime | None = None) -> str:
    """A fresh, sortable version id for a run started outside Airflow: ``<UTC yyyymmddThhmmssZ>-<8 hex>``."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def check_date(date: str | dt.date) -> str:
    """The partition date as ``YYYY-MM-DD`` text (a real calendar day); raises ContractError otherwise."""
    text = date.isoformat() if isinstance(date, dt.date) else str(date)
    if not _DATE.match(text):
        raise ContractError(f"date {date!r}: expected YYYY-MM-DD")
    try:
        dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ContractError(f"date {date!r}: {exc}") from None
    return text
