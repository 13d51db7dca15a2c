"""Downstream DAGs are scheduled on the Assets the daily DAG's publish tasks update."""

from __future__ import annotations

from types import SimpleNamespace

from tests.dags.test_dag_policy import DAGS_DIR


def load(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id]


def test_the_example_consumer_is_scheduled_on_the_reconciliation_index_asset():
    from airflow.sdk import Asset

    consumer = load("example_reconciliation_consumer")
    assert type(consumer.timetable).__name__ == "AssetTriggeredTimetable"
    assert list(consumer.timetable.asset_condition.objects) == [
        Asset(
            name="payments.reconciliation_index", uri="x-payments://catalog/payments/reconciliation_index", group="payments_index"
        )
    ]


def test_the_asset_is_one_the_daily_dag_publishes():
    """The consumer's Asset is the one the business publish adds events for (the alias resolves to
    ``table_asset(<index>)`` for each index published), and reconciliation_index is a business index."""
    from payments_contract import BUSINESS_INDEXES
    from payments_platform.stages import BUSINESS_INDEXES_ALIAS, table_asset

    daily = load("payments_daily_index")
    assert daily.get_task("business.publish").partial_kwargs["outlets"] == [BUSINESS_INDEXES_ALIAS]
    assert "reconciliation_index" in BUSINESS_INDEXES
    consumer = load("example_reconciliation_consumer")
    assert list(consumer.timetable.asset_condition.objects) == [table_asset("reconciliation_index")]


def test_the_consumer_reads_each_published_partition_from_the_events(capsys):
    from payments_platform.stages import table_asset

    consumer = load("example_reconciliation_consumer")
    export = consumer.get_task("export_reconciliation")
    events = {
        table_asset("reconciliation_index"): [
            SimpleNamespace(extra={"dt": "2026-11-20", "version": "v1", "location": "s3://p/indexes/r/dt=2026-11-20/version=v1"})
        ]
    }
    published = export.python_callable(triggering_asset_events=events)
    assert published == [{"dt": "2026-11-20", "version": "v1", "location": "s3://p/indexes/r/dt=2026-11-20/version=v1"}]
    assert "would export payments.reconciliation_index dt=2026-11-20 (version v1)" in capsys.readouterr().out
