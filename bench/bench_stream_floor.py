"""What the stream benchmark's surroundings cost at a rate, with no Spark job (issue 4).

    flock /tmp/payments-bench.lock python bench/bench_stream_floor.py [--rates 1000 5000 10000] [--seconds 60]

For each rate, the same setup as ``bench_stream.py`` without the job: a fresh embedded
Tansu broker with the same topics, the same generated workload (transactions and their
ML outputs, retimed to the present) produced by the same producer at that total rate,
and, in a separate process standing in for the job, the job's own Kafka reader
(``KafkaDriverStreamReader``, one per input topic) reading a batch from each topic every
200 ms (the job's trigger) and doing nothing else.

Prints, per rate: the rate the producer reached, the records the reader got, the latency
from the Kafka produce timestamp to the reader holding the record (p50 / p95 / p99: the
floor under any micro-batch job on this broker), and the CPU of the broker, of the
producer and of the reader as cores busy over the produce span. Whatever the broker and
the producer take is not available to the job on this 2-core machine. Writes the JSON to
bench/out/stream_floor_<rate>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins"), str(PROJECT_ROOT / "bench")]

from bench_stream import TOPICS, _own_cpu_seconds, host_speed, percentiles, tree_cpu_seconds  # noqa: E402

TRIGGER_S = 0.2


def read_loop(bootstrap: str, topics: list[str], out_path: Path, stop_path: Path) -> None:
    """The stand-in job: read each topic every trigger until ``stop_path`` exists, then write
    (records read, produce-to-read latencies in ms) to ``out_path``."""
    from spark_apps.kafka.source import KafkaDriverStreamReader, KafkaOptions

    readers = [
        KafkaDriverStreamReader(
            KafkaOptions.parse({"bootstrap.servers": bootstrap, "subscribe": topic, "startingOffsets": "earliest"})
        )
        for topic in topics
    ]
    positions = [reader.initialOffset() for reader in readers]
    latencies: list[float] = []
    while not stop_path.exists():
        began = time.monotonic()
        for i, reader in enumerate(readers):
            batches, positions[i] = reader.read(positions[i])
            read_ms = time.time() * 1000
            for batch in batches:
                stamps = batch.column("timestamp").cast("int64").to_pylist()  # microseconds
                latencies.extend(read_ms - s / 1000 for s in stamps)
        time.sleep(max(0.0, TRIGGER_S - (time.monotonic() - began)))
    for reader in readers:
        reader.stop()
    out_path.write_text(json.dumps({"records": len(latencies), "latencies_ms": latencies}))


def run_rate(rate: int, seconds: int, work: Path) -> dict:
    from spark_apps.generator.kafka_stream import prepare_messages, stream_to_kafka
    from spark_apps.generator.workload import WorkloadConfig, generate_day
    from spark_apps.kafka.broker import EmbeddedBroker

    today = dt.datetime.now(dt.UTC).date().isoformat()
    config = WorkloadConfig(
        date=today, transactions=rate * seconds, seed=7, high_amount_rate=0.01, geo_jump_rate=0.002, card_testing_rate=0.0005
    )
    workload = generate_day(config)
    names = {kind: f"bench.{kind}" for kind in TOPICS}
    messages = prepare_messages(workload, names["transactions"], names["fraud_signals"])  # as bench_stream.py
    out_path, stop_path = work / "reader.json", work / "reader.stop"
    with EmbeddedBroker(topics={names[k]: n for k, n in TOPICS.items()}, log_path=work / "broker.log") as broker:
        command = [sys.executable, __file__, "--read", broker.bootstrap, names["transactions"], names["fraud_signals"]]
        command += ["--out", str(out_path), "--stop", str(stop_path)]
        env = {**os.environ, "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'plugins'}"}
        reader = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)
        try:
            time.sleep(3)  # the reader's consumers connect and assign
            load_start = os.getloadavg()
            reader_cpu, broker_cpu = tree_cpu_seconds(reader.pid), tree_cpu_seconds(broker.process.pid)
            own_cpu, clock = _own_cpu_seconds(), time.time()
            produced = stream_to_kafka(
                messages,
                broker.bootstrap,
                names["transactions"],
                rate_per_second=rate,
                duration_s=seconds,
                fraud_topic=names["fraud_signals"],
            )
            time.sleep(2 * TRIGGER_S + 1)  # the last reads
            wall = time.time() - clock
            reader_cpu = tree_cpu_seconds(reader.pid) - reader_cpu
            broker_cpu = tree_cpu_seconds(broker.process.pid) - broker_cpu
            own_cpu = _own_cpu_seconds() - own_cpu
            stop_path.write_text("stop")
            reader.wait(60)
        finally:
            if reader.poll() is None:
                reader.kill()
    read = json.loads(out_path.read_text())
    return {
        "rate_target": rate,
        "seconds": seconds,
        "produced": produced,
        "records_read": read["records"],
        "produce_to_read_latency_ms": percentiles(read["latencies_ms"]),
        "broker_cores_busy": round(broker_cpu / wall, 2),
        "producer_cores_busy": round(own_cpu / wall, 2),
        "reader_cores_busy": round(reader_cpu / wall, 2),
        "left_for_the_job_cores": round(2 - (broker_cpu + own_cpu) / wall, 2),
        "load_average_at_start": load_start,
        "load_average": os.getloadavg(),
        "host": host_speed(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--read", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "TOPIC"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stop", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.read:
        read_loop(args.read[0], args.read[1:], args.out, args.stop)
        return 0
    out = PROJECT_ROOT / "bench" / "out"
    for rate in args.rates:
        work = out / f"stream_floor_work_{rate}"
        work.mkdir(parents=True, exist_ok=True)
        for stale in (work / "reader.json", work / "reader.stop"):
            stale.unlink(missing_ok=True)
        result = run_rate(rate, args.seconds, work)
        (out / f"stream_floor_{rate}.json").write_text(json.dumps(result, indent=2))
        lat = result["produce_to_read_latency_ms"]
        print(
            f"rate {rate}/s: produced {result['produced']['rate_per_second']}/s ({result['produced']['total']}), "
            f"read {result['records_read']}, produce->read p50/p95/p99 {lat.get('p50')}/{lat.get('p95')}/{lat.get('p99')} ms; "
            f"cores busy: broker {result['broker_cores_busy']}, producer {result['producer_cores_busy']}, "
            f"reader {result['reader_cores_busy']}; left for the job {result['left_for_the_job_cores']} of 2",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
