"""Shape of ``payments_daily_index`` that publishing and the run's state depend on (no Spark)."""

from __future__ import annotations

import pytest

from payments_platform.pipeline import STAGE_TABLES


@pytest.fixture(scope="module")
def dag():
    from payments_platform.local_runner import load_dag

    return load_dag("payments_daily_index")


@pytest.mark.parametrize("stage", ["batch", "aggregate"])
def test_a_stage_publishes_its_tables_together_or_not_at_all(dag, stage):
    verifies = {f"verify_{table}" for table in STAGE_TABLES[stage]}
    for table in STAGE_TABLES[stage]:
        upstream = dag.get_task(f"publish_{table}").upstream_task_ids
        assert verifies <= upstream, f"publish_{table} must wait for every gate of the {stage} stage"


def test_summary_and_retention_always_run_but_do_not_decide_the_run_state(dag):
    summary, prune = dag.get_task("summarize_daily_run"), dag.get_task("prune_superseded_versions")
    assert summary.is_teardown and prune.is_teardown
    assert not summary.on_failure_fail_dagrun and not prune.on_failure_fail_dagrun
    assert summary.upstream_task_ids == {"compact_stream_index"}
    assert prune.upstream_task_ids == {"summarize_daily_run"}
    leaves = [task.task_id for task in dag.tasks if not task.downstream_list]
    assert leaves == ["prune_superseded_versions"]
