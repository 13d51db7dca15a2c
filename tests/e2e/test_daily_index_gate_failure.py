"""A broken upstream drop makes the first quality gate fail: nothing is published for the day.

The breakage is one a real upstream produces and the batch job cannot catch: the
merchant master data export starts writing its risk tiers in lower case (``low``,
``medium``, ``high``). The side source still parses (the column is a string), so the
batch job enriches every transaction with it and writes its version; the batch-index
contract (``merchant_risk_level is a known risk level``) rejects it. The quarantine
version of the same run passes its own contract and must still not be published: a
stage publishes its tables together or not at all.

Real DAG through ``dag.test()`` (local profile, spark-submit, Soda on DuckDB); the run
stops at the first gate, so it costs one batch-index job on a small generated day.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from payments_platform import lake_io
from tests.e2e import daily_run
from tests.e2e.daily_run import EVERY_TABLE

pytestmark = pytest.mark.slow

DAY = "2026-11-18"
FAILED_CHECK = "merchant_risk_level is a known risk level"


def lower_case_risk_tiers(profile) -> None:
    """Upstream changes its export: merchant risk tiers arrive as ``low``/``medium``/``high``."""
    [path] = Path(profile.lake.raw_uri, "merchants", f"dt={DAY}").glob("*.parquet")
    merchants = pq.read_table(path)
    index = merchants.schema.get_field_index("risk_level")
    pq.write_table(merchants.set_column(index, "risk_level", pc.utf8_lower(merchants.column("risk_level"))), path)


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    """(profile, dag_run) of one daily run on the broken day."""
    with daily_run.local_lake(tmp_path_factory.mktemp("broken"), DAY, breakage=lower_case_risk_tiers) as profile:
        yield profile, daily_run.run_daily(DAY)


def staged(profile, table: str) -> Path:
    """The one version this run staged for ``table``."""
    root = profile.lake.quarantine_uri if table == "quarantine" else profile.lake.index_uri
    [version] = Path(root, table, f"dt={DAY}").glob("version=*")
    return version


def test_the_batch_gate_fails_and_the_run_stops_there(broken_run):
    _, dag_run = broken_run
    states = daily_run.task_states(dag_run)
    assert dag_run.state == "failed", "a run whose gate failed is not a success"
    assert states["batch.build"] == "success", "the job itself wrote its version"
    assert states["batch.verify_batch_index"] == "success", "the contract ran and gave its verdict"
    assert states["batch.check_batch_index"] == "failed", "the verdict: failed"
    assert states["batch.check_quarantine"] == "success"
    assert states["batch.publish"] == "upstream_failed", "one task publishes both tables, after both gates"
    assert states["aggregate.resolve_inputs"] == states["aggregate.build"] == "upstream_failed"
    assert "business.build" not in states or states["business.build"] == "upstream_failed"
    assert states["summarize_daily_run"] == "success", "the summary still runs"


def test_nothing_is_published_for_the_day(broken_run):
    profile, _ = broken_run
    assert daily_run.catalog(profile, DAY) == {}, "no partition for any table"
    from payments_platform.publishing import get_publisher

    publisher = get_publisher(profile)
    assert all(publisher.current(table, DAY) is None for table in EVERY_TABLE)


def test_the_rejected_version_stays_staged_with_its_failed_checks(broken_run):
    profile, _ = broken_run
    version = staged(profile, "batch_index")
    assert any(version.glob("*.parquet")), "the version is left in place"
    assert (version / "_manifest.json").is_file()
    result = json.loads((version / "_quality.json").read_text())
    assert result["passed"] is False
    assert [check["name"] for check in result["checks_failed"]] == [FAILED_CHECK]
    # The quarantine version of the same run passed its contract but was withheld.
    assert json.loads((staged(profile, "quarantine") / "_quality.json").read_text())["passed"] is True
    summaries = list(Path(profile.lake.metrics_uri, "daily", f"dt={DAY}").glob("summary-*.json"))
    [summary] = [json.loads(path.read_text()) for path in summaries]
    assert summary["tables"]["batch_index"] | {"manifest": None} == {
        "location": lake_io.version_location(profile.lake.index_uri, "batch_index", DAY, version.name.removeprefix("version=")),
        "manifest": None,
        "quality": False,
        "published": False,
    }


def test_on_call_is_paged_with_the_failed_checks(broken_run):
    profile, _ = broken_run
    pages = [json.loads(line) for line in Path(profile.notifier.log_path).read_text().splitlines()]
    [gate_page] = [page for page in pages if page["subject"] == f"quality gate failed: batch_index dt={DAY}"]
    assert gate_page["details"]["failed_checks"] == [FAILED_CHECK]
    assert gate_page["details"]["location"] == str(staged(profile, "batch_index"))
    assert f"  - {FAILED_CHECK}" in gate_page["body"]
    assert "was NOT published" in gate_page["body"]


def test_the_failed_run_pages_through_the_dags_failure_callback(broken_run):
    """The DAG's on_failure_callback (the local profile's log-file notifier) runs under dag.test()
    too, where Airflow hands it the serialized DAG, and names the task that failed the run."""
    profile, dag_run = broken_run
    pages = [json.loads(line) for line in Path(profile.notifier.log_path).read_text().splitlines()]
    [run_page] = [page for page in pages if page["subject"].endswith(f"failed ({dag_run.run_id})")]
    assert run_page["subject"] == f"payments_daily_index.batch.check_batch_index failed ({dag_run.run_id})"
    assert run_page["details"]["task_id"] == "batch.check_batch_index"
    assert run_page["details"]["error"] == "task_failure", "the reason Airflow gives a DAG failure callback"
