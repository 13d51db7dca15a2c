"""The main job on this machine (see scripts/run_local.sh): the whole platform, one command.

1. preflight: Java present, the broker port free;
2. generate the day's raw drops (every format, reconciliation breaks) + ground truth;
3. start the local Apache Kafka broker (KRaft; its data in .local/kafka/data outlives the run) and create the topics;
4. start the streaming app through ``payments_stream_supervisor`` and stream the day's
   generated traffic (fraud patterns, duplicates, late and malformed events) for
   ``--stream-seconds``, with progress bars (events sent and consumed, rates, time left) and
   micro-batches committed, lag, alerts, latency; wait until the app has consumed everything,
   then stop it through the supervisor;
5. mark the drops complete and run ``payments_daily_index`` for the day (``dag.test``,
   real Spark jobs, real Soda gate, embedded catalog), its tasks' states shown live;
6. print the summary against the generator's ground truth (also written as JSON);
7. build the HTML dashboard from the BI views and print its path.

Progress (devtools/progress.py, ``rich``) is live on a terminal and plain lines otherwise
(CI logs) or with ``PAYMENTS_PROGRESS=plain``. Whatever happens (a failure, Ctrl-C, SIGTERM) the stream job and the broker this run
started are stopped. A failing stage names itself and its log and exits non-zero; the
DAG publishes only versions that passed their quality gate, so nothing is half-published.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # devtools/ when run without scripts/env.sh's PYTHONPATH
    sys.path.insert(0, str(ROOT))

from devtools.progress import Activity, DagProgress, StreamFigures, StreamProgress, make_console  # noqa: E402
from devtools.progress import say as progress_say  # noqa: E402

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
DAILY_DAG = "payments_daily_index"
SUPERVISOR_DAG = "payments_stream_supervisor"
POLL_S = 1.0  # how often the live displays read the stream metrics, the broker and the metadata DB
CONSOLE = make_console()


class StageFailed(RuntimeError):
    def __init__(self, name: str, log: Path | None, detail: str) -> None:
        super().__init__(f"FAILED at stage '{name}'" + (f". Log to read: {log}" if log else "") + f"\n{detail}")


def log_tail(log: Path, lines: int = 40) -> str:
    """The last lines of a log, without py4j's per-call chatter (printed when a stage fails, so a
    CI run that keeps no files still shows why)."""
    try:
        text = log.read_text(errors="replace").splitlines(keepends=True)
    except OSError as exc:
        return f"(no log: {exc})\n"
    return "".join([line for line in text if "py4j.clientserver" not in line][-lines:])


def say(text: str) -> None:
    progress_say(CONSOLE, text)


def run_logged(command: list[str], log: Path, env: dict[str, str] | None = None, poll=None) -> int:
    """Run ``command`` with its output in ``log``, calling ``poll()`` every POLL_S seconds while it
    runs; the exit code. The child is killed when this process is interrupted or fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        child = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            while child.poll() is None:
                if poll is not None:
                    poll()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=POLL_S)
        except BaseException:
            child.kill()
            child.wait()
            raise
    return child.returncode


def check_exit(name: str, log: Path, code: int) -> None:
    if code != 0:
        raise StageFailed(name, log, f"exit {code}; last lines:\n{log_tail(log, 25)}")
    say(f"{name}: ok (log: {log})")


