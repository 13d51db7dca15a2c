"""The embedded catalog: publish only verified versions, repoint idempotently, roll back."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from payments_platform import lake_io
from payments_platform.publishing import EmbeddedPublisher, PublishError


def stage(index_uri, version: str, ids: list[str], passed: bool | None = True) -> str:
    location = lake_io.version_location(str(index_uri), "batch_index", "2026-11-21", version)
    lake_io.write_text(f"{location}/placeholder", "")
    pq.write_table(pa.table({"transaction_id": ids}), f"{location}/part-0.parquet")
    if passed is not None:
        checks = [] if passed else [{"name": "duplicate transaction_id", "diagnostic": "2 duplicates"}]
        lake_io.write_json(f"{location}/_quality.json", {"passed": passed, "checks_failed": checks})
    return location


@pytest.fixture
def publisher(tmp_path):
    return EmbeddedPublisher(str(tmp_path / "catalog.duckdb"), "payments", str(tmp_path / "indexes"))


def view_rows(publisher) -> list[tuple]:
    with duckdb.connect(publisher.path, read_only=True) as con:
        return con.execute("SELECT dt, transaction_id FROM payments.batch_index ORDER BY transaction_id").fetchall()


def test_publish_repoint_and_rollback(publisher, tmp_path):
    first = stage(tmp_path / "indexes", "v1", ["t1", "t2"])
    second = stage(tmp_path / "indexes", "v2", ["t1", "t2", "t3"])

    assert publisher.publish("batch_index", "2026-11-21", first).changed
    assert view_rows(publisher) == [("2026-11-21", "t1"), ("2026-11-21", "t2")]
    again = publisher.publish("batch_index", "2026-11-21", first)
    assert again.changed is False

    repointed = publisher.publish("batch_index", "2026-11-21", second)
    assert (repointed.previous_location, repointed.previous_version) == (first, "v1")
    assert [r[1] for r in view_rows(publisher)] == ["t1", "t2", "t3"], "one partition, the new version only"

    rolled_back = publisher.rollback("batch_index", "2026-11-21")
    assert rolled_back.location == first
    assert [r[1] for r in view_rows(publisher)] == ["t1", "t2"]
    assert publisher.rollback("batch_index", "2026-11-21", version="v2").location == second
    assert len(publisher.partitions("batch_index")) == 1


@pytest.mark.parametrize(
    ("passed", "message"),
    [(False, r"its quality gate failed \(duplicate transaction_id\)"), (None, "has not been verified by the quality gate")],
)
def test_unverified_or_failed_versions_are_never_published(publisher, tmp_path, passed, message):
    good = stage(tmp_path / "indexes", "v1", ["t1"])
    publisher.publish("batch_index", "2026-11-21", good)
    bad = stage(tmp_path / "indexes", "v2", ["t1", "t1"], passed=passed)
    with pytest.raises(PublishError, match=message):
        publisher.publish("batch_index", "2026-11-21", bad)
    assert publisher.current("batch_index", "2026-11-21")["location"] == good
    assert [r[1] for r in view_rows(publisher)] == ["t1"]


def test_empty_or_unversioned_locations_are_refused(publisher, tmp_path):
    empty = lake_io.version_location(str(tmp_path / "indexes"), "batch_index", "2026-11-21", "v9")
    lake_io.write_json(f"{empty}/_quality.json", {"passed": True})
    with pytest.raises(PublishError, match="no Parquet files there"):
        publisher.publish("batch_index", "2026-11-21", empty)
    with pytest.raises(PublishError, match="nothing to roll back"):
        publisher.rollback("batch_index", "2026-11-20")


def test_rollback_without_history_is_refused(publisher, tmp_path):
    publisher.publish("batch_index", "2026-11-21", stage(tmp_path / "indexes", "v1", ["t1"]))
    with pytest.raises(PublishError, match="no previous version"):
        publisher.rollback("batch_index", "2026-11-21")
    assert json.loads(json.dumps(publisher.current("batch_index", "2026-11-21")))["version"] == "v1"


# --- retention: superseded versions are pruned locally -------------------------------

DAY = 86400
NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15); version ages are set relative to it


def make_old(location: str, days: float) -> None:
    """Set every file and folder of a version to ``days`` before NOW."""
    for path in [Path(location), *Path(location).rglob("*")]:
        os.utime(path, (NOW - days * DAY, NOW - days * DAY))


def staged_version(root: Path, table: str, dt: str, version: str, days_old: float, passed: bool = True) -> str:
    location = lake_io.version_location(str(root), table, dt, version)
    Path(location).mkdir(parents=True)
    pq.write_table(pa.table({"transaction_id": [version]}), f"{location}/part-0.parquet")
    lake_io.write_json(f"{location}/_quality.json", {"passed": passed, "checks_failed": []})
    make_old(location, days_old)
    return location


@pytest.fixture
def lake(tmp_path):
    publisher = EmbeddedPublisher(
        str(tmp_path / "catalog.duckdb"), "payments", str(tmp_path / "indexes"), quarantine_uri=str(tmp_path / "quarantine")
    )
    return publisher, tmp_path / "indexes", tmp_path / "quarantine"


def test_prune_removes_only_old_versions_that_are_neither_current_nor_previous(lake):
    publisher, indexes, quarantine = lake
    dt = "2026-11-21"
    v1, v2, v3 = (staged_version(indexes, "batch_index", dt, f"v{i}", days_old=40) for i in (1, 2, 3))
    for version in (v1, v2, v3):
        publisher.publish("batch_index", dt, version)  # current v3, previous v2, v1 superseded twice over
    make_old(v3, 40)  # publishing does not touch the files, but be explicit: every one is old
    rejected = staged_version(indexes, "batch_index", dt, "v4", days_old=31, passed=False)  # failed gate, never published
    young = staged_version(indexes, "batch_index", dt, "v5", days_old=29)  # superseded-to-be, still within retention
    old_day = staged_version(indexes, "batch_index", "2026-09-01", "only", days_old=400)
    publisher.publish("batch_index", "2026-09-01", old_day)  # the published version of an old day never expires
    q1, q2 = (staged_version(quarantine, "quarantine", dt, f"q{i}", days_old=40) for i in (1, 2))
    q0 = staged_version(quarantine, "quarantine", "2026-10-01", "q0", days_old=60)
    publisher.publish("quarantine", "2026-10-01", q0)
    q_new = staged_version(quarantine, "quarantine", "2026-10-01", "q_new", days_old=0)
    publisher.publish("quarantine", "2026-10-01", q_new)  # q0 is now the previous version: kept
    publisher.publish("quarantine", dt, q1)
    publisher.publish("quarantine", dt, q2)
    q3 = staged_version(quarantine, "quarantine", dt, "q3", days_old=45)
    stream_hour = indexes / "stream_index" / f"dt={dt}" / "hour=00"  # not a versioned table: never touched
    stream_hour.mkdir(parents=True)
    pq.write_table(pa.table({"transaction_id": ["s"]}), stream_hour / "part-0.parquet")
    make_old(str(stream_hour.parent), 400)

    removed = publisher.prune_superseded(
        ["batch_index", "quarantine", "aggregate_index"], retention_days=30, now=datetime.fromtimestamp(NOW, UTC)
    )

    assert sorted(removed) == sorted([v1, rejected, q3])
    for gone in (v1, rejected, q3):
        assert not Path(gone).exists()
    for kept in (v2, v3, young, old_day, q0, q1, q2, q_new):
        assert (Path(kept) / "part-0.parquet").is_file(), kept
    assert (stream_hour / "part-0.parquet").is_file()
    assert publisher.prune_superseded(["batch_index", "quarantine"], 30, now=datetime.fromtimestamp(NOW, UTC)) == []

    # One-step rollback still works (the previous version is kept) ...
    assert publisher.rollback("batch_index", dt).location == v2
    assert [r[1] for r in view_rows(publisher) if r[0] == dt] == ["v2"]
    # ... and a rollback to a pruned version is refused without touching the partition.
    with pytest.raises(PublishError, match="no Parquet files there"):
        publisher.rollback("batch_index", dt, version="v1")
    assert publisher.current("batch_index", dt)["location"] == v2


def test_a_rollback_keeps_the_version_it_left_as_previous(lake):
    publisher, indexes, _ = lake
    dt = "2026-11-21"
    v1, v2, v3 = (staged_version(indexes, "batch_index", dt, f"v{i}", days_old=90) for i in (1, 2, 3))
    for version in (v1, v2, v3):
        publisher.publish("batch_index", dt, version)
    publisher.rollback("batch_index", dt, version="v1")  # current v1, previous v3
    removed = publisher.prune_superseded(["batch_index"], retention_days=30, now=datetime.fromtimestamp(NOW, UTC))
    assert removed == [v2]
    assert publisher.rollback("batch_index", dt).location == v3, "the version the rollback left is still there"


def test_rollback_to_a_named_quarantine_version_looks_in_the_quarantine_root(lake):
    publisher, _, quarantine = lake
    dt = "2026-11-21"
    q1, q2 = (staged_version(quarantine, "quarantine", dt, f"q{i}", days_old=1) for i in (1, 2))
    publisher.publish("quarantine", dt, q1)
    publisher.publish("quarantine", dt, q2)
    assert publisher.rollback("quarantine", dt, version="q1").location == q1


# --- a stage's tables: all or nothing -------------------------------------------------------------

STAGE_DAY = "2026-11-21"


def stage_table(root: Path, table: str, version: str, ids: list[str], readable: bool = True) -> str:
    """A verified version of ``table``; ``readable=False`` leaves a damaged Parquet file (the catalog
    view over it cannot be created: the publish fails after the gate passed)."""
    location = lake_io.version_location(str(root), table, STAGE_DAY, version)
    Path(location).mkdir(parents=True)
    if readable:
        pq.write_table(pa.table({"transaction_id": ids}), f"{location}/part-0.parquet")
    else:
        Path(location, "part-0.parquet").write_bytes(b"PAR1 truncated upload PAR1")
    lake_io.write_json(f"{location}/_quality.json", {"passed": True, "checks_failed": []})
    return location


def catalog_state(publisher) -> dict[str, object]:
    """Everything a reader sees: each partition's full catalog row and each view's rows."""
    state: dict[str, object] = {table: publisher.snapshot(table, STAGE_DAY) for table in ("batch_index", "quarantine")}
    with duckdb.connect(publisher.path, read_only=True) as con:
        views = {row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = 'payments'").fetchall()}
        for table in sorted(views):
            state[f"view:{table}"] = con.execute(f"SELECT * FROM payments.{table} ORDER BY ALL").fetchall()
    return state


@pytest.fixture
def stage_publisher(tmp_path):
    return EmbeddedPublisher(
        str(tmp_path / "catalog.duckdb"), "payments", str(tmp_path / "indexes"), str(tmp_path / "quarantine")
    )


def test_when_the_second_table_fails_the_first_is_rolled_back_and_both_partitions_are_unchanged(stage_publisher, tmp_path):
    from payments_platform.publishing import publish_together

    indexes, quarantine = tmp_path / "indexes", tmp_path / "quarantine"
    yesterday_run = [
        ("batch_index", stage_table(indexes, "batch_index", "v1", ["t1", "t2"])),
        ("quarantine", stage_table(quarantine, "quarantine", "v1", ["q1"])),
    ]
    assert [p.changed for p in publish_together(stage_publisher, STAGE_DAY, yesterday_run)] == [True, True]
    before = catalog_state(stage_publisher)
    assert before["batch_index"][2].endswith("version=v1") and before["view:batch_index"] == [
        ("t1", STAGE_DAY),
        ("t2", STAGE_DAY),
    ]

    rerun = [
        ("batch_index", stage_table(indexes, "batch_index", "v2", ["t1", "t2", "t3"])),
        ("quarantine", stage_table(quarantine, "quarantine", "v2", [], readable=False)),
    ]
    with pytest.raises(
        PublishError, match=r"(?s)publishing quarantine dt=2026-11-21 failed .*batch_index, quarantine restored to their previous"
    ):
        publish_together(stage_publisher, STAGE_DAY, rerun)

    assert catalog_state(stage_publisher) == before, "both partitions (and what readers see) as before the rerun"
    assert stage_publisher.current("batch_index", STAGE_DAY)["previous_location"] is None, "not even the previous pointer moved"


def test_a_first_publication_that_fails_half_way_leaves_no_partition(stage_publisher, tmp_path):
    from payments_platform.publishing import publish_together

    versions = [
        ("batch_index", stage_table(tmp_path / "indexes", "batch_index", "v1", ["t1"])),
        ("quarantine", stage_table(tmp_path / "quarantine", "quarantine", "v1", [], readable=False)),
    ]
    with pytest.raises(PublishError, match="nothing of the stage is published"):
        publish_together(stage_publisher, STAGE_DAY, versions)
    assert stage_publisher.current("batch_index", STAGE_DAY) is None and stage_publisher.current("quarantine", STAGE_DAY) is None
    assert "view:batch_index" not in catalog_state(stage_publisher), "no view over a table with no partition"


def test_an_unverified_version_stops_the_stage_before_anything_moves(stage_publisher, tmp_path):
    from payments_platform.publishing import publish_together

    batch = stage_table(tmp_path / "indexes", "batch_index", "v1", ["t1"])
    unverified = stage_table(tmp_path / "quarantine", "quarantine", "v1", ["q1"])
    Path(unverified, "_quality.json").unlink()
    with pytest.raises(PublishError, match="has not been verified"):
        publish_together(stage_publisher, STAGE_DAY, [("batch_index", batch), ("quarantine", unverified)])
    assert stage_publisher.current("batch_index", STAGE_DAY) is None
