"""The embedded catalog: publish only verified versions, repoint idempotently, roll back."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from payments_platform import lake_io
from payments_platform.publishing import EmbeddedPublisher, PublishError


def stage(index_uri, run_id: str, ids: list[str], passed: bool | None = True) -> str:
    location = lake_io.version_location(str(index_uri), "batch_index", "2026-11-21", run_id)
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
    assert (repointed.previous_location, repointed.previous_run_id) == (first, "v1")
    assert [r[1] for r in view_rows(publisher)] == ["t1", "t2", "t3"], "one partition, the new version only"

    rolled_back = publisher.rollback("batch_index", "2026-11-21")
    assert rolled_back.location == first
    assert [r[1] for r in view_rows(publisher)] == ["t1", "t2"]
    assert publisher.rollback("batch_index", "2026-11-21", run_id="v2").location == second
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
    assert json.loads(json.dumps(publisher.current("batch_index", "2026-11-21")))["run_id"] == "v1"
