"""``payments_daily_index`` end to end under the local profile, through ``dag.test()``.

Real DAG, real Spark jobs (spark-submit), real Soda gate on DuckDB, embedded catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.e2e import daily_run
from tests.e2e.daily_run import EVERY_TABLE

pytestmark = pytest.mark.slow

DAY = "2026-11-20"


@pytest.fixture(scope="module")
def local_lake_day(tmp_path_factory):
    """A private local lake for this module, with one generated day of raw drops."""
    with daily_run.local_lake(tmp_path_factory.mktemp("local"), DAY, transactions=1500) as profile:
        yield profile


def run_daily(conf: dict | None = None):
    return daily_run.run_daily(DAY, conf)


def catalog(profile) -> dict[str, str]:
    return daily_run.catalog(profile, DAY)


def asset_events(dag_run) -> dict[str, list[str]]:
    """Asset name -> the ``dt`` of each event the run's publish tasks added."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
        ).all()
    events: dict[str, list[str]] = {}
    for name, extra in rows:
        events.setdefault(name, []).append(extra["dt"])
    return events


def test_daily_run_publishes_every_index_then_a_rerun_repoints_each_once(local_lake_day):
    first = run_daily()
    assert first.state == "success"
    assert asset_events(first) == {f"payments.{table}": [DAY] for table in EVERY_TABLE}, "one event per published table"
    published = catalog(local_lake_day)
    assert set(published) == EVERY_TABLE
    for table, location in published.items():
        assert json.loads((Path(location) / "_quality.json").read_text())["passed"], table
        assert f"/{table}/dt={DAY}/version=" in location

    # The rerun rebuilds from the aggregate stage on (cheaper; the batch stage is covered above).
    second = run_daily({"from_stage": "aggregate"})
    assert second.state == "success"
    states = daily_run.task_states(second)
    assert states["batch.should_run"] == states["batch.wait_for_raw_drops"] == "skipped"
    assert states["batch.build"] == states["batch.publish"] == "skipped"
    republished = catalog(local_lake_day)
    assert set(republished) == EVERY_TABLE, "still one partition per index"
    for table in EVERY_TABLE:
        rebuilt = table not in ("batch_index", "quarantine")
        assert (republished[table] != published[table]) == rebuilt, f"{table}: repointed only when rebuilt"
        assert (Path(republished[table]) / "_manifest.json").is_file(), f"{table}: complete version"
    with duckdb.connect(local_lake_day.catalog.embedded_path, read_only=True) as con:
        view_rows = con.execute("SELECT count(*) FROM payments.batch_index").fetchone()[0]
        version_rows = con.execute(f"SELECT count(*) FROM read_parquet('{republished['batch_index']}/*.parquet')").fetchone()[0]
    assert view_rows == version_rows > 0, "the catalog view reads exactly the published version, not both"
