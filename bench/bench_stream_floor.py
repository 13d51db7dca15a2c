"""What the stream benchmark's surroundings cost at a rate, with no stream job (issues 4, 23).

    flock /tmp/payments-bench.lock python bench/bench_stream_floor.py [--rates 1000 5000 10000] [--seconds 60] [--spark]

For each rate, the same setup as ``bench_stream.py`` without the job: a fresh local Apache
Kafka broker with the same topics, the same generated workload (transactions and their
ML outputs, retimed to the present) produced by the same producer at that total rate,
and, in a separate process standing in for the job, a plain Kafka consumer
(confluent-kafka) on both input topics that polls what is there every 200 ms (the job's
trigger) and does nothing else.

Prints, per rate: the rate the producer reached, the records the reader got, the latency
from the Kafka produce timestamp to the reader holding the record (p50 / p95 / p99: the
floor under any micro-batch job on this broker), and the CPU of the broker, of the
producer and of the reader as cores busy over the produce span. Whatever the broker and
the producer take is not available to the job on this 2-core machine. Writes the JSON to
bench/out/stream_floor_<rate>.json.

With ``--spark`` the stand-in job is a Spark Structured Streaming query instead: local[2],
the job's session settings, source (Spark's ``kafka`` source with the job's options, over
both topics), trigger and sink (``BatchKafkaSink``), and no transformation: ``foreachBatch`` forwards each
transaction's key to the alerts topic. The latency then ends when a consumer reads that
message, as the stream bench's alert latency does, so it is the floor of Spark's
micro-batch engine on this machine under any plan the job could run
(bench/out/stream_floor_spark_<rate>.json).
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
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "bench")]

from bench_stream import TOPICS, AlertReader, _own_cpu_seconds, host_speed, percentiles, rss_mb, tree_cpu_seconds  # noqa: E402

TRIGGER_MS = 200  # the job's trigger


def read_loop(bootstrap: str, topics: list[str], out_path: Path, stop_path: Path, trigger_ms: int = TRIGGER_MS) -> None:
    """The stand-in job: a consumer on ``topics`` from the beginning that takes what is there every
    trigger until ``stop_path`` exists, then writes (records read, produce-to-read latencies in ms)
    to ``out_path``."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "floor", "enable.auto.commit": False, "fetch.wait.max.ms": 50}
    )
    metadata = consumer.list_topics(timeout=10).topics
    consumer.assign([TopicPartition(t, p, 0) for t in topics for p in metadata[t].partitions])
    latencies: list[float] = []
    while not stop_path.exists():
        began = time.monotonic()
        while True:
            messages = consumer.consume(10_000, timeout=0)
            if not messages:
                break
            read_ms = time.time() * 1000
            latencies.extend(read_ms - m.timestamp()[1] for m in messages if m.error() is None)
        time.sleep(max(0.0, trigger_ms / 1000 - (time.monotonic() - began)))
    consumer.close()
    out_path.write_text(json.dumps({"records": len(latencies), "latencies_ms": latencies}))


def spark_passthrough(bootstrap: str, topics: list[str], alerts_topic: str, work: Path, trigger_ms: int = TRIGGER_MS) -> None:
    """The stand-in job with ``--spark``: the job's source, trigger and sink around an empty plan.
    Each alert's value is its transaction's Kafka produce time (ms), so the consumer computes
    the latency without a lookup."""
    from pyspark.sql import functions as F

    from spark_apps.jobs.stream_index import STREAM_CONF, StreamJobOptions, kafka_source_options
    from spark_apps.kafka.sink import BatchKafkaSink
    from spark_apps.session import build_session

    conf = {**STREAM_CONF, "spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"}
    spark = build_session("stream-floor", "local[2]", conf)
    sink = BatchKafkaSink(bootstrap, str(work / "checkpoint" / "_sent"))
    options = StreamJobOptions(bootstrap, *topics, alerts_topic, "unused", *(str(work / n) for n in ("r", "i", "c", "m")))
    stream_df = spark.readStream.format("kafka").options(**kafka_source_options(options, ",".join(topics))).load()

    def forward(batch_df, batch_id: int) -> None:
        keys_df = batch_df.filter(F.col("topic") == topics[0]).select(
            F.col("key").cast("string").alias("key"),
            F.floor(F.unix_micros("timestamp") / 1000).cast("string").alias("produced_ms"),
        )
        table = keys_df.toArrow()
        sink.send(
            alerts_topic, batch_id, zip(table.column("key").to_pylist(), table.column("produced_ms").to_pylist(), strict=True)
        )

    query = (
        stream_df.writeStream.foreachBatch(forward)
        .option("checkpointLocation", str(work / "checkpoint"))
        .trigger(processingTime=f"{int(trigger_ms)} milliseconds")
        .start()
    )
    query.awaitTermination()


