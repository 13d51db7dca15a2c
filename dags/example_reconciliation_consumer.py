"""
### Example consumer: finance export on "reconciliation_index published"

A stand-in for a downstream team's DAG (a finance export, an ML training job): it is
**scheduled on the Asset** `payments.reconciliation_index`
(`x-payments://catalog/payments/reconciliation_index`), not on a time. Every time
`payments_daily_index` (or a `payments_reprocess` rebuild) publishes a new version of the
reconciliation index, its `business.publish` task adds an event for that Asset, and this DAG
runs once for it. The Assets view of the Airflow UI shows the lineage between the two DAGs.

Each event carries, in its `extra`, the day (`dt`), the `version` and the published
`location`; this DAG only reads them and logs what a real export would read (the Athena
table `payments.reconciliation_index`, partition `dt`). Copy it as the starting point of a
real consumer: query the partition, never the version's files directly (a rerun may
repoint the partition to a newer version).

Every published table has its Asset (`payments_platform.stages.table_asset(<table>)`):
`payments.batch_index`, `payments.quarantine`, `payments.aggregate_index`,
`payments.audit_trail` and each business index.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, task

from payments_platform.stages import table_asset

DAG_ID = "example_reconciliation_consumer"
RECONCILIATION_INDEX = table_asset("reconciliation_index")

with DAG(
    dag_id=DAG_ID,
    description="Example consumer: runs when a reconciliation_index partition is published",
    doc_md=__doc__,
    schedule=[RECONCILIATION_INDEX],
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["payments", "example", "consumer"],
    default_args={"owner": "finance-analytics", "retries": 2, "retry_delay": timedelta(minutes=5)},
) as dag:

    @task
    def export_reconciliation(triggering_asset_events=None) -> list[dict]:
        """What a finance export would read: each newly published partition of the reconciliation index."""
        published = [
            {"dt": event.extra.get("dt"), "version": event.extra.get("version"), "location": event.extra.get("location")}
            for event in (triggering_asset_events or {}).get(RECONCILIATION_INDEX, [])
        ]
        for partition in published:
            print(f"would export payments.reconciliation_index dt={partition['dt']} (version {partition['version']})")
        return published

    export_reconciliation()
