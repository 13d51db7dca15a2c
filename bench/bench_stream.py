"""Stream index latency and throughput at fixed produce rates (issues 4, 23).

    flock /tmp/payments-bench.lock python bench/bench_stream.py [--rates 1000 5000 10000] [--seconds 60]
        [--trigger "200 milliseconds"] [--max-offsets-per-trigger 20000] [--drain-seconds 300]
        [--job-conf KEY=VALUE ...] [--job-arg=--OPTION=VALUE ...] [--geo-jump-minutes N]
        [--warmup-seconds 0] [--warmup-rate 200]

For each rate: a fresh local Apache Kafka broker (KRaft, from the JVM manifest), generated
transactions (and their ML outputs)
produced at that rate for ``--seconds`` while the stream index job runs as a
separate spark-submit-like process (local[2]); then it waits for the job to drain.
With ``--warmup-seconds N`` a different generated workload is first produced at
``--warmup-rate`` for N seconds and drained, so the measured phase meets a job whose JVM
has compiled its hot code (a long-running stream's normal state) instead of a cold one;
warm-up events are not measured.

Per-event latency starts at the Kafka produce timestamp and ends
(a) when the alert is read from the alerts topic by a consumer, and
(b) when the micro-batch that wrote the event's index row committed (the batch's
    ``committed_at`` in the metrics records; the row's ``version`` names its batch).
Prints p50 / p95 / p99 of both, the achieved input and processing rates, the lag
(max during the run, after draining) and the state memory at the start and the end
of the run, and the CPU seconds the job's processes used from the start of producing
until drained (per record produced, and as cores busy). The JSON also has the alert
latency per minute of produce time (``alert_latency_by_minute_ms``: a long run shows
the JVM warming up and the state growing). Writes everything as JSON to
bench/out/stream_<rate>.json. A rate counts as
sustained when the job drained (lag 0) within ``SUSTAINED_DRAIN_S`` of the end of producing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

TOPICS = {"transactions": 2, "fraud_signals": 2, "fraud_alerts": 1, "dead_letter": 1}
SUSTAINED_DRAIN_S = 10.0  # issue 23: drained within 10 s of the end of producing


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": round(ordered[-1], 1)}


def per_minute(pairs: list[tuple[float, float]], start_ms: float) -> list[list]:
    """[minute after start, n, p50, p99] of (produce ms, latency ms) pairs, by the minute produced:
    how latency moves as the JVM warms up and the state grows."""
    minutes: dict[int, list[float]] = {}
    for produced_ms, latency in pairs:
        minutes.setdefault(int((produced_ms - start_ms) // 60_000), []).append(latency)
    return [[m, stats["n"], stats["p50"], stats["p99"]] for m, stats in sorted((m, percentiles(v)) for m, v in minutes.items())]


class AlertReader(threading.Thread):
    """Reads the alerts topic from the start; records (transaction_id, receive time ms) of each key's
    first message, and with ``keep_values`` that message's value too."""

    def __init__(self, bootstrap: str, topic: str, keep_values: bool = False) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.keep_values = bootstrap, topic, keep_values
        self.received: dict[str, float] = {}
        self.values: dict[str, bytes] = {}
        self.stop_event = threading.Event()

    def run(self) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": "bench", "enable.auto.commit": False, "fetch.wait.max.ms": 100}
        )
        partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
        while not self.stop_event.is_set():
            for message in consumer.consume(1000, timeout=0.1):
                if message.error() is None:
                    key = message.key().decode()
                    if key not in self.received:
                        self.received[key] = time.time() * 1000
                        if self.keep_values:
                            self.values[key] = message.value()
        consumer.close()


def _warm_event(i: int, now_ms: int) -> dict:
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"transaction_id": f"warm-{i}", "user_id": f"warm-u{i}", "merchant_id": "warm-m", "timestamp": stamp, "amount": "1.00",
            "currency": "USD", "transaction_status": "AUTHORIZED", "channel": "POS", "updated_at": stamp}  # fmt: skip