def run_rate(rate: int, seconds: int, work: Path, spark: bool = False, trigger_ms: int = TRIGGER_MS) -> dict:
    from devtools.broker import EmbeddedBroker
    from devtools.generator.kafka_stream import prepare_messages, stream_to_kafka
    from devtools.generator.workload import WorkloadConfig, generate_day

    today = dt.datetime.now(dt.UTC).date().isoformat()
    config = WorkloadConfig(
        date=today, transactions=rate * seconds, seed=7, high_amount_rate=0.01, geo_jump_rate=0.002, card_testing_rate=0.0005
    )
    workload = generate_day(config)
    names = {kind: f"bench.{kind}" for kind in TOPICS}
    messages = prepare_messages(workload, names["transactions"], names["fraud_signals"])  # as bench_stream.py
    out_path, stop_path = work / "reader.json", work / "reader.stop"
    with EmbeddedBroker(topics={names[k]: n for k, n in TOPICS.items()}, log_path=work / "broker.log") as broker:
        command, env = _stand_in_command(spark, broker.bootstrap, names, work, out_path, stop_path, trigger_ms)
        log = open(work / "job.log", "wb")  # noqa: SIM115 - lives as long as the stand-in job
        reader = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        forwarded = AlertReader(broker.bootstrap, names["fraud_alerts"], keep_values=True) if spark else None
        try:
            if forwarded is not None:
                forwarded.start()
                _warm_up(forwarded, reader, broker.bootstrap, names["transactions"], stream_to_kafka)
            else:
                time.sleep(3)  # the reader's consumers connect and assign
            load_start = os.getloadavg()

            def usage() -> tuple[float, float, float, float]:
                """(clock, CPU seconds of the stand-in, of the broker, of this process)."""
                return time.time(), tree_cpu_seconds(reader.pid), tree_cpu_seconds(broker.process.pid), _own_cpu_seconds()

            start = usage()
            produced = stream_to_kafka(
                messages,
                broker.bootstrap,
                names["transactions"],
                rate_per_second=rate,
                duration_s=seconds,
                fraud_topic=names["fraud_signals"],
            )
            end = _wait_for_the_last_read(forwarded, reader, usage, trigger_ms)
            wall = end[0] - start[0]
            broker_started_s, broker_rss = broker.started_in_s or 0.0, rss_mb(broker.process.pid)
            reader_cpu, broker_cpu, own_cpu = (b - a for a, b in zip(start[1:], end[1:], strict=True))
            if forwarded is None:
                stop_path.write_text("stop")
                reader.wait(60)
        finally:
            if forwarded is not None:
                forwarded.stop_event.set()
            if reader.poll() is None:
                os.killpg(reader.pid, signal.SIGKILL)
            log.close()
    latencies = _latencies(forwarded, out_path)
    return {
        "trigger_ms": trigger_ms,
        "stand_in": "spark pass-through (source, foreachBatch, sink)" if spark else "plain consumer, no Spark",
        "rate_target": rate,
        "seconds": seconds,
        "produced": produced,
        "records_read": len(latencies),
        "produce_to_read_latency_ms": percentiles(latencies),
        "broker_cores_busy": round(broker_cpu / wall, 2),
        "broker_start_seconds": round(broker_started_s, 2),
        "broker_rss_mb": broker_rss,
        "producer_cores_busy": round(own_cpu / wall, 2),
        "reader_cores_busy": round(reader_cpu / wall, 2),
        "left_for_the_job_cores": round(2 - (broker_cpu + own_cpu) / wall, 2),
        "load_average_at_start": load_start,
        "load_average": os.getloadavg(),
        "host": host_speed(),
    }


