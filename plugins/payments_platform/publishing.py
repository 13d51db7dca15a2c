"""Partition publishing: make a verified version visible, repoint, roll back (DESIGN decision 4).

A version is the folder one run wrote: ``<index_uri>/<table>/dt=<D>/version=<version>/``.
Publishing ``dt=D`` of a table creates the catalog partition or repoints it to that
folder, and only when the quality gate's result in the folder (``_quality.json``)
says it passed. The previous location is remembered so one step of rollback needs no
search; any earlier kept version can be named explicitly.

* ``GluePublisher`` (``aws``): the Glue Data Catalog through the Amazon provider's
  ``GlueCatalogHook``; Athena reads the partitions.
* ``EmbeddedPublisher`` (``local``): a DuckDB file holding the partition table and one
  view per index table over the published versions; the local SQL engine reads it.

Both are idempotent: publishing the location a partition already points to changes
nothing.

A stage's tables are published together or not at all (:func:`publish_together`): every
version must be verified before any partition moves, and when publishing one table fails
the tables published before it (and the failed one, if it got half way) are restored to
exactly the partitions they had (location, versions, previous pointers; on S3 the superseded
tags as well), or the partition is removed again when the table had none for the day.

Retention (``lake.retention_days``): a version the partition was repointed away from is
*superseded*; it is kept for time travel and rollback, then removed.

* ``aws``: the publisher tags every object of the superseded version
  ``payments-lifecycle=superseded`` (``SUPERSEDED_TAG``, the Terraform lake module's
  ``superseded_tag``); the processed bucket's lifecycle rule expires tagged objects
  ``retention_days`` after they were written. The version a partition points to is never
  tagged: publishing (and so rolling back) first removes the tag from its target. Only
  versions under ``lake.index_uri`` (processed bucket, ``indexes/``) are tagged; the
  quarantine bucket expires everything by age and the MWAA role may not tag there.
* ``local``: :meth:`EmbeddedPublisher.prune_superseded` deletes version folders older
  than ``retention_days`` that are neither the current nor the previous version of
  their partition (the daily DAG's ``prune_superseded_versions`` task runs it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from payments_contract import DATE_SEGMENT, QUARANTINE, VERSION_SEGMENT, ContractError, parse_version_location
from payments_contract import QUALITY_RESULT_FILE as QUALITY_RESULT_FILE
from payments_platform import lake_io
from payments_platform.profiles import Profile, get_profile

log = logging.getLogger(__name__)

# The object tag the lake's lifecycle rule expires (infra/terraform/modules/lake, variable superseded_tag).
SUPERSEDED_TAG = {"Key": "payments-lifecycle", "Value": "superseded"}
# A version whose gate found a card number in clear: expires within days (variable pan_scan_failed_tag).
PAN_SCAN_FAILED_TAG = {"Key": "payments-lifecycle", "Value": "pan-scan-failed"}


class PublishError(RuntimeError):
    """The version cannot be published (missing, unverified or failed its gate)."""


@dataclass(frozen=True)
class Publication:
    table: str
    dt: str
    location: str
    version: str
    previous_location: str | None
    previous_version: str | None
    changed: bool
    published_at: str


def version_of(location: str) -> str:
    try:
        return parse_version_location(location).version
    except ContractError as exc:
        raise PublishError(str(exc)) from None


def require_verified(location: str, aws_conn_id: str | None = None) -> dict[str, Any]:
    """The gate result of a version; raises unless the version exists and passed."""
    if not lake_io.has_data_files(location, aws_conn_id):
        raise PublishError(f"refusing to publish {location}: no Parquet files there")
    result = lake_io.read_json(lake_io.join(location, QUALITY_RESULT_FILE), aws_conn_id)
    if result is None:
        raise PublishError(f"refusing to publish {location}: it has not been verified by the quality gate")
    if not result.get("passed"):
        failed = ", ".join(check.get("name", "?") for check in result.get("checks_failed", [])) or "unknown checks"
        raise PublishError(f"refusing to publish {location}: its quality gate failed ({failed})")
    return result


class Publisher(Protocol):
    aws_conn_id: str | None

    def current(self, table: str, dt: str) -> dict[str, Any] | None: ...

    def snapshot(self, table: str, dt: str) -> Any: ...

    def restore(self, table: str, dt: str, snapshot: Any) -> None: ...

    def publish(self, table: str, dt: str, location: str) -> Publication: ...

    def rollback(self, table: str, dt: str, version: str | None = None) -> Publication: ...

    def mark_superseded(self, location: str, tag: dict[str, str] = SUPERSEDED_TAG) -> list[str]: ...

    def prune_superseded(self, tables: list[str], retention_days: int, now: datetime | None = None) -> list[str]: ...


class _BasePublisher:
    index_uri: str
    quarantine_uri: str | None = None
    aws_conn_id: str | None = None

    def root_of(self, table: str) -> str:
        """Where ``table``'s versions live: the quarantine table has its own bucket/folder."""
        return self.quarantine_uri if table == QUARANTINE and self.quarantine_uri else self.index_uri

    def _target_for_rollback(self, table: str, dt: str, version: str | None) -> str:
        current = self.current(table, dt)
        if current is None:
            raise PublishError(f"{table} dt={dt} is not published; nothing to roll back")
        if version is None:
            if not current.get("previous_location"):
                raise PublishError(f"{table} dt={dt} has no previous version to roll back to")
            return current["previous_location"]
        return lake_io.version_location(self.root_of(table), table, dt, version)

    def rollback(self, table: str, dt: str, version: str | None = None) -> Publication:
        """Repoint to the given ``version``, or to the previous one when not given."""
        return self.publish(table, dt, self._target_for_rollback(table, dt, version))

    def current(self, table: str, dt: str) -> dict[str, Any] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def publish(self, table: str, dt: str, location: str) -> Publication:  # pragma: no cover - abstract
        raise NotImplementedError


