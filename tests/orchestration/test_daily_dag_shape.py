"""Shape of ``payments_daily_index`` that publishing and the run's state depend on (no Spark)."""

from __future__ import annotations

import pytest

from payments_platform.pipeline import STAGE_TABLES


@pytest.fixture(scope="module")
def dag():
    from devtools.local_runner import load_dag

    return load_dag("payments_daily_index")


@pytest.mark.parametrize("stage", ["batch", "aggregate"])
def test_a_stage_publishes_its_tables_in_one_task_after_every_gate(dag, stage):
    """One task publishes the stage's tables (publishing.publish_together: all or nothing), and it
    runs only when every gate of the stage passed; no table of the stage is published alone."""
    publish = dag.get_task(f"publish_{stage}_stage")
    assert publish.upstream_task_ids == {f"verify_{table}" for table in STAGE_TABLES[stage]}
    assert publish.op_kwargs["stage"] == stage
    task_ids = {task.task_id for task in dag.tasks}
    assert not {f"publish_{table}" for table in STAGE_TABLES[stage]} & task_ids


def test_the_tasks_use_the_pools_the_deploy_creates(dag):
    """Spark jobs in ``spark_jobs``, gates in ``quality_gate``; both pools exist in each profile (the
    deploy creates the aws ones on MWAA) and in airflow_settings.yaml (setup.sh, locally)."""
    import yaml

    from payments_platform.profiles import PROJECT_ROOT, load_profile

    pools = {task.task_id: task.pool for task in dag.tasks}
    for task_id in ("build_batch_index", "build_aggregate_index", "build_business_index", "compact_stream_index"):
        assert pools[task_id] == "spark_jobs", task_id
    for task_id in ("verify_batch_index", "verify_quarantine", "verify_aggregate_index", "verify_audit_trail"):
        assert pools[task_id] == "quality_gate", task_id
    assert pools["verify_business_index"] == "quality_gate"
    used = set(pools.values()) - {"default_pool"}
    assert used == {"spark_jobs", "quality_gate"}
    assert used == set(load_profile("local").orchestration.pools)
    aws = yaml.safe_load((PROJECT_ROOT / "include" / "profiles" / "aws.yaml").read_text())
    assert used == set(aws["orchestration"]["pools"])
    settings = yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["pools"]
    assert {pool["pool_name"]: pool["pool_slot"] for pool in settings} == {
        name: pool.slots for name, pool in load_profile("local").orchestration.pools.items()
    }


def test_summary_and_retention_always_run_but_do_not_decide_the_run_state(dag):
    summary, prune = dag.get_task("summarize_daily_run"), dag.get_task("prune_superseded_versions")
    assert summary.is_teardown and prune.is_teardown
    assert not summary.on_failure_fail_dagrun and not prune.on_failure_fail_dagrun
    assert summary.upstream_task_ids == {"compact_stream_index"}
    assert prune.upstream_task_ids == {"summarize_daily_run"}
    leaves = [task.task_id for task in dag.tasks if not task.downstream_list]
    assert leaves == ["prune_superseded_versions"]
