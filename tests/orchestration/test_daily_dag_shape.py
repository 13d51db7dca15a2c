"""Shape of ``payments_daily_index`` that publishing and the run's state depend on (no Spark)."""

from __future__ import annotations

import ast

import pytest

from payments_platform.pipeline import STAGE_TABLES
from tests.dags.test_dag_policy import DAGS_DIR

GROUP_STAGES = ("batch", "aggregate")


@pytest.fixture(scope="module")
def dag():
    from devtools.local_runner import load_dag

    return load_dag("payments_daily_index")


@pytest.fixture
def aws_dag(aws_profile_env, monkeypatch):
    from devtools.local_runner import load_dag
    from payments_platform.profiles import load_profile

    monkeypatch.setenv("PAYMENTS_PROFILE", "aws")
    load_profile.cache_clear()
    yield load_dag("payments_daily_index")
    load_profile.cache_clear()


def test_each_stage_is_a_task_group_of_build_verify_check_publish(dag):
    assert set(dag.task_group.children) == {
        "plan_run",
        "batch",
        "aggregate",
        "business",
        "compact_stream_index",
        "summarize_daily_run",
        "prune_superseded_versions",
    }
    for stage in GROUP_STAGES:
        ids = set(dag.task_group.children[stage].children)
        checks = {f"{stage}.check_{table}" for table in STAGE_TABLES[stage]}
        verifies = {f"{stage}.verify_{table}" for table in STAGE_TABLES[stage]}
        assert {f"{stage}.should_run", f"{stage}.build", f"{stage}.publish"} | checks | verifies <= ids
        for table in STAGE_TABLES[stage]:
            assert dag.get_task(f"{stage}.verify_{table}").upstream_task_ids >= {f"{stage}.build", "plan_run"}
            assert dag.get_task(f"{stage}.check_{table}").upstream_task_ids == {f"{stage}.verify_{table}"}
    business = set(dag.task_group.children["business"].children)
    assert business == {
        f"business.{name}" for name in ("resolve_inputs", "plan_business_indexes", "build", "verify", "check", "publish")
    }
    assert dag.get_task("batch.wait_for_raw_drops").upstream_task_ids == {"batch.should_run", "plan_run"}
    assert dag.get_task("batch.build").upstream_task_ids == {"batch.wait_for_raw_drops", "plan_run"}
    assert dag.get_task("aggregate.build").upstream_task_ids == {"aggregate.should_run", "aggregate.resolve_inputs", "plan_run"}
    # A later stage starts even when the earlier one was skipped (from_stage), never after a failure.
    for stage in ("aggregate", "business"):
        assert dag.get_task(f"{stage}.resolve_inputs").trigger_rule == "none_failed"


@pytest.mark.parametrize("stage", GROUP_STAGES)
def test_a_stage_publishes_its_tables_in_one_task_after_every_gate(dag, stage):
    """One task publishes the stage's tables (publishing.publish_together: all or nothing), and it
    runs only when every gate of the stage passed; no table of the stage is published alone."""
    publish = dag.get_task(f"{stage}.publish")
    assert publish.upstream_task_ids == {f"{stage}.check_{table}" for table in STAGE_TABLES[stage]} | {"plan_run"}
    assert publish.op_args[0] == stage
    task_ids = {task.task_id for task in dag.tasks}
    assert not {f"{stage}.publish_{table}" for table in STAGE_TABLES[stage]} & task_ids


def test_every_published_table_is_an_asset_outlet_of_its_publish_task(dag):
    from airflow.sdk import Asset, AssetAlias

    from payments_platform.stages import BUSINESS_INDEXES_ALIAS, table_asset

    for stage in GROUP_STAGES:
        outlets = dag.get_task(f"{stage}.publish").outlets
        assert outlets == [table_asset(table) for table in STAGE_TABLES[stage]]
    assert table_asset("batch_index") == Asset(
        name="payments.batch_index", uri="x-payments://catalog/payments/batch_index", group="payments_index"
    )
    assert table_asset("quarantine").name == "payments.quarantine"
    # The mapped business publish: each instance publishes one index and names its Asset through the alias.
    business = dag.get_task("business.publish")
    assert business.partial_kwargs["outlets"] == [BUSINESS_INDEXES_ALIAS]
    assert isinstance(BUSINESS_INDEXES_ALIAS, AssetAlias)