# Catalog files written before the version column had one name (run_id, previous_run_id).
_LEGACY_COLUMNS = (
    ("catalog_partitions", "run_id", "version"),
    ("catalog_partitions", "previous_run_id", "previous_version"),
    ("catalog_history", "run_id", "version"),
)


def _rename_legacy_columns(con) -> None:
    """Rename an older local catalog's ``run_id`` columns to ``version`` (idempotent)."""
    for table, old, new in _LEGACY_COLUMNS:
        found = con.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? AND column_name = ?",
            [table, old],
        ).fetchone()
        if found:
            con.execute(f"ALTER TABLE main.{table} RENAME COLUMN {old} TO {new}")


class EmbeddedPublisher(_BasePublisher):
    """The local catalog: a DuckDB file with partitions, their history and one view per table."""

    def __init__(self, path: str, database: str, index_uri: str, quarantine_uri: str | None = None) -> None:
        self.path = path
        self.database = database
        self.index_uri = index_uri
        self.quarantine_uri = quarantine_uri

    def _connect(self):
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(self.path)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.database}")
        con.execute(
            """CREATE TABLE IF NOT EXISTS main.catalog_partitions (
                table_name VARCHAR, dt VARCHAR, location VARCHAR, version VARCHAR,
                previous_location VARCHAR, previous_version VARCHAR, published_at VARCHAR,
                PRIMARY KEY (table_name, dt))"""
        )
        con.execute(
            """CREATE TABLE IF NOT EXISTS main.catalog_history (
                table_name VARCHAR, dt VARCHAR, location VARCHAR, version VARCHAR,
                previous_location VARCHAR, published_at VARCHAR)"""
        )
        _rename_legacy_columns(con)
        return con

    def current(self, table: str, dt: str) -> dict[str, Any] | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT location, version, previous_location, previous_version, published_at FROM main.catalog_partitions WHERE table_name = ? AND dt = ?",
                [table, dt],
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("location", "version", "previous_location", "previous_version", "published_at"), row, strict=True))

    def partitions(self, table: str) -> list[dict[str, Any]]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT dt, location, version FROM main.catalog_partitions WHERE table_name = ? ORDER BY dt", [table]
            ).fetchall()
        return [{"dt": dt, "location": location, "version": version} for dt, location, version in rows]

    def publish(self, table: str, dt: str, location: str) -> Publication:
        require_verified(location)
        version = version_of(location)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        current = self.current(table, dt)
        if current and current["location"] == location:
            return Publication(
                table,
                dt,
                location,
                version,
                current["previous_location"],
                current["previous_version"],
                False,
                current["published_at"],
            )
        previous_location = current["location"] if current else None
        previous_version = current["version"] if current else None
        with self._connect() as con:
            con.execute("BEGIN")
            con.execute("DELETE FROM main.catalog_partitions WHERE table_name = ? AND dt = ?", [table, dt])
            con.execute(
                "INSERT INTO main.catalog_partitions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [table, dt, location, version, previous_location, previous_version, now],
            )
            con.execute(
                "INSERT INTO main.catalog_history VALUES (?, ?, ?, ?, ?, ?)",
                [table, dt, location, version, previous_location, now],
            )
            self._refresh_view(con, table)
            con.execute("COMMIT")
        return Publication(table, dt, location, version, previous_location, previous_version, True, now)

    _COLUMNS = ("table_name", "dt", "location", "version", "previous_location", "previous_version", "published_at")

    def snapshot(self, table: str, dt: str) -> tuple[Any, ...] | None:
        """The partition's catalog row as it is (None: no partition), for :meth:`restore`."""
        with self._connect() as con:
            return con.execute(
                f"SELECT {', '.join(self._COLUMNS)} FROM main.catalog_partitions WHERE table_name = ? AND dt = ?", [table, dt]
            ).fetchone()

    def restore(self, table: str, dt: str, snapshot: tuple[Any, ...] | None) -> None:
        """Put the partition back exactly as :meth:`snapshot` found it (removed if there was none)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as con:
            con.execute("BEGIN")
            row = con.execute(
                "SELECT location FROM main.catalog_partitions WHERE table_name = ? AND dt = ?", [table, dt]
            ).fetchone()
            con.execute("DELETE FROM main.catalog_partitions WHERE table_name = ? AND dt = ?", [table, dt])
            if snapshot is not None:
                con.execute("INSERT INTO main.catalog_partitions VALUES (?, ?, ?, ?, ?, ?, ?)", list(snapshot))
            # The history records the rollback too (location NULL: the partition was removed).
            con.execute(
                "INSERT INTO main.catalog_history VALUES (?, ?, ?, ?, ?, ?)",
                [table, dt, snapshot[2] if snapshot else None, snapshot[3] if snapshot else None, row[0] if row else None, now],
            )
            self._refresh_view(con, table)
            con.execute("COMMIT")

    def _refresh_view(self, con, table: str) -> None:
        rows = con.execute(
            "SELECT dt, location FROM main.catalog_partitions WHERE table_name = ? ORDER BY dt", [table]
        ).fetchall()
        if not rows:
            con.execute(f"DROP VIEW IF EXISTS {self.database}.{table}")
            return
        selects = [
            f"SELECT *, '{dt}' AS dt FROM read_parquet('{location}/*.parquet', hive_partitioning = false)"
            for dt, location in rows
        ]
        con.execute(f"CREATE OR REPLACE VIEW {self.database}.{table} AS " + " UNION ALL BY NAME ".join(selects))

    def mark_superseded(self, location: str, tag: dict[str, str] = SUPERSEDED_TAG) -> list[str]:
        """Nothing to tag locally: :meth:`prune_superseded` decides by age and the catalog."""
        return []

    def prune_superseded(self, tables: list[str], retention_days: int, now: datetime | None = None) -> list[str]:
        """Delete version folders of ``tables`` older than ``retention_days``; returns them.

        A version is ``<root>/<table>/dt=<D>/version=<R>/``; its age is that of its newest
        file or folder (a version still being written, or just re-verified, is young). The current
        and the previous version of each published partition are never deleted, whatever
        their age: the previous one is what a one-step rollback needs. Superseded versions
        and staged versions that were never published (a failed gate) both expire.
        """
        cutoff = (now or datetime.now(UTC)).timestamp() - retention_days * 86400
        with self._connect() as con:
            rows = con.execute("SELECT table_name, dt, location, previous_location FROM main.catalog_partitions").fetchall()
        keep = {os.path.realpath(location) for _, _, current, previous in rows for location in (current, previous) if location}
        removed = []
        for table in tables:
            table_dir = Path(self.root_of(table)) / table
            for version in sorted(table_dir.glob(f"{DATE_SEGMENT}*/{VERSION_SEGMENT}*")):
                dt = version.parent.name.removeprefix(DATE_SEGMENT)
                location = lake_io.version_location(self.root_of(table), table, dt, version.name.removeprefix(VERSION_SEGMENT))
                if not version.is_dir() or os.path.realpath(version) in keep:
                    continue
                if _newest_mtime(version) < cutoff:
                    shutil.rmtree(version)
                    removed.append(location)
                    log.info("pruned superseded version %s", location)
        return removed


def _newest_mtime(folder: Path) -> float:
    """Newest modification time of ``folder``, its sub-folders and files (when it was last written)."""
    newest = 0.0
    for parent, _dirs, files in os.walk(folder):
        newest = max(newest, os.stat(parent).st_mtime, *(os.stat(os.path.join(parent, name)).st_mtime for name in files))
    return newest


class GluePublisher(_BasePublisher):
    """Glue Data Catalog partitions, created or repointed through ``GlueCatalogHook``."""

    def __init__(
        self,
        database: str,
        index_uri: str,
        aws_conn_id: str | None,
        region_name: str | None,
        quarantine_uri: str | None = None,
    ) -> None:
        self.database = database
        self.index_uri = index_uri
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.quarantine_uri = quarantine_uri

    @property
    def hook(self):
        from airflow.providers.amazon.aws.hooks.glue_catalog import GlueCatalogHook

        return GlueCatalogHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _get_partition(self, table: str, dt: str) -> dict[str, Any] | None:
        client = self.hook.get_conn()
        try:
            return client.get_partition(DatabaseName=self.database, TableName=table, PartitionValues=[dt])["Partition"]
        except client.exceptions.EntityNotFoundException:
            return None

    def current(self, table: str, dt: str) -> dict[str, Any] | None:
        partition = self._get_partition(table, dt)
        if partition is None:
            return None
        parameters = partition.get("Parameters", {})
        return {
            "location": partition["StorageDescriptor"]["Location"].rstrip("/"),
            "version": parameters.get("version"),
            "previous_location": parameters.get("previous_location") or None,
            "previous_version": parameters.get("previous_version") or None,
            "published_at": parameters.get("published_at"),
        }

    def _s3_objects(self, location: str) -> tuple[Any, str, list[str]] | None:
        """(S3 client, bucket, keys) of a version that the lifecycle rule covers, else None."""
        if not lake_io.is_s3(location) or not location.rstrip("/").startswith(self.index_uri.rstrip("/") + "/"):
            return None  # e.g. quarantine versions: their bucket expires every object by age
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        bucket, prefix = lake_io._split(location.rstrip("/") + "/")
        return hook.get_conn(), bucket, sorted(hook.list_keys(bucket, prefix=prefix) or [])

    def _set_superseded(self, location: str, superseded: bool, tag: dict[str, str] = SUPERSEDED_TAG) -> list[str]:
        """Add (``tag``: ``SUPERSEDED_TAG`` or ``PAN_SCAN_FAILED_TAG``, one lifecycle key) or remove
        the lifecycle tag on every object of a version, keeping other tags.

        Returns the keys whose tags changed (objects already in the wanted state are left alone).
        """
        found = self._s3_objects(location)
        if found is None:
            return []
        client, bucket, keys = found
        changed = []
        for key in keys:
            tags = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
            others = [tag for tag in tags if tag["Key"] != SUPERSEDED_TAG["Key"]]
            wanted = [*others, dict(tag)] if superseded else others
            if {(t["Key"], t["Value"]) for t in tags} != {(t["Key"], t["Value"]) for t in wanted}:
                client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": wanted})
                changed.append(key)
        if changed:
            log.info("%s %d object(s) of %s", "tagged" if superseded else "untagged", len(changed), location)
        return changed

    def snapshot(self, table: str, dt: str) -> dict[str, Any] | None:
        """The Glue partition as it is (None: no partition), for :meth:`restore`."""
        return self._get_partition(table, dt)

    def restore(self, table: str, dt: str, snapshot: dict[str, Any] | None) -> None:
        """Put the partition back exactly as :meth:`snapshot` found it (deleted if there was none),
        moving the superseded tag as a publish would: off the restored version before the switch,
        onto the version left behind after it."""
        current = self._get_partition(table, dt)
        restored_location = snapshot["StorageDescriptor"]["Location"].rstrip("/") if snapshot else None
        left_location = current["StorageDescriptor"]["Location"].rstrip("/") if current else None
        if restored_location and restored_location != left_location:
            self._set_superseded(restored_location, False)
        client = self.hook.get_conn()
        if snapshot is None:
            if current is not None:
                client.delete_partition(DatabaseName=self.database, TableName=table, PartitionValues=[dt])
        else:
            partition_input = {key: snapshot[key] for key in ("Values", "StorageDescriptor", "Parameters") if key in snapshot}
            if current is None:
                client.create_partition(DatabaseName=self.database, TableName=table, PartitionInput=partition_input)
            else:
                client.update_partition(
                    DatabaseName=self.database, TableName=table, PartitionValueList=[dt], PartitionInput=partition_input
                )
        if left_location and left_location != restored_location:
            self._set_superseded(left_location, True)

    def mark_superseded(self, location: str, tag: dict[str, str] = SUPERSEDED_TAG) -> list[str]:
        """Tag a version's objects for expiry (a superseded or rejected version; a version with a
        card number in clear: ``PAN_SCAN_FAILED_TAG``, which expires within days)."""
        return self._set_superseded(location, True, tag)

    def prune_superseded(self, tables: list[str], retention_days: int, now: datetime | None = None) -> list[str]:
        """Nothing to delete from Airflow: S3 expires tagged versions (lifecycle rule)."""
        return []

    def publish(self, table: str, dt: str, location: str) -> Publication:
        require_verified(location, self.aws_conn_id)
        version = version_of(location)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        current = self.current(table, dt)
        if current and current["location"] == location.rstrip("/"):
            # Idempotent, and repairs tags an interrupted earlier publish left half done.
            self._set_superseded(location, False)
            if current["previous_location"]:
                self._set_superseded(current["previous_location"], True)
            return Publication(
                table,
                dt,
                location,
                version,
                current["previous_location"],
                current["previous_version"],
                False,
                current["published_at"],
            )
        # The target must not expire once visible (a rollback target was tagged when it was superseded).
        self._set_superseded(location, False)
        hook = self.hook
        storage = dict(hook.get_table(self.database, table)["StorageDescriptor"])
        storage["Location"] = location.rstrip("/") + "/"
        parameters = {"version": version, "published_at": now}
        if current:
            parameters |= {"previous_location": current["location"], "previous_version": current["version"] or ""}
        partition_input = {"Values": [dt], "StorageDescriptor": storage, "Parameters": parameters}
        if current is None:
            hook.create_partition(self.database, table, partition_input)
        else:
            hook.get_conn().update_partition(
                DatabaseName=self.database, TableName=table, PartitionValueList=[dt], PartitionInput=partition_input
            )
            # Tagged only after the partition stopped pointing at it: a visible version is never tagged.
            self._set_superseded(current["location"], True)
        return Publication(
            table,
            dt,
            location,
            version,
            current["location"] if current else None,
            current["version"] if current else None,
            True,
            now,
        )


def publish_together(publisher: Publisher, dt: str, versions: list[tuple[str, str]]) -> list[Publication]:
    """Publish every ``(table, location)`` of a stage for ``dt``, or none of them.

    Every version is checked (:func:`require_verified`) before any partition moves. When one
    table's publish fails, each table touched so far (the failed one included: it may have got
    half way) is restored to the partition it had before, and :class:`PublishError` names what
    failed; if a restore fails as well, the error says which partitions need a hand (runbook).
    """
    for _, location in versions:
        require_verified(location, publisher.aws_conn_id)
    snapshots = [(table, publisher.snapshot(table, dt)) for table, _ in versions]
    published: list[Publication] = []
    for table, location in versions:
        try:
            published.append(publisher.publish(table, dt, location))
        except Exception as exc:
            touched = snapshots[: len(published) + 1]
            stuck = []
            for restored_table, snapshot in reversed(touched):
                try:
                    publisher.restore(restored_table, dt, snapshot)
                except Exception as restore_exc:  # keep restoring the others
                    log.exception("could not restore %s dt=%s", restored_table, dt)
                    stuck.append(f"{restored_table} ({type(restore_exc).__name__}: {restore_exc})")
            names = ", ".join(name for name, _ in touched)
            if stuck:
                raise PublishError(
                    f"publishing {table} dt={dt} failed ({type(exc).__name__}: {exc}) and restoring the stage's "
                    f"partitions failed for {', '.join(stuck)}: repoint them by hand (docs/runbook.md#rolling-back-a-partition)"
                ) from exc
            raise PublishError(
                f"publishing {table} dt={dt} failed ({type(exc).__name__}: {exc}); nothing of the stage is published: "
                f"{names} restored to their previous partitions"
            ) from exc
    return published


def get_publisher(profile: Profile | None = None) -> Publisher:
    profile = profile or get_profile()
    catalog = profile.catalog
    if catalog.kind == "glue":
        return GluePublisher(
            catalog.database, profile.lake.index_uri, profile.aws_conn_id, profile.region, profile.lake.quarantine_uri
        )
    return EmbeddedPublisher(catalog.embedded_path, catalog.database, profile.lake.index_uri, profile.lake.quarantine_uri)


def publication_json(publication: Publication) -> str:
    return json.dumps(asdict(publication), sort_keys=True)