def short_geo_rules(work: Path, minutes: int) -> Path:
    """include/config/fraud_rules.yaml with ``geo_jump.max_minutes`` replaced, written into ``work``."""
    import yaml

    from spark_apps.fraud_rules import RULES_PATH

    rules = yaml.safe_load(Path(RULES_PATH).read_text())
    rules["geo_jump"]["max_minutes"] = minutes
    path = work / "fraud_rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def _epoch_s(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its descendants (reaped ones included)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process now, in MiB."""
    import psutil

    try:
        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except psutil.NoSuchProcess:
        return None


def _own_cpu_seconds() -> float:
    """CPU seconds of this process (all threads: the producer, the alert reader, librdkafka's)."""
    times = os.times()
    return times.user + times.system


def host_speed() -> dict:
    """The CPU, and the best of 3 timings of a fixed pure-Python loop: runs on different hosts of
    this workplace differ by 2x or more at the same commit, so a result carries its host's speed."""
    import platform
    import timeit

    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor())
    loop_s = min(timeit.repeat("sum(i * i for i in range(3_000_000))", number=1, repeat=3))
    return {"cpu": model, "cores": os.cpu_count(), "python_loop_ms": round(loop_s * 1000, 1)}


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def input_end_offsets(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    from devtools.broker import end_offsets

    return {(topic, p): end for topic in topics for p, end in end_offsets(bootstrap, topic).items()}


def first_covering(records: list[dict], ends: dict[tuple[str, int], int]) -> dict | None:
    """The first metrics record whose batch had consumed every input partition up to ``ends``.
    (Not "lag 0": the Kafka source's lag is measured against the end offsets it saw when the
    batch was planned, which may predate the last records.)"""
    from payments_platform.kafka_topics import consumed_offsets

    for record in records:
        consumed = consumed_offsets(record)
        if all(consumed.get(tp, 0) >= end for tp, end in ends.items()):
            return record
    return None


def metrics_records(metrics_uri: Path) -> list[dict]:
    folder = metrics_uri / "stream" / "stream_index" / "batches"
    return sorted((json.loads(p.read_text()) for p in folder.rglob("batch-*.json")), key=lambda r: r["batch_id"])


def run_rate(
    rate: int,
    seconds: int,
    trigger: str,
    work: Path,
    max_offsets: int,
    drain_seconds: float,
    job_conf: tuple[str, ...] = (),
    job_args: tuple[str, ...] = (),
    geo_jump_minutes: int | None = None,
    warmup_seconds: int = 0,
    warmup_rate: int = 200,
) -> dict:
    from devtools.broker import EmbeddedBroker
    from devtools.generator.drops import write_drops
    from devtools.generator.kafka_stream import prepare_messages, stream_to_kafka
    from devtools.generator.workload import WorkloadConfig, generate_day

    today = dt.datetime.now(dt.UTC).date().isoformat()
    # More fraud patterns than the default mix, so there are enough alerts to measure.
    config = WorkloadConfig(
        date=today, transactions=rate * seconds, seed=7, high_amount_rate=0.01, geo_jump_rate=0.002, card_testing_rate=0.0005
    )
    workload = generate_day(config)
    raw = work / "raw"
    write_drops(workload, str(raw))
    if geo_jump_minutes is not None:  # the rules file with a shorter geo window (its state is kept that long)
        job_args = (*job_args, f"--fraud-rules={short_geo_rules(work, geo_jump_minutes)}")
    names = {kind: f"bench.{kind}" for kind in TOPICS}
    # Split for retiming now, not while producing: this process shares the two cores with the job.
    messages = prepare_messages(workload, names["transactions"], names["fraud_signals"])
    with EmbeddedBroker(topics={names[k]: n for k, n in TOPICS.items()}, log_path=work / "broker.log") as broker:
        command, env = _job_command(broker.bootstrap, names, raw, work, trigger, max_offsets, job_conf, job_args)
        log = open(work / "job.log", "wb")  # noqa: SIM115 - lives as long as the job
        job = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        alerts = AlertReader(broker.bootstrap, names["fraud_alerts"])
        alerts.start()
        try:
            _warm_up(job, broker.bootstrap, names, work, today, warmup_seconds, warmup_rate)
            warm_batches = len(metrics_records(work / "metrics"))
            load_start = os.getloadavg()
            cpu_start, cpu_clock_start = tree_cpu_seconds(job.pid), time.time()
            broker_cpu_start, harness_cpu_start = tree_cpu_seconds(broker.process.pid), _own_cpu_seconds()
            produced = stream_to_kafka(
                messages,
                broker.bootstrap,
                names["transactions"],
                rate_per_second=rate,
                duration_s=seconds,
                fraud_topic=names["fraud_signals"],
            )
            produce_start, produce_end = produced["first_produce_ms"] / 1000, time.time()
            ends = input_end_offsets(broker.bootstrap, [names["transactions"], names["fraud_signals"]])
            drained_at = _drained_at(work, warm_batches, ends, produce_end, drain_seconds)
            cpu_used, cpu_wall = tree_cpu_seconds(job.pid) - cpu_start, time.time() - cpu_clock_start
            broker_cpu = tree_cpu_seconds(broker.process.pid) - broker_cpu_start
            harness_cpu = _own_cpu_seconds() - harness_cpu_start
            broker_rss_mb = rss_mb(broker.process.pid)
        finally:
            _stop_job(job, alerts, log)
    records = metrics_records(work / "metrics")
    measured = [r for r in records[warm_batches:]]
    first_measured_ms = produced["first_produce_ms"]
    index, index_latency, alert_pairs = _latencies(work, records, alerts, first_measured_ms)
    alert_latency = [latency for _produced, latency in alert_pairs]
    data_batches = [r for r in measured if r["input_rows"] > 0]
    parts = ("queryPlanning", "latestOffset", "addBatch", "walCommit", "commitOffsets")
    duration_parts = {part: percentiles([(r["duration_ms"] or {}).get(part, 0) for r in data_batches]) for part in parts}
    result = {
        "rate_target": rate,
        "seconds": seconds,
        "warmup_seconds_at_rate": [warmup_seconds, warmup_rate] if warmup_seconds else None,
        "trigger": trigger,
        "produced": produced,
        "indexed_rows": index.num_rows,
        "alerts_received": len(alerts.received),
        "index_commit_latency_ms": percentiles(index_latency),
        "alert_latency_ms": percentiles(alert_latency),
        "alert_latency_by_minute_ms": per_minute(alert_pairs, first_measured_ms),
        "batches": len(data_batches),
        "batch_duration_ms": percentiles([r["batch_duration_ms"] for r in data_batches]),
        "batch_duration_parts_ms": duration_parts,
        "records_per_batch": percentiles([r.get("records_read", r["input_rows"]) for r in data_batches]),
        "processed_rows_per_second": percentiles([r["processed_rows_per_second"] for r in data_batches]),
        "lag_max": max((r["lag_total"] for r in measured), default=None),
        "drained_seconds_after_produce": None if drained_at is None else round(drained_at - produce_end, 1),
        "sustained": drained_at is not None and drained_at - produce_end <= SUSTAINED_DRAIN_S,
        "state_memory_bytes_first_last": [measured[0]["state_memory_bytes"], measured[-1]["state_memory_bytes"]]
        if measured
        else None,
        "state_rows_first_last": [measured[0]["state_rows_total"], measured[-1]["state_rows_total"]] if measured else None,
        # (seconds after producing started, state memory MB, state rows) per data batch
        "state_timeline": [
            [round(_epoch_s(r["committed_at"]) - produce_start), round(r["state_memory_bytes"] / 2**20, 1), r["state_rows_total"]]
            for r in data_batches
        ],
        # (seconds after producing started, [[operator, state rows, update ms, removal ms, commit ms], ...])
        # of every 10th data batch and the last: which operator's cost grows with its state
        "state_operator_timeline": [
            [
                round(_epoch_s(r["committed_at"]) - produce_start),
                [
                    [op["name"], op["rows_total"], op.get("updates_ms"), op.get("removals_ms"), op.get("commit_ms")]
                    for op in r.get("state_operators", [])
                ],
            ]
            for r in data_batches[::10] + data_batches[-1:]
        ],
        # CPU of the job's processes (JVM + Python workers) from producing to drained (or the drain
        # timeout): work per record is steadier than wall time on a machine shared with the broker.
        "job_cpu_seconds": round(cpu_used, 1),
        "job_cpu_ms_per_record": round(cpu_used * 1000 / max(produced["total"], 1), 3),
        "job_cores_busy": round(cpu_used / max(cpu_wall, 1e-9), 2),
        # The rest of the two cores over the same span: the local broker, and this script
        # (producer, alert reader). In production the brokers are other machines.
        "broker_cores_busy": round(broker_cpu / max(cpu_wall, 1e-9), 2),
        "broker_start_seconds": round(broker.started_in_s or 0.0, 2),
        "broker_rss_mb": broker_rss_mb,
        "bench_cores_busy": round(harness_cpu / max(cpu_wall, 1e-9), 2),
        "load_average_at_start": load_start,
        "load_average": os.getloadavg(),
        "host": host_speed(),
        "max_offsets_per_trigger": max_offsets,
    }
    return result


def _job_command(
    bootstrap: str,
    names: dict[str, str],
    raw: Path,
    work: Path,
    trigger: str,
    max_offsets: int,
    job_conf: tuple[str, ...],
    job_args: tuple[str, ...],
) -> tuple[list[str], dict[str, str]]:
    """The stream job's command line (every location and topic given) and its environment."""
    command = [
        sys.executable, "-m", os.environ.get("BENCH_JOB_MODULE", "spark_apps.jobs.stream_index"),
        "--bootstrap", bootstrap,
        "--transactions-topic", names["transactions"], "--fraud-signals-topic", names["fraud_signals"],
        "--alerts-topic", names["fraud_alerts"], "--dead-letter-topic", names["dead_letter"],
        "--raw-uri", str(raw), "--index-uri", str(work / "indexes"),
        "--checkpoint-uri", str(work / "checkpoints"), "--metrics-uri", str(work / "metrics"),
        "--trigger-interval", trigger, "--late-bound-seconds", "600",
        "--max-offsets-per-trigger", str(max_offsets),
        "--master", "local[2]", "--conf", "spark.ui.enabled=false",
        *[arg for item in job_conf for arg in ("--conf", item)],
        *job_args,
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'plugins'}",
        "PAYMENTS_PAN_TOKEN_KEY": "bench-only-pan-token-key-0123456789",
        "PYSPARK_PYTHON": sys.executable,  # the workers need the project's packages
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    return command, env


def _warm_up(
    job: subprocess.Popen, bootstrap: str, names: dict[str, str], work: Path, today: str, warmup_seconds: int, warmup_rate: int
) -> None:
    """A first micro-batch with a few events (JVM, Python workers, state stores) before measuring;
    then, with ``warmup_seconds``, an unmeasured workload drained by the job."""
    from devtools.generator.kafka_stream import stream_to_kafka
    from devtools.generator.workload import WorkloadConfig, generate_day

    now_ms = int(time.time() * 1000)
    warm = [(f"warm-{i}".encode(), json.dumps(_warm_event(i, now_ms)).encode(), now_ms) for i in range(20)]
    stream_to_kafka(warm, bootstrap, names["transactions"], rate_per_second=1000, retime=False)
    deadline = time.time() + 900
    while not any(r["input_rows"] > 0 for r in metrics_records(work / "metrics")):
        if job.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"stream job did not start: see {work / 'job.log'}")
        time.sleep(1)
    if warmup_seconds <= 0:
        return
    # Other transaction ids (the generator derives them from the date), retimed to now like the rest.
    yesterday = (dt.date.fromisoformat(today) - dt.timedelta(days=1)).isoformat()
    warm_workload = generate_day(WorkloadConfig(date=yesterday, transactions=warmup_rate * warmup_seconds, seed=11))
    stream_to_kafka(
        warm_workload, bootstrap, names["transactions"], rate_per_second=warmup_rate,
        duration_s=warmup_seconds, fraud_topic=names["fraud_signals"],
    )  # fmt: skip
    warm_end = time.time()
    warm_ends = input_end_offsets(bootstrap, [names["transactions"], names["fraud_signals"]])
    while first_covering(metrics_records(work / "metrics"), warm_ends) is None:
        if job.poll() is not None or time.time() > warm_end + 300:
            raise RuntimeError(f"stream job did not drain the warm-up: see {work / 'job.log'}")
        time.sleep(1)