def stage(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Run one stage as a child process, its output in ``log`` (a spinner with the elapsed time on a
    terminal); raise StageFailed on a non-zero exit."""
    say(f"{name} ...")
    with Activity(CONSOLE, name):
        code = run_logged(command, log, env)
    check_exit(name, log, code)


def dag_task_ids(dag_id: str) -> list[str]:
    """The DAG's task ids in run order, from the DAG object (parsed here; Airflow's log lines while
    it loads are kept out of the job's output)."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from devtools.local_runner import load_dag, task_order

        return task_order(load_dag(dag_id))


def dag_follower(view: DagProgress, dag_id: str, day: str, since: dt.datetime):
    """A poll function showing the states of the run's tasks, read from the metadata DB."""
    from sqlalchemy.exc import OperationalError

    from devtools.local_runner import run_task_states

    def follow() -> None:
        with contextlib.suppress(OperationalError):  # SQLite busy with the run's own writes: next time
            view.update(*run_task_states(dag_id, day, since))

    return follow


def dag_stage(name: str, dag_id: str, day: str, log: Path, conf: dict | None = None) -> None:
    """Run ``dag_id`` for ``day`` with ``dag.test`` (``python -m devtools.local_runner``, its output in
    ``log``) while showing its tasks' states; raise StageFailed unless the run succeeded."""
    say(f"{name} ...")
    command = [sys.executable, "-m", "devtools.local_runner", dag_id, "--date", day, "--conf", json.dumps(conf or {})]
    try:
        task_ids = dag_task_ids(dag_id)
    except Exception as exc:
        raise StageFailed(name, None, f"{dag_id} did not load: {exc}") from exc
    view = DagProgress(CONSOLE, dag_id, task_ids)
    follow = dag_follower(view, dag_id, day, dt.datetime.now(dt.UTC))
    with view:
        code = run_logged(command, log, poll=follow)
        follow()
    check_exit(name, log, code)


# --------------------------------------------------------------------------- preflight


def require_java() -> str:
    java = shutil.which("java") or (str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else None)
    if not java or not Path(java).exists():
        raise StageFailed(
            "preflight",
            None,
            "Java was not found: Spark needs a JDK 17. Install one (Debian/Ubuntu: "
            "`apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME, then rerun.",
        )
    return java


def require_free_port(bootstrap: str) -> int:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            raise StageFailed(
                "preflight",
                None,
                f"port {port} on {host} is busy ({exc.strerror}), so the local Kafka broker cannot start. "
                "Stop whatever uses it (an earlier broker: `python -m devtools.broker stop`; "
                f"find it: `ss -ltnp | grep {port}`) or choose another port: "
                f"PAYMENTS_KAFKA_BOOTSTRAP=127.0.0.1:<free port> bash scripts/run_local.sh",
            ) from None
    return int(port)


# --------------------------------------------------------------------------- stream


class CountingProducer:
    """confluent-kafka Producer that counts what it sends and remembers, per delivered
    record (partition, offset), the wall-clock time it was produced: the start of each
    event's latency (the records keep their generated timestamps, see stream_traffic)."""

    def __init__(self, producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self.produced = 0
        self.sent_ms: dict[tuple[int, int], int] = {}

    def produce(self, topic, *args, on_delivery=None, **kwargs):
        produced_ms = int(time.time() * 1000)

        def delivered(error, message) -> None:
            if error is None and topic == self._topic:
                self.sent_ms[(message.partition(), message.offset())] = produced_ms
            if on_delivery is not None:
                on_delivery(error, message)

        self._producer.produce(topic, *args, on_delivery=delivered, **kwargs)
        self.produced += 1

    def poll(self, *args):
        return self._producer.poll(*args)

    def flush(self, *args):
        return self._producer.flush(*args)


def topic_end_total(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` now (the sum of its partitions' end offsets)."""
    from devtools.broker import end_offsets

    return sum(end_offsets(bootstrap, topic).values())


def topic_keys(bootstrap: str, topic: str, start: dict[int, int] | None = None, timeout_s: float = 60.0) -> tuple[int, set[str]]:
    """(messages, distinct keys) in ``topic`` from the ``start`` offsets per partition (default: the
    beginning): alerts are keyed by transaction id."""
    from confluent_kafka import Consumer, TopicPartition

    from devtools.broker import end_offsets

    ends = {(topic, p): end for p, end in end_offsets(bootstrap, topic).items()}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "payments-main-job", "enable.auto.commit": False})
    try:
        begin = start or {}
        consumer.assign([TopicPartition(t, p, begin.get(p, 0)) for (t, p), end in ends.items() if end > begin.get(p, 0)])
        seen: dict[tuple[str, int], int] = {}
        keys: set[str] = set()
        messages = 0
        deadline = time.monotonic() + timeout_s
        while (
            any(max(seen.get(tp, -1) + 1, begin.get(tp[1], 0)) < end for tp, end in ends.items()) and time.monotonic() < deadline
        ):
            for message in consumer.consume(num_messages=10_000, timeout=0.2):
                if message.error() is None:
                    tp = (message.topic(), message.partition())
                    if message.offset() < ends[tp]:
                        seen[tp] = max(seen.get(tp, -1), message.offset())
                        messages += 1
                        keys.add(message.key().decode())
        return messages, keys
    finally:
        consumer.close()


def batch_files(stream_root: Path, after_batch: int = -1) -> list[str]:
    """The stream index files of micro-batches after ``after_batch`` (``part-b<batch>-*.parquet``):
    the broker and the checkpoint keep going from run to run, so a run reads its own batches."""
    files = []
    for path in stream_root.glob("dt=*/hour=*/part-b*.parquet"):
        match = re.match(r"part-b([0-9]+)-", path.name)
        if match and int(match.group(1)) > after_batch:
            files.append(str(path))
    return sorted(files)


def stream_latency_ms(
    stream_root: Path, sent_ms: dict[tuple[int, int], int], after_batch: int = -1
) -> dict[str, float | int | None]:
    """p50 / p99 of (ingested_at - wall-clock produce time) per stream index row, matched on
    (kafka_partition, kafka_offset): over all rows, and "steady" without the first
    micro-batch (which also waits for Spark to start)."""
    import duckdb
    import pyarrow as pa

    files = batch_files(stream_root, after_batch)
    figures: dict[str, float | int | None] = dict.fromkeys(("p50_ms", "p99_ms", "steady_p50_ms", "steady_p99_ms"))
    figures["rows"] = 0
    if not files:
        return figures
    sent = pa.table(
        {
            "kafka_partition": [p for p, _ in sent_ms],
            "kafka_offset": [o for _, o in sent_ms],
            "sent_ms": list(sent_ms.values()),
        },
        schema=pa.schema([("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()), ("sent_ms", pa.int64())]),
    )
    with duckdb.connect() as con:
        con.register("sent", sent)
        con.execute(
            f"""CREATE TEMP TABLE latency AS
                SELECT CAST(regexp_extract(filename, 'part-b([0-9]+)-', 1) AS BIGINT) AS batch_id,
                       epoch_ms(ingested_at) - sent.sent_ms AS ms
                FROM read_parquet({files!r}, hive_partitioning = false, filename = true) AS rows
                JOIN sent USING (kafka_partition, kafka_offset)"""
        )
        rows, p50, p99 = con.execute("SELECT count(*), quantile_cont(ms, 0.5), quantile_cont(ms, 0.99) FROM latency").fetchone()
        steady50, steady99 = con.execute(
            "SELECT quantile_cont(ms, 0.5), quantile_cont(ms, 0.99) FROM latency "
            "WHERE batch_id > (SELECT min(batch_id) FROM latency)"
        ).fetchone()

    def whole(value):
        return round(value) if value is not None else None

    figures.update(rows=rows, p50_ms=whole(p50), p99_ms=whole(p99), steady_p50_ms=whole(steady50), steady_p99_ms=whole(steady99))
    return figures


def stream_index_transactions(stream_root: Path, after_batch: int = -1) -> int:
    """Distinct transactions this run indexed (exactly once each, so also its row count)."""
    import duckdb

    files = batch_files(stream_root, after_batch)
    if not files:
        return 0
    with duckdb.connect() as con:
        query = f"SELECT count(DISTINCT transaction_id) FROM read_parquet({files!r}, hive_partitioning = false)"
        return con.execute(query).fetchone()[0]


def read_latest_metrics(metrics_uri: str) -> dict:
    path = Path(metrics_uri) / "stream" / "stream_index" / "latest.json"
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        return json.loads(path.read_text())
    return {}


def committed_batches(metrics_uri: str, after_batch: int = -1) -> int:
    """Micro-batches committed after ``after_batch``."""
    batches = (Path(metrics_uri) / "stream" / "stream_index" / "batches").glob("dt=*/hour=*/batch-*.json")
    return sum(1 for path in batches if int(path.stem.removeprefix("batch-")) > after_batch)


def input_offsets(bootstrap: str, topics) -> dict[tuple[str, int], int]:
    """End offset per (topic, partition) of ``topics``, now."""
    from devtools.broker import end_offsets

    return {(topic, p): end for topic in topics for p, end in end_offsets(bootstrap, topic).items()}


@dataclass
class StreamRun:
    """One run's traffic: what to send and how fast, the producer and sender thread, and where this
    run's figures start (the broker and the stream checkpoint carry on from earlier runs)."""

    profile: Any
    args: argparse.Namespace
    bootstrap: str
    controller: Any
    workload: Any
    rate: float
    duration: float | None
    to_send: int
    producer: CountingProducer
    last_batch: int
    alerts_start: dict[int, int]
    dead_start: int
    input_start: dict[tuple[str, int], int]
    sender: threading.Thread | None = None
    result: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    latency_at: float = 0.0

    @property
    def metrics_uri(self) -> str:
        return self.profile.lake.metrics_uri

    @property
    def stream_root(self) -> Path:
        return Path(self.profile.lake.index_uri) / "stream_index"

    @property
    def log(self) -> Path:
        return self.controller.log_file


def prepare_stream_run(profile, args, bootstrap: str, controller) -> StreamRun:
    """The day's workload and the rate: by default the whole day's traffic spread over
    --stream-seconds, so every fraud pattern, duplicate, late and malformed event of the day
    reaches the app; --stream-rate instead streams at that rate for --stream-seconds."""
    from confluent_kafka import Producer

    from devtools.broker import end_offsets
    from devtools.generator import WorkloadConfig, generate_day

    kafka = profile.kafka
    workload = generate_day(WorkloadConfig(date=args.date, transactions=args.transactions, seed=args.seed))
    day_messages = workload.transactions.num_rows + workload.fraud_scores.num_rows
    rate = args.stream_rate or day_messages / args.stream_seconds
    duration = args.stream_seconds if args.stream_rate else None
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 2})
    return StreamRun(
        profile=profile, args=args, bootstrap=bootstrap, controller=controller, workload=workload, rate=rate,
        duration=duration, to_send=day_messages if duration is None else min(day_messages, int(rate * duration)),
        producer=CountingProducer(producer, kafka.transactions_topic),
        last_batch=read_latest_metrics(profile.lake.metrics_uri).get("batch_id", -1),
        alerts_start=end_offsets(bootstrap, kafka.fraud_alerts_topic),
        dead_start=sum(end_offsets(bootstrap, kafka.dead_letter_topic).values()),
        input_start=input_offsets(bootstrap, kafka.input_topics),
    )  # fmt: skip


def send_traffic(run: StreamRun) -> None:
    """The sender thread: the day's traffic into Kafka; an error is kept for the main thread."""
    from devtools.generator.kafka_stream import stream_to_kafka

    kafka = run.profile.kafka
    try:
        run.result["sent"] = stream_to_kafka(
            run.workload,
            bootstrap_servers=run.bootstrap,
            topic=kafka.transactions_topic,
            fraud_topic=kafka.fraud_signals_topic,
            rate_per_second=run.rate,
            duration_s=run.duration,
            # Keep the generated event and produce times: retiming a day's traffic to
            # a few minutes would put each user's transactions seconds apart, so the
            # velocity rules would flag normal users and the ground truth would no
            # longer hold for the streamed transactions.
            retime=False,
            producer=run.producer,
        )
    except BaseException as exc:  # reported by the main thread
        run.result["error"] = exc


def stream_figures(run: StreamRun, latest: dict) -> StreamFigures:
    """Now: events sent, events the app consumed (its newest committed micro-batch's offsets),
    micro-batches, lag, alerts; the latency (a DuckDB pass over this run's stream index files)
    at most every --progress-seconds."""
    from payments_platform.kafka_topics import consumed_offsets

    if not run.latency or time.monotonic() - run.latency_at >= run.args.progress_seconds:
        run.latency = stream_latency_ms(run.stream_root, run.producer.sent_ms, run.last_batch)
        run.latency_at = time.monotonic()
    consumed = consumed_offsets(latest)
    return StreamFigures(
        sent=run.producer.produced,
        to_send=run.to_send if run.sender is not None and run.sender.is_alive() else run.producer.produced,
        consumed=sum(max(0, consumed.get(tp, 0) - start) for tp, start in run.input_start.items()),
        micro_batches=committed_batches(run.metrics_uri, run.last_batch),
        lag=latest.get("lag_total", "-"),
        alerts=topic_end_total(run.bootstrap, run.profile.kafka.fraud_alerts_topic) - sum(run.alerts_start.values()),
        latency=run.latency,
    )


def require_running(run: StreamRun, latest: dict) -> None:
    """Fail the stage at once when the stream app has exited."""
    if not run.controller.status().running:
        raise StageFailed(
            "stream traffic" if run.sender is not None and run.sender.is_alive() else "stream drain",
            run.log,
            f"the stream app exited before consuming all traffic (latest metrics: {latest}); its log ends:\n" + log_tail(run.log),
        )


def send_with_progress(run: StreamRun, view: StreamProgress) -> None:
    run.sender = threading.Thread(target=send_traffic, args=(run,), name="stream-traffic", daemon=True)
    run.sender.start()
    while run.sender.is_alive():
        run.sender.join(timeout=POLL_S)
        latest = read_latest_metrics(run.metrics_uri)
        view.update(stream_figures(run, latest))
        require_running(run, latest)
    if "error" in run.result:
        raise StageFailed("stream traffic", run.log, f"sending to Kafka failed: {run.result['error']!r}")


def drain_with_progress(run: StreamRun, view: StreamProgress) -> None:
    """Wait until the app has consumed everything: a committed batch's offsets reach the input
    topics' end offsets as they are now that sending is over."""
    from payments_platform.kafka_topics import consumed_offsets

    ends = input_offsets(run.bootstrap, run.profile.kafka.input_topics)
    deadline = time.monotonic() + run.args.drain_timeout
    while True:
        latest = read_latest_metrics(run.metrics_uri)
        view.update(stream_figures(run, latest))
        consumed = consumed_offsets(latest)
        if all(consumed.get(tp, 0) >= end for tp, end in ends.items()):
            return
        require_running(run, latest)
        if time.monotonic() > deadline:
            raise StageFailed(
                "stream drain",
                run.log,
                f"the stream app did not consume all traffic within {run.args.drain_timeout:.0f} s "
                f"(latest metrics: {latest}); its log ends:\n" + log_tail(run.log),
            )
        time.sleep(POLL_S)


def final_stream_figures(run: StreamRun) -> dict:
    kafka = run.profile.kafka
    alerts, alerted_ids = topic_keys(run.bootstrap, kafka.fraud_alerts_topic, start=run.alerts_start)
    return {
        **run.result["sent"],
        "micro_batches": committed_batches(run.metrics_uri, run.last_batch),
        "alerts": alerts,
        "alerted_transactions": len(alerted_ids),
        "alerted_ids": sorted(alerted_ids),
        "indexed_transactions": stream_index_transactions(run.stream_root, run.last_batch),
        "dead_letters": topic_end_total(run.bootstrap, kafka.dead_letter_topic) - run.dead_start,
        "latency": stream_latency_ms(run.stream_root, run.producer.sent_ms, run.last_batch),
    }


def stream_traffic(profile, args, bootstrap: str, controller) -> dict:
    """Send the day's generated traffic for ``args.stream_seconds`` with live progress, then wait
    until the stream app (run by ``controller``) has consumed all of it. Returns the stream
    figures; an app that exits meanwhile fails the stage at once."""
    run = prepare_stream_run(profile, args, bootstrap, controller)
    what = f"the day's {run.to_send:,} events" if run.duration is None else f"{run.to_send:,} of the day's events"
    say(f"streaming {what} for {args.stream_seconds:.0f} s at {run.rate:.0f} events/s (log of the stream app: {run.log})")
    with StreamProgress(CONSOLE, run.to_send, args.progress_seconds) as view:
        send_with_progress(run, view)
        say("traffic sent; waiting for the stream app to consume all of it")
        drain_with_progress(run, view)
        run.latency = {}  # the last line with the latency of everything consumed
        view.update(stream_figures(run, read_latest_metrics(run.metrics_uri)), force_line=True)
    return final_stream_figures(run)


# --------------------------------------------------------------------------- summary


def ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def run_summary(profile, date: str, stream: dict | None = None) -> dict:
    """The run's figures next to the generator's ground truth, from the published catalog."""
    import duckdb

    from devtools.generator import read_ground_truth

    truth = read_ground_truth(profile.lake.raw_uri, date)
    with duckdb.connect(profile.catalog.embedded_path, read_only=True) as con:
        published = dict(
            con.execute(
                "SELECT table_name, location FROM main.catalog_partitions WHERE dt = ? ORDER BY table_name", [date]
            ).fetchall()
        )

        def at(table: str) -> str:
            return f"read_parquet('{published[table]}/*.parquet', hive_partitioning = false)"

        rows = {table: con.execute(f"SELECT count(*) FROM {at(table)}").fetchone()[0] for table in published}
        reconciliation = (
            # One break per transaction (or per line with no transaction), as the ground truth
            # counts them: a duplicate settlement has a row for each of its lines.
            dict(
                con.execute(
                    "SELECT match_status, count(DISTINCT coalesce(transaction_ref, transaction_id, reconciliation_key)) "
                    f"FROM {at('reconciliation_index')} GROUP BY 1"
                ).fetchall()
            )
            if "reconciliation_index" in published
            else {}
        )
        quarantine = (
            dict(con.execute(f"SELECT reason_code, count(*) FROM {at('quarantine')} GROUP BY 1").fetchall())
            if "quarantine" in published
            else {}
        )
        rule_flagged = (
            {r[0] for r in con.execute(f"SELECT transaction_id FROM {at('fraud_index')} WHERE len(rule_flags) > 0").fetchall()}
            if "fraud_index" in published
            else set()
        )
    manifest = {}
    if "batch_index" in published:
        manifest = json.loads((Path(published["batch_index"]) / "_manifest.json").read_text()).get("counts", {})
    expected_flagged = {
        tid
        for pattern in truth["fraud_patterns"].values()
        if isinstance(pattern, dict)
        for ids in pattern.get("expected_rule_flag_ids", {}).values()
        for tid in ids
    }
    true_positives = len(rule_flagged & expected_flagged)
    quality = {
        table: (json.loads(q.read_text()).get("passed") if (q := Path(location) / "_quality.json").exists() else None)
        for table, location in published.items()
    }
    expected = truth["expected_counts"]
    stream = dict(stream or {})
    if "alerted_ids" in stream:
        alerted = set(stream.pop("alerted_ids"))
        # Events later than the app's lateness bound go to the dead-letter topic, not the index.
        late = len(truth["duplicates"]["late_ids"])
        stream["expected_transactions"] = expected["indexed"] - late
        stream["expected_dead_letters"] = expected["quarantined"] + late
        stream["expected_rule_flagged"] = len(expected_flagged)
        stream["expected_rule_flagged_alerted"] = len(alerted & expected_flagged)
    return {
        "date": date,
        "rows_per_index": rows,
        "batch": {
            "read": manifest.get("read"),
            "expected_read": expected["read"],
            "indexed": manifest.get("indexed"),
            "expected_indexed": expected["indexed"],
            "duplicates_removed": manifest.get("duplicates"),
            "expected_duplicates": expected["duplicates"],
            "quarantined_by_reason": manifest.get("quarantined_by_reason", {}),
            "expected_quarantined_by_reason": expected["quarantined_by_reason"],
            "quarantine_rows_by_reason": quarantine,  # includes rejected side-source records
        },
        "reconciliation": {
            "breaks_by_type": {k: v for k, v in sorted(reconciliation.items()) if k != "MATCHED"},
            "expected_breaks_by_type": {
                k: v for k, v in sorted(truth["reconciliation"]["status_counts"].items()) if k != "MATCHED" and v
            },
            "matched": reconciliation.get("MATCHED", 0),
            "expected_matched": truth["reconciliation"]["status_counts"].get("MATCHED", 0),
        },
        "fraud": {
            "fraud_index_rows": rows.get("fraud_index", 0),
            "rule_flagged": len(rule_flagged),
            "expected_rule_flagged": len(expected_flagged),
            "rules_precision": ratio(true_positives, len(rule_flagged)),
            "rules_recall": ratio(true_positives, len(expected_flagged)),
        },
        "stream": stream,
        "quality_gate": quality,
        "published": published,
    }


def print_summary(summary: dict) -> None:
    def line(label: str, value, expected=None) -> None:
        suffix = "" if expected is None else f"   (ground truth {expected})"
        print(f"  {label:34} {value}{suffix}")

    print(f"\n===== summary for dt={summary['date']} =====")
    print("rows per published index:")
    for table, count in summary["rows_per_index"].items():
        line(table, f"{count:,}")
    batch = summary["batch"]
    print("batch:")
    line("indexed transactions", batch["indexed"], batch["expected_indexed"])
    line("duplicates removed", batch["duplicates_removed"], batch["expected_duplicates"])
    print("  quarantined records by reason:")
    for reason in sorted(set(batch["quarantined_by_reason"]) | set(batch["expected_quarantined_by_reason"])):
        line(f"  {reason}", batch["quarantined_by_reason"].get(reason, 0), batch["expected_quarantined_by_reason"].get(reason, 0))
    recon = summary["reconciliation"]
    print("reconciliation breaks by type (transactions, or statement lines with no transaction):")
    for status in sorted(set(recon["breaks_by_type"]) | set(recon["expected_breaks_by_type"])):
        line(f"  {status}", recon["breaks_by_type"].get(status, 0), recon["expected_breaks_by_type"].get(status, 0))
    line("  MATCHED", recon["matched"], recon["expected_matched"])
    fraud = summary["fraud"]
    print("fraud:")
    line("fraud index rows", fraud["fraud_index_rows"])
    line("rule-flagged transactions", fraud["rule_flagged"], fraud["expected_rule_flagged"])
    line("rules precision / recall", f"{fraud['rules_precision']} / {fraud['rules_recall']}")
    stream = summary["stream"]
    if stream:
        print("stream:")
        line("events sent", f"{stream.get('total', 0):,} ({stream.get('rate_per_second')} /s)")
        line("micro-batches committed", stream.get("micro_batches"))
        line("stream index transactions", stream.get("indexed_transactions"), stream.get("expected_transactions"))
        line("alerts raised (transactions)", f"{stream.get('alerts')} ({stream.get('alerted_transactions')})")
        line(
            "  rule-flagged transactions alerted",
            stream.get("expected_rule_flagged_alerted"),
            stream.get("expected_rule_flagged"),
        )
        line("dead letters (malformed + late)", stream.get("dead_letters"), stream.get("expected_dead_letters"))
        latency = stream.get("latency", {})
        line("stream index rows", latency.get("rows"))
        line("latency p50 / p99 (ms)", f"{latency.get('p50_ms')} / {latency.get('p99_ms')}")
        line("  after the first micro-batch", f"{latency.get('steady_p50_ms')} / {latency.get('steady_p99_ms')}")
    print("quality gate:")
    for table, passed in summary["quality_gate"].items():
        line(table, "passed" if passed else "FAILED" if passed is False else "not verified")
    print("published partitions:")
    for table, location in summary["published"].items():
        line(table, location)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    parser.add_argument("--date", default=yesterday, help="YYYY-MM-DD (default: yesterday, UTC)")
    parser.add_argument("--transactions", type=int, default=5_000, help="unique valid transactions of the day (>= 1000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stream-seconds", type=float, default=180.0, help="how long to stream the day's traffic (default 180)")
    parser.add_argument(
        "--stream-rate",
        type=float,
        default=None,
        help="events per second; default: the whole day's traffic spread over --stream-seconds; "
        "with a rate, only what fits in --stream-seconds is streamed",
    )
    parser.add_argument(
        "--progress-seconds", type=float, default=15.0, help="plain progress line and latency refresh interval (default 15)"
    )
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="max seconds for the app to catch up")
    parser.add_argument("--no-stream", action="store_true", help="skip the broker and the streaming app")
    parser.add_argument("--dashboard", default=None, help="HTML path (default: $PAYMENTS_LOCAL_DIR/dashboard.html)")
    return parser.parse_args(argv)


def _raise_interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    local_dir = Path(os.environ.get("PAYMENTS_LOCAL_DIR", ROOT / ".local"))
    os.environ.setdefault("PAYMENTS_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    bootstrap = os.environ["PAYMENTS_KAFKA_BOOTSTRAP"]
    # The supervisor reaches the broker through the Kafka provider's connection: this broker.
    os.environ["AIRFLOW_CONN_KAFKA_PAYMENTS"] = json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": bootstrap}})
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with contextlib.ExitStack() as cleanup:
            return run_main_job(args, local_dir, bootstrap, cleanup)
    except StageFailed as failure:
        say(str(failure))
        return 1
    except KeyboardInterrupt:
        say("interrupted: stopped what this run started")
        return 130


def run_main_job(args: argparse.Namespace, local_dir: Path, bootstrap: str, cleanup: contextlib.ExitStack) -> int:
    """The stages in order; ``cleanup`` stops what they started (broker, stream app) at the end."""
    require_java()
    if not args.no_stream:
        require_free_port(bootstrap)
    from payments_platform.profiles import get_profile

    profile = get_profile()
    logs = local_dir / "run-logs"
    stage(
        "generate the day's raw drops",
        [sys.executable, "-m", "devtools.generator", "generate", "--date", args.date,
         "--transactions", str(args.transactions), "--seed", str(args.seed), "--raw-uri", profile.lake.raw_uri],
        logs / "generate.log",
    )  # fmt: skip
    stream = None if args.no_stream else run_stream_stages(profile, args, bootstrap, logs, cleanup)
    mark_drops_complete(profile, args.date)
    dag_stage(f"{DAILY_DAG} (dag.test through Airflow)", DAILY_DAG, args.date, logs / f"{DAILY_DAG}.log")
    summary = write_summary(profile, args.date, stream, local_dir, logs / f"{DAILY_DAG}.log")
    page = write_dashboard(profile, args, local_dir)
    print(f"\n[run] summary JSON: {local_dir / 'run-summary.json'}")
    print(f"[run] dashboard: open file://{page.resolve()}")
    return 0 if summary["published"] else 1


def mark_drops_complete(profile, day: str) -> None:
    from payments_platform.sensors import ready_marker_uri

    marker = Path(ready_marker_uri(profile.lake.raw_uri, day))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"dt": day, "complete": True}))


def write_summary(profile, day: str, stream: dict | None, local_dir: Path, dag_log: Path) -> dict:
    try:
        summary = run_summary(profile, day, stream)
    except Exception as exc:
        raise StageFailed("summary", dag_log, repr(exc)) from exc
    (local_dir / "run-summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print_summary(summary)
    return summary


def write_dashboard(profile, args: argparse.Namespace, local_dir: Path) -> Path:
    from devtools.dashboard import build_dashboard

    try:
        with Activity(CONSOLE, "dashboard"):
            return build_dashboard(
                profile.catalog.embedded_path,
                args.dashboard or local_dir / "dashboard.html",
                subtitle=f"dt={args.date} · catalog {profile.catalog.embedded_path}",
            )
    except Exception as exc:
        raise StageFailed("dashboard", None, repr(exc)) from exc


def run_stream_stages(profile, args, bootstrap: str, logs: Path, cleanup: contextlib.ExitStack) -> dict:
    from devtools.broker import DATA_DIR, BrokerError, EmbeddedBroker, profile_topics
    from payments_platform.stream_control import LocalStreamController

    say(f"starting the local Apache Kafka broker on {bootstrap} (data: {DATA_DIR}) ...")
    broker = EmbeddedBroker(
        topics=profile_topics(), port=int(bootstrap.rsplit(":", 1)[1]), log_path=logs / "broker.log", data_dir=DATA_DIR
    )
    logs.mkdir(parents=True, exist_ok=True)
    try:
        with Activity(CONSOLE, "starting the Kafka broker"):
            broker.start()
    except BrokerError as exc:
        raise StageFailed("start the Kafka broker", logs / "broker.log", str(exc)) from exc
    cleanup.callback(lambda: (say("stopping the Kafka broker"), broker.stop()))
    say(f"broker up, topics: {', '.join(sorted(broker.topics))}")
    controller = LocalStreamController(profile)
    # Registered before the start so a failed or interrupted start still stops the job.
    cleanup.callback(lambda: controller.status().running and (say("stopping the stream app"), controller.stop()))
    dag_stage(
        f"provision the topics and start the streaming app ({SUPERVISOR_DAG}, action=deploy)",
        SUPERVISOR_DAG, args.date, logs / "stream_supervisor_start.log", {"action": "deploy"},
    )  # fmt: skip
    figures = stream_traffic(profile, args, bootstrap, controller)
    dag_stage(
        f"stop the streaming app ({SUPERVISOR_DAG}, action=stop)",
        SUPERVISOR_DAG, args.date, logs / "stream_supervisor_stop.log", {"action": "stop"},
    )  # fmt: skip
    return figures


if __name__ == "__main__":
    sys.exit(main())
