"""kill -9 of the streaming job in the middle of a run, then a restart: the index equals the ground truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.streaming.helpers import consume_all, epoch_ms, produce, txn

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def job_command(kafka_broker, topics: dict, tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "spark_apps.jobs.stream_index",
        "--bootstrap", kafka_broker.bootstrap,
        "--transactions-topic", topics["transactions"],
        "--fraud-signals-topic", topics["fraud_signals"],
        "--alerts-topic", topics["fraud_alerts"],
        "--dead-letter-topic", topics["dead_letter"],
        "--raw-uri", str(tmp_path / "raw"),
        "--index-uri", str(tmp_path / "indexes"),
        "--checkpoint-uri", str(tmp_path / "checkpoints"),
        "--metrics-uri", str(tmp_path / "metrics"),
        "--master", "local[2]",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.ui.enabled=false",
        *extra,
    ]  # fmt: skip


def start_job(command: list[str], log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": f"{PROJECT_ROOT}:{PROJECT_ROOT / 'plugins'}",
        "PAYMENTS_PAN_TOKEN_KEY": "test-only-pan-token-key-0123456789",
    }
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def latest_batch(tmp_path: Path) -> dict | None:
    path = tmp_path / "metrics" / "stream" / "stream_index" / "latest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def planned_batches(tmp_path: Path) -> tuple[int, int]:
    """(newest batch id in the offset log, newest committed batch id); -1 when none."""
    checkpoint = tmp_path / "checkpoints" / "stream_index"

    def newest(folder: str) -> int:
        ids = [int(p.name) for p in (checkpoint / folder).glob("[0-9]*") if p.name.isdigit()]
        return max(ids, default=-1)

    return newest("offsets"), newest("commits")


def wave(first: int, count: int, base_ms: int) -> list:
    """``count`` transactions of distinct users; every 10th is resent (a duplicate)."""
    messages = []
    for n in range(first, first + count):
        event = txn(f"t-{n:04d}", f"2026-11-21T10:{n // 60 % 60:02d}:{n % 60:02d}Z", user=f"u-{n}", pan=f"4{n:015d}")
        messages.append((event["transaction_id"], event, base_ms + n * 1000))
        if n % 10 == 0:
            messages.append((event["transaction_id"], event, base_ms + n * 1000 + 1))
    return messages


def test_kill_9_mid_run_then_restart_gives_every_transaction_exactly_once(spark, kafka_broker, kafka_topics, tmp_path):
    base = epoch_ms("2026-11-21T10:00:00Z")
    burst_pan = "4000000000000002"
    burst = [
        (f"t-b{i}", txn(f"t-b{i}", f"2026-11-21T11:00:{10 * i:02d}Z", user="u-burst", pan=burst_pan), base + 3_600_000 + i)
        for i in range(5)
    ]
    produce(kafka_broker.bootstrap, kafka_topics["transactions"], wave(0, 40, base))
    log_path = tmp_path / "job.log"
    job = start_job(job_command(kafka_broker, kafka_topics, tmp_path, "--trigger-interval", "1 second"), log_path)
    try:
        deadline = time.monotonic() + 1200  # JVM start + first batch; minutes on a loaded 2-core box
        while (latest_batch(tmp_path) or {}).get("input_rows", 0) == 0:
            assert job.poll() is None, f"job exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no batch committed in time:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.5)
        _planned, committed = planned_batches(tmp_path)
        produce(kafka_broker.bootstrap, kafka_topics["transactions"], wave(40, 40, base) + burst)
        # Kill while the micro-batch holding the new records is planned (in the offset log) and running.
        deadline = time.monotonic() + 600
        while planned_batches(tmp_path)[0] <= committed:
            assert job.poll() is None, f"job exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no micro-batch planned for the second wave:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(30)
    produce(kafka_broker.bootstrap, kafka_topics["transactions"], wave(80, 20, base))
    restart = start_job(job_command(kafka_broker, kafka_topics, tmp_path, "--available-now"), log_path)
    assert restart.wait(1800) == 0, log_path.read_text()[-3000:]  # generous: a loaded 2-core box

    index_df = spark.read.parquet(str(tmp_path / "indexes" / "stream_index"))
    ids = [r.transaction_id for r in index_df.select("transaction_id").collect()]
    expected = {f"t-{n:04d}" for n in range(100)} | {f"t-b{i}" for i in range(5)}
    assert len(ids) == len(expected), "a transaction was indexed twice or lost"
    assert set(ids) == expected
    alerted = {m["key"] for m in consume_all(kafka_broker.bootstrap, kafka_topics["fraud_alerts"])}
    assert {"t-b3", "t-b4"} <= alerted  # 4th and 5th charge on the card within 60 s: VELOCITY
