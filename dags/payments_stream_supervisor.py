"""
### Payments stream supervisor

Keeps the streaming index job (Kafka -> Spark Structured Streaming -> stream index and
fraud alerts) running and healthy. Every 5 minutes it:

1. **inspects** the job (a local `spark-submit` process, or the EMR on EKS job run
   `payments-stream-index`) and its latest micro-batch metrics: time since the last
   committed batch or, while the topics are silent, the last idle heartbeat (about every
   10 s); the consumer lag, read from the broker through the Kafka provider (the
   `kafka_payments` connection): end offsets now minus what the last batch consumed; and
   offsets the stream would resume from that are below the topics' earliest offsets
   (input deleted by retention before the stream read it);
2. **reconciles**: starts the job from its checkpoint when it is absent or failed,
   restarts it when **stalled** (no batch or heartbeat within `max_staleness_s`, or
   records waiting while no batch commits) — with exponential backoff
   (`restart_backoff_s`, doubling per restart) and a budget of
   `payments_stream_restart_budget` restarts per hour. A job that lags but commits
   batches is **catching up** and is not restarted. On EMR a restart waits until the
   cancelled run has ended before starting the next on the same checkpoint. Every
   setting reaches the job as an argument (it reads no profile in the EMR pod);
3. **pages on-call once per incident** (state in `<metrics>/supervisor/incident.json`):
   `unhealthy` when it cannot restart (budget spent, backing off), `lagging` (a warning)
   while catching up, `data_loss` when offsets fell below what Kafka keeps — then the job
   is never restarted and never with `--allow-data-loss`; a person decides.

#### Manual trigger (`action` param)
* `restart` — stop and start the job now (resumes from the checkpoint; no data lost).
* `stop` — stop the job and leave it stopped until the next `restart`/`deploy`
  trigger (scheduled runs will not start it while the stop marker exists).
* `deploy` — stop, provision the four topics through the Kafka provider (partitions,
  replication, retention from the profile; idempotent: existing topics are kept, grown,
  re-configured), then start with the currently deployed application artifacts.
Leave `action` empty for a normal health check.

#### When it pages
Read the job log (local: `.local/stream/stream_index.log`; AWS: the CloudWatch log
group `/payments/emr-on-eks`, stream prefix `payments-stream-index`), then see
docs/runbook.md#stream-unhealthy, #stream-lagging or #stream-lost-data (the page names it).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param, chain

from payments_platform.notifications import on_call_notifier
from payments_platform.supervision import inspect_stream, reconcile_stream

DAG_ID = "payments_stream_supervisor"

with DAG(
    dag_id=DAG_ID,
    description="Start, health-check and restart the streaming index job",
    doc_md=__doc__,
    schedule=timedelta(minutes=5),
    start_date=None,
    catchup=False,
    max_active_runs=1,
    tags=["payments", "streaming", "supervisor"],
    default_args={"owner": "payments-data-platform", "retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "action": Param(
            None,
            type=["null", "string"],
            enum=[None, "restart", "stop", "deploy"],
            description="restart, stop or deploy; empty for a health check",
        ),
        "max_staleness_s": Param(
            120,
            type="integer",
            minimum=10,
            description="Unhealthy when the last micro-batch and idle heartbeat are older than this",
        ),
        "max_lag": Param(
            100_000,
            type="integer",
            minimum=0,
            description="Lag limit in records: page (warning) while the job catches up; restart when no batch commits",
        ),
        "restart_backoff_s": Param(
            120, type="integer", minimum=0, description="Wait after the first restart; doubles per restart in the hour"
        ),
    },
    on_failure_callback=on_call_notifier(),
) as dag:
    inspection = inspect_stream()
    reconciliation = reconcile_stream(inspection, restart_budget="{{ var.value.get('payments_stream_restart_budget', '3') }}")

    chain(inspection, reconciliation)
