"""``payments_daily_index`` end to end under the local profile, through ``dag.test()``.

Real DAG, real Spark jobs (spark-submit), real Soda gate on DuckDB, embedded catalog.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from payments_platform.pipeline import BUSINESS_INDEXES

pytestmark = pytest.mark.slow

DAY = "2026-11-20"
EVERY_TABLE = {"batch_index", "quarantine", "aggregate_index", "audit_trail", *BUSINESS_INDEXES}


@pytest.fixture(scope="module")
def local_lake(tmp_path_factory):
    """A private local lake for this module, with one generated day of raw drops."""
    root = tmp_path_factory.mktemp("local")
    mp = pytest.MonkeyPatch()
    mp.setenv("PAYMENTS_PROFILE", "local")
    mp.setenv("PAYMENTS_LOCAL_DIR", str(root))
    from payments_platform.profiles import load_profile

    load_profile.cache_clear()
    profile = load_profile("local")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "spark_apps.generator",
            "generate",
            "--date",
            DAY,
            "--transactions",
            "1500",
            "--raw-uri",
            profile.lake.raw_uri,
        ],
        check=True,
        capture_output=True,
    )
    from payments_platform.sensors import ready_marker_uri

    marker = Path(ready_marker_uri(profile.lake.raw_uri, DAY))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"dt": DAY}))
    yield profile
    mp.undo()
    load_profile.cache_clear()


def run_daily(conf: dict | None = None):
    from payments_platform.local_runner import run_dag_locally

    return run_dag_locally("payments_daily_index", DAY, conf)


def catalog(profile) -> dict[str, str]:
    with duckdb.connect(profile.catalog.embedded_path, read_only=True) as con:
        return dict(con.execute("SELECT table_name, location FROM main.catalog_partitions WHERE dt = ?", [DAY]).fetchall())


def test_daily_run_publishes_every_index_then_a_rerun_repoints_each_once(local_lake):
    first = run_daily()
    assert first.state == "success"
    published = catalog(local_lake)
    assert set(published) == EVERY_TABLE
    for table, location in published.items():
        assert json.loads((Path(location) / "_quality.json").read_text())["passed"], table
        assert f"/{table}/dt={DAY}/run=" in location

    # The rerun rebuilds from the aggregate stage on (cheaper; the batch stage is covered above).
    second = run_daily({"from_stage": "aggregate"})
    assert second.state == "success"
    republished = catalog(local_lake)
    assert set(republished) == EVERY_TABLE, "still one partition per index"
    for table in EVERY_TABLE:
        rebuilt = table not in ("batch_index", "quarantine")
        assert (republished[table] != published[table]) == rebuilt, f"{table}: repointed only when rebuilt"
        assert (Path(republished[table]) / "_manifest.json").is_file(), f"{table}: complete version"
    with duckdb.connect(local_lake.catalog.embedded_path, read_only=True) as con:
        view_rows = con.execute("SELECT count(*) FROM payments.batch_index").fetchone()[0]
        version_rows = con.execute(f"SELECT count(*) FROM read_parquet('{republished['batch_index']}/*.parquet')").fetchone()[0]
    assert view_rows == version_rows > 0, "the catalog view reads exactly the published version, not both"