def _stop_job(job: subprocess.Popen, alerts: AlertReader, log) -> None:
    """The last alerts read, then the job stopped (SIGTERM, SIGKILL after 30 s) and its log closed."""
    time.sleep(2)
    alerts.stop_event.set()
    os.killpg(job.pid, signal.SIGTERM)
    try:
        job.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
    log.close()


def _drained_at(work: Path, warm_batches: int, ends: dict, produce_end: float, drain_seconds: float) -> float | None:
    """Commit time of the first batch that had consumed everything produced (None: not within the drain time)."""
    while time.time() - produce_end < drain_seconds:
        covering = first_covering(metrics_records(work / "metrics")[warm_batches:], ends)
        if covering is not None:
            return _epoch_s(covering["committed_at"])
        time.sleep(0.5)
    return None


def _latencies(work: Path, records: list[dict], alerts: AlertReader, first_measured_ms: float) -> tuple:
    """(the stream index table, index commit latencies, (produced, alert latency) pairs) of the measured rows."""
    import pyarrow.dataset as ds

    committed = {
        f"stream-b{r['batch_id']}": dt.datetime.fromisoformat(r["committed_at"].replace("Z", "+00:00")).timestamp() * 1000
        for r in records
    }
    index = ds.dataset(str(work / "indexes" / "stream_index"), format="parquet", partitioning="hive").to_table(
        columns=["transaction_id", "produced_at", "version"]
    )
    produced_ms = [t.timestamp() * 1000 for t in index.column("produced_at").to_pylist()]
    versions = index.column("version").to_pylist()
    ids = index.column("transaction_id").to_pylist()
    measured_rows = [
        (t, version, p)
        for t, version, p in zip(ids, versions, produced_ms, strict=True)
        if not t.startswith("warm-") and p >= first_measured_ms
    ]
    index_latency = [committed[version] - p for _t, version, p in measured_rows if version in committed]
    by_id = {t: p for t, _version, p in measured_rows}
    alert_pairs = [(by_id[tid], received - by_id[tid]) for tid, received in alerts.received.items() if tid in by_id]
    return index, index_latency, alert_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--trigger", default="200 milliseconds")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=20_000)
    parser.add_argument("--drain-seconds", type=float, default=300.0)
    parser.add_argument("--job-conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark conf for the job")
    parser.add_argument("--geo-jump-minutes", type=int, help="run with the rules file's geo window set to this")
    parser.add_argument("--warmup-seconds", type=int, default=0, help="produce (and drain) an unmeasured workload first")
    parser.add_argument("--warmup-rate", type=int, default=200, help="messages/s of the warm-up")
    parser.add_argument(
        "--job-arg",
        action="append",
        default=[],
        metavar="--OPTION=VALUE",
        help="extra stream job option, e.g. --job-arg=--dedup-horizon-seconds=60",
    )
    args = parser.parse_args(argv)
    sustained = []
    out = PROJECT_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    for rate in args.rates:
        work = out / f"stream_work_{rate}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        result = run_rate(
            rate,
            args.seconds,
            args.trigger,
            work,
            args.max_offsets_per_trigger,
            args.drain_seconds,
            tuple(args.job_conf),
            tuple(args.job_arg),
            args.geo_jump_minutes,
            args.warmup_seconds,
            args.warmup_rate,
        )
        if result["sustained"]:
            sustained.append(rate)
        shutil.rmtree(work / "indexes", ignore_errors=True)  # keep the logs and metrics, drop the data
        (out / f"stream_{rate}.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result))
        a, i = result["alert_latency_ms"], result["index_commit_latency_ms"]
        print(
            f"rate {rate}/s: produced {result['produced']['rate_per_second']}/s, indexed {result['indexed_rows']}, "
            f"alert p50/p95/p99 {a.get('p50')}/{a.get('p95')}/{a.get('p99')} ms, index p50/p95/p99 {i.get('p50')}/{i.get('p95')}/{i.get('p99')} ms, "
            f"lag max {result['lag_max']}, drained after {result['drained_seconds_after_produce']} s, state bytes {result['state_memory_bytes_first_last']}, "
            f"job CPU {result['job_cpu_seconds']} s ({result['job_cpu_ms_per_record']} ms/record, {result['job_cores_busy']} cores busy; "
            f"broker {result['broker_cores_busy']}, bench {result['bench_cores_busy']} cores busy; broker started in "
            f"{result['broker_start_seconds']} s, {result['broker_rss_mb']} MiB)",
            flush=True,
        )
    print(f"highest rate sustained (drained within {SUSTAINED_DRAIN_S:.0f} s): {max(sustained, default=None)}/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
