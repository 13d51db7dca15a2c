"""Start, stop and inspect the long-running streaming index job.

* ``LocalStreamController``: a detached ``spark-submit`` process on this machine,
  tracked by a pid file; its log goes to ``.local/stream/stream_index.log``.
* ``EmrStreamController``: one EMR on EKS job run named ``payments-stream-index``
  with EMR's job retry policy; found again by name and state. Stopping cancels it and
  waits until EMR reports it ended (``CANCELLED``/``FAILED``/``COMPLETED``); starting waits
  for any run still ``CANCEL_PENDING``: two runs never share the checkpoint.

Health comes from the streaming metrics the job writes per micro-batch (see
docs/streaming.md): freshness of the last committed batch, and the consumer lag read from the
broker through the Kafka provider (payments_platform.kafka_topics). Lag alone is not death:
a stream that committed a batch within the staleness limit is catching up, not stuck.
The restart policy (budget per rolling hour, exponential backoff) and the open incident
(what was paged, so a page goes out once per incident) are pure and kept in small state
files in the lake, so every supervisor run sees the same history.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from payments_contract import (
    STREAM_HEARTBEAT_FILE,
    STREAM_LATEST_FILE,
    STREAM_QUERY_NAME,
    SUPERVISOR_INCIDENT_FILE,
    SUPERVISOR_RESTARTS_FILE,
    stream_metrics_location,
    supervisor_location,
)
from payments_platform import lake_io
from payments_platform.profiles import PROJECT_ROOT, Profile, get_profile
from payments_platform.spark_jobs import (
    EMR_FAILED_STATES,
    EMR_TERMINAL_STATES,
    SparkJob,
    conf_flags,
    emr_configuration_overrides,
    emr_job_driver,
    spark_conf,
    spark_submit_env,
)

STREAM_JOB_NAME = "payments-stream-index"
ACTIVE_EMR_STATES = ["PENDING", "SUBMITTED", "RUNNING"]


def stream_job(profile: Profile) -> SparkJob:
    """The stream job with every setting it needs as an argument: it reads no profile of its own
    (nothing sets ``PAYMENTS_PROFILE`` in an EMR pod). Never ``--allow-data-loss``: offsets Kafka no
    longer has fail the job (docs/runbook.md#stream-lost-data)."""
    lake, kafka = profile.lake, profile.kafka
    return SparkJob(
        name=STREAM_JOB_NAME,
        entrypoint="stream_index.py",
        streaming=True,
        role="ingest",  # reads the input topics (card data before masking) and the PAN token key
        arguments=[
            "--bootstrap", kafka.bootstrap_servers,
            "--security", kafka.security,
            "--transactions-topic", kafka.transactions_topic,
            "--fraud-signals-topic", kafka.fraud_signals_topic,
            "--alerts-topic", kafka.fraud_alerts_topic,
            "--dead-letter-topic", kafka.dead_letter_topic,
            "--index-uri", lake.index_uri,
            "--checkpoint-uri", lake.checkpoint_uri,
            "--metrics-uri", lake.metrics_uri,
            "--raw-uri", lake.raw_uri,
            "--token-key-ref", profile.secrets.get("pan_token_key", ""),
            "--query-name", STREAM_QUERY_NAME,
            "--state-partitions", str(profile.spark.stream_state_partitions),
            "--publish-metrics", profile.spark.stream_metrics,
            "--max-clock-skew-seconds", str(profile.validation.max_clock_skew_seconds),
            *(["--region", profile.region] if profile.region else []),
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class StreamStatus:
    running: bool
    reference: str | None = None  # pid or EMR job id
    detail: str = ""


class StreamController(Protocol):
    def status(self) -> StreamStatus: ...

    def start(self) -> StreamStatus: ...

    def stop(self) -> StreamStatus: ...


class LocalStreamController:
    def __init__(self, profile: Profile, state_dir: Path | None = None) -> None:
        self.profile = profile
        self.state_dir = state_dir or Path(os.environ.get("PAYMENTS_LOCAL_DIR") or PROJECT_ROOT / ".local") / "stream"
        self.pid_file = self.state_dir / "stream_index.pid"
        self.log_file = self.state_dir / "stream_index.log"

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid if _is_alive(pid) else None

    def status(self) -> StreamStatus:
        pid = self._pid()
        return StreamStatus(running=pid is not None, reference=str(pid) if pid else None, detail=f"log: {self.log_file}")

    def command(self) -> list[str]:
        import sys

        job = stream_job(self.profile)
        spark = self.profile.spark
        spark_submit = str(Path(sys.executable).with_name("spark-submit"))
        return [
            spark_submit,
            "--master",
            spark.master or "local[2]",
            *conf_flags(spark_conf(spark, job)),
            f"{spark.entrypoint_uri}/{job.entrypoint}",
            *job.arguments,
        ]

    def start(self) -> StreamStatus:
        current = self.status()
        if current.running:
            return current
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as log:
            log.write(f"\n--- start {datetime.now(UTC).isoformat()} ---\n")
            log.flush()
            process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=spark_submit_env(),
                cwd=PROJECT_ROOT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        return StreamStatus(running=True, reference=str(process.pid), detail=f"log: {self.log_file}")

    def stop(self, timeout_s: float = 30) -> StreamStatus:
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return StreamStatus(running=False, detail="not running")
        os.killpg(os.getpgid(pid), signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _is_alive(pid):
            time.sleep(0.5)
        if _is_alive(pid):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return StreamStatus(running=False, reference=str(pid), detail="stopped")


def _is_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own exited child, if it is one
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class StreamStopTimeout(RuntimeError):
    """A cancelled stream job run did not end in time: nothing may start on its checkpoint yet."""


class EmrStreamController:
    def __init__(self, profile: Profile, stop_timeout_s: float = 900.0, poll_s: float = 10.0) -> None:
        from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook

        self.profile = profile
        self.stop_timeout_s = stop_timeout_s
        self.poll_s = poll_s
        self.hook = EmrContainerHook(
            aws_conn_id=profile.aws_conn_id, region_name=profile.region, virtual_cluster_id=profile.spark.virtual_cluster_id
        )

    def _job_runs(self, states: list[str]) -> list[dict[str, Any]]:
        response = self.hook.conn.list_job_runs(
            virtualClusterId=self.profile.spark.virtual_cluster_id, name=STREAM_JOB_NAME, states=states
        )
        return [run for run in response.get("jobRuns", []) if run.get("name") == STREAM_JOB_NAME]

    def _active_jobs(self) -> list[dict[str, Any]]:
        return self._job_runs(ACTIVE_EMR_STATES)

    def wait_until_ended(self, job_ids: list[str]) -> dict[str, str]:
        """Poll DescribeJobRun until every run is terminal; raises StreamStopTimeout after ``stop_timeout_s``."""
        deadline = time.monotonic() + self.stop_timeout_s
        pending, ended = list(dict.fromkeys(job_ids)), {}
        while pending:
            for job_id in list(pending):
                state = self.hook.conn.describe_job_run(id=job_id, virtualClusterId=self.profile.spark.virtual_cluster_id)[
                    "jobRun"
                ]["state"]
                if state in EMR_TERMINAL_STATES:
                    ended[job_id] = state
                    pending.remove(job_id)
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise StreamStopTimeout(
                    f"stream job run(s) {', '.join(pending)} still not ended {self.stop_timeout_s:.0f}s after the cancel: "
                    "nothing is started on their checkpoint (docs/runbook.md#stream-unhealthy)"
                )
            time.sleep(self.poll_s)
        return ended

    def status(self) -> StreamStatus:
        jobs = self._active_jobs()
        if not jobs:
            return StreamStatus(running=False, detail="no active job run")
        return StreamStatus(running=True, reference=jobs[0]["id"], detail=jobs[0]["state"])

    def start(self) -> StreamStatus:
        current = self.status()
        if current.running:
            return current
        # A run still being cancelled holds the checkpoint until it ends.
        self.wait_until_ended([run["id"] for run in self._job_runs(["CANCEL_PENDING"])])
        spark, job = self.profile.spark, stream_job(self.profile)
        job_id = self.hook.submit_job(
            job.name,
            spark.role_arn(job.role),
            spark.release_label,
            emr_job_driver(spark, job, job.arguments),
            emr_configuration_overrides(spark, job),
            f"stream-{int(time.time())}",  # each start is a new run on purpose
            {"project": "payments-index", "job": job.name},
            spark.stream_max_attempts,
        )
        return StreamStatus(running=True, reference=job_id, detail="SUBMITTED")

    def stop(self) -> StreamStatus:
        """Cancel the active run(s) and wait until EMR reports them ended."""
        jobs = self._active_jobs()
        for job in jobs:
            self.hook.conn.cancel_job_run(id=job["id"], virtualClusterId=self.profile.spark.virtual_cluster_id)
        ending = [job["id"] for job in jobs] + [run["id"] for run in self._job_runs(["CANCEL_PENDING"])]
        ended = self.wait_until_ended(ending)
        return StreamStatus(
            running=False,
            reference=",".join(ended) or None,
            detail=", ".join(f"{job_id} {state}" for job_id, state in ended.items()) or "not running",
        )


def get_stream_controller(profile: Profile | None = None) -> StreamController:
    profile = profile or get_profile()
    return EmrStreamController(profile) if profile.spark.launcher == "emr_on_eks" else LocalStreamController(profile)


# --- health -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamHealth:
    healthy: bool
    freshness_s: float | None
    total_lag: int | None
    problems: list[str] = field(default_factory=list)
    # A micro-batch committed within the staleness limit: the stream is making progress.
    committing: bool = False
    # Dead or stuck (restart it): no batch or idle heartbeat within the limit, or records waiting
    # beyond the lag limit while no batch commits. A stream that lags but commits is catching up.
    stalled: bool = False
    # Records the stream can no longer read: its offsets are below the topics' earliest offsets.
    lost_records: int = 0


def latest_metrics(metrics_uri: str) -> dict[str, Any] | None:
    """The newest micro-batch metrics record the streaming job wrote, if any (docs/streaming.md)."""
    return lake_io.read_json(lake_io.join(stream_metrics_location(metrics_uri, STREAM_QUERY_NAME), STREAM_LATEST_FILE))


def latest_heartbeat(metrics_uri: str) -> dict[str, Any] | None:
    """The newest idle heartbeat of the streaming job (written while no new record arrives), if any."""
    return lake_io.read_json(lake_io.join(stream_metrics_location(metrics_uri, STREAM_QUERY_NAME), STREAM_HEARTBEAT_FILE))


def _utc(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def assess_health(
    metrics: dict[str, Any] | None,
    now: datetime,
    max_staleness_s: float,
    max_lag: int,
    heartbeat: dict[str, Any] | None = None,
    broker_lag: int | None = None,
    lost: dict[str, Any] | None = None,
) -> StreamHealth:
    """Healthy = a micro-batch committed, or an idle heartbeat (nothing new to read) came, within
    ``max_staleness_s``, the lag is at most ``max_lag`` (``broker_lag``, read from the broker now
    by payments_platform.kafka_topics.stream_lag, when given, else the newer record's own), and no
    offset the stream would resume from is below the broker's earliest (``lost``, from
    kafka_topics.lost_offsets).

    ``stalled`` (restart-worthy) is narrower than unhealthy: lag alone is not death. A stream
    whose latest record shows a batch committed within the limit is catching up."""
    lost_records = int((lost or {}).get("total") or 0)
    lost_problems = [
        f"offsets below what Kafka still keeps: {item['topic']}[{item['partition']}] resumes at {item['consumed']}, "
        f"earliest is {item['earliest']} ({item['lost']} records lost)"
        for item in (lost or {}).get("partitions", [])
    ]
    if metrics is None and heartbeat is None:
        return StreamHealth(False, None, None, ["no micro-batch metrics yet", *lost_problems], False, True, lost_records)
    signs = [(_utc(metrics["committed_at"]), metrics)] if metrics is not None else []
    if heartbeat is not None:
        signs.append((_utc(heartbeat["heartbeat_at"]), heartbeat))
    seen_at, newest = max(signs, key=lambda sign: sign[0])
    label = "last micro-batch committed" if heartbeat is None else "last micro-batch or idle heartbeat"
    freshness = (now - seen_at).total_seconds()
    committing = metrics is not None and (now - _utc(metrics["committed_at"])).total_seconds() <= max_staleness_s
    total_lag = int(broker_lag) if broker_lag is not None else int(newest.get("lag_total") or 0)
    problems = []
    stale = freshness > max_staleness_s
    lagging = total_lag > max_lag
    if stale:
        problems.append(f"{label} {freshness:.0f}s ago (limit {max_staleness_s:.0f}s)")
    if lagging:
        problems.append(f"consumer lag {total_lag} records (limit {max_lag})")
    problems += lost_problems
    stalled = stale or (lagging and not committing)
    return StreamHealth(not problems, freshness, total_lag, problems, committing, stalled, lost_records)


# --- restart budget -------------------------------------------------------------------------


@dataclass
class RestartState:
    restarts: list[str] = field(default_factory=list)  # ISO times of supervisor-initiated starts

    @classmethod
    def load(cls, uri: str) -> RestartState:
        payload = lake_io.read_json(uri)
        return cls(**payload) if payload else cls()

    def save(self, uri: str) -> None:
        lake_io.write_json(uri, asdict(self))


def restart_decision(
    state: RestartState, now: datetime, budget: int, window: timedelta, base_backoff: timedelta
) -> tuple[bool, str]:
    """Whether a restart may happen now: within ``budget`` per ``window``, with exponential backoff."""
    recent = [datetime.fromisoformat(t) for t in state.restarts if now - datetime.fromisoformat(t) < window]
    if len(recent) >= budget:
        return False, f"restart budget spent: {len(recent)} restarts in the last {window}"
    if recent:
        wait = base_backoff * (2 ** (len(recent) - 1))
        since = now - max(recent)
        if since < wait:
            return (
                False,
                f"backing off: last restart {since.total_seconds():.0f}s ago, next allowed after {wait.total_seconds():.0f}s",
            )
    return True, f"restart {len(recent) + 1} of {budget} in the window"


def restart_state_uri(profile: Profile) -> str:
    return supervisor_location(profile.lake.metrics_uri, SUPERVISOR_RESTARTS_FILE)


# --- incidents: one page per incident ----------------------------------------------------------


@dataclass
class IncidentState:
    """The open incident: what is wrong (``kind``), since when, and when on-call was paged for it.

    A page goes out when an incident opens or changes kind (``unhealthy`` -> ``data_loss``), not
    on every supervisor run while it lasts; a healthy inspection closes it."""

    kind: str | None = None
    opened_at: str | None = None
    paged_at: str | None = None
    detail: str = ""

    @classmethod
    def load(cls, uri: str) -> IncidentState:
        payload = lake_io.read_json(uri)
        return cls(**payload) if payload else cls()

    def save(self, uri: str) -> None:
        lake_io.write_json(uri, asdict(self))

    def should_page(self, kind: str) -> bool:
        return not (self.kind == kind and self.paged_at)

    def opened(self, kind: str, now: datetime, detail: str) -> None:
        if self.kind != kind:
            self.kind, self.opened_at, self.paged_at = kind, now.isoformat(), None
        self.detail = detail

    def close(self) -> str | None:
        """Close the incident; returns the kind that was open."""
        was = self.kind
        self.kind = self.opened_at = self.paged_at = None
        self.detail = ""
        return was


def incident_state_uri(profile: Profile) -> str:
    return supervisor_location(profile.lake.metrics_uri, SUPERVISOR_INCIDENT_FILE)


__all__ = ["EMR_FAILED_STATES", "EMR_TERMINAL_STATES", "STREAM_QUERY_NAME"]


def main(argv: list[str] | None = None) -> int:
    """``python -m payments_platform.stream_control command|start|status|stop``: the local
    controller by hand, with exactly the arguments the supervisor passes (the job has no defaults
    for its locations and topics)."""
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="python -m payments_platform.stream_control", description=main.__doc__)
    parser.add_argument("action", choices=("command", "start", "status", "stop"))
    action = parser.parse_args(argv).action
    controller = LocalStreamController(get_profile())
    if action == "command":
        print(shlex.join(controller.command()))
        return 0
    print(getattr(controller, action)())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