def _stand_in_command(
    spark: bool, bootstrap: str, names: dict[str, str], work: Path, out_path: Path, stop_path: Path, trigger_ms: int
) -> tuple[list[str], dict[str, str]]:
    """The stand-in job's command line (Spark pass-through or plain reader) and its environment."""
    inputs = [names["transactions"], names["fraud_signals"]]
    if spark:
        options = [names["fraud_alerts"], "--out", str(work)]
        command = [sys.executable, __file__, "--spark-job", bootstrap, *inputs, *options]
    else:
        options = ["--out", str(out_path), "--stop", str(stop_path)]
        command = [sys.executable, __file__, "--read", bootstrap, *inputs, *options]
    env = {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'plugins'}",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    return [*command, "--trigger-ms", str(trigger_ms)], env


def _wait_for_the_last_read(forwarded: AlertReader | None, reader: subprocess.Popen, usage, trigger_ms: int) -> tuple:
    """Usage at the last read: the Spark stand-in until no new key for 15 s (duplicate ids are
    forwarded once; the span ends at the last new key), the plain reader after two triggers."""
    if forwarded is None:
        time.sleep(2 * trigger_ms / 1000 + 1)
        return usage()
    seen, end = len(forwarded.received), usage()
    while time.time() - end[0] < 15 and reader.poll() is None:
        time.sleep(1)
        if len(forwarded.received) != seen:
            seen, end = len(forwarded.received), usage()
    return end


def _latencies(forwarded: AlertReader | None, out_path: Path) -> list[float]:
    """Produce-to-read latencies (ms); each forwarded value is its transaction's produce time (ms)."""
    if forwarded is None:
        return json.loads(out_path.read_text())["latencies_ms"]
    return [t - float(forwarded.values[k]) for k, t in forwarded.received.items() if not k.startswith("warm-")]


def _warm_up(forwarded: AlertReader, job: subprocess.Popen, bootstrap: str, topic: str, stream_to_kafka) -> None:
    """Twenty events through the pass-through before measuring (JVM, Python workers, first plans)."""
    now_ms = int(time.time() * 1000)
    warm = [(f"warm-{i}".encode(), b"{}", now_ms) for i in range(20)]
    stream_to_kafka(warm, bootstrap, topic, rate_per_second=1000, retime=False)
    deadline = time.time() + 600
    while sum(k.startswith("warm-") for k in list(forwarded.received)) < 20:
        if job.poll() is not None or time.time() > deadline:
            raise RuntimeError("the Spark pass-through did not start: see its job.log")
        time.sleep(0.5)
    time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--spark", action="store_true", help="a Spark pass-through query as the stand-in job")
    parser.add_argument("--trigger-ms", type=int, default=TRIGGER_MS, help="the stand-in's trigger (the job's: 200)")
    parser.add_argument("--read", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "TOPIC"), help=argparse.SUPPRESS)
    parser.add_argument("--spark-job", nargs=4, metavar=("BOOTSTRAP", "TOPIC", "TOPIC", "ALERTS"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        read_loop(args.read[0], args.read[1:], args.out, args.stop, args.trigger_ms)
        return 0
    if args.spark_job:
        spark_passthrough(args.spark_job[0], args.spark_job[1:3], args.spark_job[3], args.out, args.trigger_ms)
        return 0
    out = PROJECT_ROOT / "bench" / "out"
    for rate in args.rates:
        trigger = "" if args.trigger_ms == TRIGGER_MS else f"_t{args.trigger_ms}"
        name = f"stream_floor_{'spark_' if args.spark else ''}{rate}{trigger}"
        work = out / f"{name}_work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        result = run_rate(rate, args.seconds, work, args.spark, args.trigger_ms)
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        lat = result["produce_to_read_latency_ms"]
        print(
            f"rate {rate}/s: produced {result['produced']['rate_per_second']}/s ({result['produced']['total']}), "
            f"read {result['records_read']}, produce->read p50/p95/p99 {lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms; "
            f"cores busy: broker {result['broker_cores_busy']}, producer {result['producer_cores_busy']}, "
            f"reader {result['reader_cores_busy']}; left for the job {result['left_for_the_job_cores']} of 2; "
            f"broker started in {result['broker_start_seconds']} s, {result['broker_rss_mb']} MiB",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