def test_the_business_publish_adds_an_event_for_the_index_it_published(monkeypatch):
    """The task body: one ``outlet_events[alias].add(<the index's Asset>)`` with the day and version."""
    from payments_platform import stages
    from payments_platform.publishing import Publication
    from payments_platform.stages import BUSINESS_INDEXES_ALIAS, table_asset

    added = []

    class Events(dict):
        def __missing__(self, key):
            self[key] = type("Accessor", (), {"add": lambda _, asset, extra: added.append((key, asset, extra))})()
            return self[key]

    publication = Publication(
        "reconciliation_index", "2026-11-20", "/lake/version=v2", "v2", "/lake/version=v1", "v1", True, "2026-11-21T01:00:00Z"
    )
    monkeypatch.setattr(stages, "get_publisher", lambda: type("P", (), {"publish": lambda *_: publication})())
    monkeypatch.setattr(stages, "get_current_context", lambda: {"outlet_events": Events()})
    plan = {"dt": "2026-11-20", "version": "v2"}
    result = stages.publish_business_index.function({"table": "reconciliation_index", "location": "/lake/version=v2"}, plan)
    assert result["location"] == "/lake/version=v2"
    assert added == [
        (
            BUSINESS_INDEXES_ALIAS,
            table_asset("reconciliation_index"),
            {"dt": "2026-11-20", "version": "v2", "location": "/lake/version=v2"},
        )
    ]


def test_the_tasks_use_the_pools_the_deploy_creates(dag):
    """Spark jobs in ``spark_jobs``, gates in ``quality_gate``; both pools exist in each profile (the
    deploy creates the aws ones on MWAA) and in airflow_settings.yaml (setup.sh, locally)."""
    import yaml

    from payments_platform.profiles import PROJECT_ROOT, load_profile

    pools = {task.task_id: task.pool for task in dag.tasks}
    for task_id in ("batch.build", "aggregate.build", "business.build", "compact_stream_index"):
        assert pools[task_id] == "spark_jobs", task_id
    for task_id in ("batch.verify_batch_index", "batch.verify_quarantine", "aggregate.verify_aggregate_index"):
        assert pools[task_id] == "quality_gate", task_id
    assert pools["aggregate.verify_audit_trail"] == pools["business.verify"] == "quality_gate"
    used = set(pools.values()) - {"default_pool"}
    assert used == {"spark_jobs", "quality_gate"}
    assert used == set(load_profile("local").orchestration.pools)
    aws = yaml.safe_load((PROJECT_ROOT / "include" / "profiles" / "aws.yaml").read_text())
    assert used == set(aws["orchestration"]["pools"])
    settings = yaml.safe_load((PROJECT_ROOT / "airflow_settings.yaml").read_text())["airflow"]["pools"]
    assert {pool["pool_name"]: pool["pool_slot"] for pool in settings} == {
        name: pool.slots for name, pool in load_profile("local").orchestration.pools.items()
    }


def test_on_aws_each_gate_is_a_deferrable_emr_job_in_the_quality_gate_pool(aws_dag):
    from payments_platform.quality_gate import QualityGateEmrOperator

    for task_id in ("batch.verify_batch_index", "batch.verify_quarantine", "aggregate.verify_audit_trail"):
        verify = aws_dag.get_task(task_id)
        assert isinstance(verify, QualityGateEmrOperator) and verify.deferrable, task_id
        assert verify.pool == "quality_gate"
    mapped = aws_dag.get_task("business.verify")
    assert mapped.operator_class is QualityGateEmrOperator or mapped.operator_class.__name__ == "QualityGateEmrOperator"
    assert mapped.partial_kwargs["pool"] == "quality_gate"
    assert aws_dag.get_task("batch.check_batch_index").upstream_task_ids == {"batch.verify_batch_index"}


def test_summary_and_retention_always_run_but_do_not_decide_the_run_state(dag):
    summary, prune = dag.get_task("summarize_daily_run"), dag.get_task("prune_superseded_versions")
    assert summary.is_teardown and prune.is_teardown
    assert not summary.on_failure_fail_dagrun and not prune.on_failure_fail_dagrun
    assert summary.upstream_task_ids == {"compact_stream_index", "plan_run"}
    assert prune.upstream_task_ids == {"summarize_daily_run"}
    leaves = [task.task_id for task in dag.tasks if not task.downstream_list]
    assert leaves == ["prune_superseded_versions"]


def test_no_task_names_another_by_id_in_a_template_or_an_xcom_pull():
    """Task ids and XComs are passed as objects (``.output``, returned values, ``plan["dt"]``)."""
    sources = [DAGS_DIR / "payments_daily_index.py"]
    sources += [DAGS_DIR.parent / "plugins" / "payments_platform" / f"{name}.py" for name in ("stages", "sensors", "pipeline")]
    for path in sources:
        text = path.read_text()
        assert "xcom_pull" not in text, path
        assert "task_ids=" not in text, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert "{{" not in node.value or "ti." not in node.value, (path, node.value)
