"""How long the embedded broker keeps serving reads under steady production (no Spark).

    python bench/bench_broker_reads.py [--seconds 150] [--pause 5] [--record-bytes 300]

Produces ~1,000 records/s to a 2-partition topic of the embedded Tansu broker while the
stream source's driver reader (spark_apps.kafka.source.KafkaDriverStreamReader) reads a
batch every ``--pause`` seconds, as the streaming job does. Prints one line per read
(records, read time, end offsets, records sent so far). A read that gets no record below
the high watermarks for ``--read-timeout`` seconds is a stall: the script then opens a
fresh reader to tell a client-side from a broker-side stall. Findings: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]


def main(argv: list[str] | None = None) -> int:
    from confluent_kafka import Producer

    from spark_apps.kafka.broker import EmbeddedBroker
    from spark_apps.kafka.source import KafkaDriverStreamReader, KafkaOptions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--pause", type=float, default=5.0)
    parser.add_argument("--record-bytes", type=int, default=300)
    parser.add_argument("--read-timeout", type=float, default=15.0)
    args = parser.parse_args(argv)

    with EmbeddedBroker(topics={"reads": 2}, log_path=PROJECT_ROOT / "bench" / "out" / "broker_reads.log") as broker:
        stop, sent = threading.Event(), [0]

        def produce() -> None:
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "enable.idempotence": True})
            i = 0
            while not stop.is_set():
                for _ in range(10):
                    value = json.dumps({"i": i, "pad": "x" * args.record_bytes})
                    producer.produce("reads", key=f"k{i}", value=value, partition=i % 2)
                    i += 1
                producer.poll(0)
                time.sleep(0.01)
                sent[0] = i
            producer.flush(10)

        def reader():
            options = {"bootstrap.servers": broker.bootstrap, "subscribe": "reads", "startingOffsets": "earliest"}
            return KafkaDriverStreamReader(KafkaOptions.parse({**options, "readTimeoutMs": str(int(args.read_timeout * 1000))}))

        threading.Thread(target=produce, daemon=True).start()
        current = reader()
        position, started = current.initialOffset(), time.monotonic()
        try:
            while time.monotonic() - started < args.seconds:
                began = time.monotonic()
                try:
                    batches, end = current.read(position)
                except TimeoutError as stall:
                    print(f"{began - started:6.1f}s STALL {stall}; retrying with a fresh reader", flush=True)
                    current.stop()
                    current = reader()
                    continue
                rows = sum(b.num_rows for b in batches)
                print(
                    f"{began - started:6.1f}s read {rows} in {time.monotonic() - began:.2f}s, end {end}, sent {sent[0]}",
                    flush=True,
                )
                position = end
                time.sleep(args.pause)
        finally:
            stop.set()
            current.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
