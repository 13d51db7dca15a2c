# ruff: noqa: E402  (imports follow the sys.path setup for running as a script)
"""Benchmark the daily Spark jobs (batch index, aggregate index, business indexes) run exactly as
Airflow runs them on this machine: ``spark-submit`` with the local profile's Spark settings
(master, ``spark.driver.memory``, shuffle partitions, the JVM jars: the same
``spark_jobs.spark_conf`` / ``conf_flags`` the ``LocalSparkSubmitOperator`` uses).

    source scripts/env.sh
    python bench/bench_indexes.py                    # 10,000 and 100,000 transactions per day
    python bench/bench_indexes.py --sizes 1000000

For each size: generate two consecutive days, build both batch indexes, then the aggregate index
for day 1 (empty previous version) and day 2 (over day 1: carry-forward + audit), and every
business index for day 2. Each job's wall seconds (JVM start included) and the peak resident
memory of its process tree are printed, with per-index seconds from the manifests. Day 2's
reconciliation status counts are compared with the generator's ground truth, and the fraud
index's precision/recall against the injected fraud patterns is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

from devtools.generator import WorkloadConfig, generate_day, read_ground_truth, write_drops, write_ground_truth
from spark_apps import lake

DAY1, DAY2 = "2026-11-19", "2026-11-20"


PEAK_RSS_MB: dict[str, float] = {}


def submit_command(module: str, args: list[str]) -> list[str]:
    """The job's ``spark-submit`` command as the local profile's LocalSparkSubmitOperator builds it."""
    from payments_platform.profiles import load_profile
    from payments_platform.spark_jobs import SparkJob, conf_flags, spark_conf

    spark = load_profile("local").spark
    entrypoint = module.rsplit(".", 1)[1] + ".py"
    job = SparkJob(name=entrypoint.removesuffix(".py"), entrypoint=entrypoint)
    spark_submit = Path(sys.executable).with_name("spark-submit")
    return [str(spark_submit), "--master", spark.master or "local[2]", *conf_flags(spark_conf(spark, job)),
            f"{spark.entrypoint_uri}/{entrypoint}", *args]  # fmt: skip


def _tree_rss_mb(process) -> float:
    import psutil

    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total / 2**20


def run_job(module: str, args: list[str], label: str | None = None) -> tuple[float, list[dict]]:
    import psutil

    from payments_platform.spark_jobs import spark_submit_env

    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(submit_command(module, args), cwd=PROJECT_ROOT, env=spark_submit_env(), stdout=out, stderr=err)
        watched, peak = psutil.Process(process.pid), 0.0
        while process.poll() is None:
            peak = max(peak, _tree_rss_mb(watched))
            time.sleep(0.5)
        seconds = time.monotonic() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"{module} failed")
    PEAK_RSS_MB[label or module] = round(peak)
    manifests = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return seconds, manifests


def bench(size: int, root: Path) -> dict:
    raw, index, quarantine, metrics = (str(root / name) for name in ("raw", "indexes", "quarantine", "metrics"))
    PEAK_RSS_MB.clear()
    batch_seconds = {}
    for seed, date in ((1, DAY1), (2, DAY2)):
        workload = generate_day(WorkloadConfig(date=date, transactions=size, seed=seed))
        write_ground_truth(workload, raw, write_drops(workload, raw))
        del workload
        batch_seconds[date], _ = run_job(
            "spark_apps.jobs.batch_index",
            ["--date", date, "--version", "b1", "--raw-uri", raw, "--index-uri", index, "--quarantine-uri", quarantine],
            label=f"batch_index {date}",
        )
    batch = {date: lake.version_location(index, "batch_index", date, "b1") for date in (DAY1, DAY2)}
    common = ["--index-uri", index, "--raw-uri", raw]
    seconds_day1, (agg1,) = run_job(
        "spark_apps.jobs.aggregate_index",
        ["--date", DAY1, "--version", "a1", *common, "--batch-index-location", batch[DAY1]],
        label="aggregate_index day 1",
    )
    seconds_day2, (agg2,) = run_job(
        "spark_apps.jobs.aggregate_index",
        [
            "--date",
            DAY2,
            "--version",
            "a2",
            *common,
            "--batch-index-location",
            batch[DAY2],
            "--previous-aggregate-location",
            agg1["location"],
        ],
        label="aggregate_index day 2",
    )
    seconds_business, manifests = run_job(
        "spark_apps.jobs.business_indexes",
        [
            "--index",
            "all",
            "--date",
            DAY2,
            "--version",
            "i2",
            *common,
            "--metrics-uri",
            metrics,
            "--aggregate-location",
            agg2["location"],
        ],
        label="business_indexes all",
    )
    by_index = {m["table"]: m for m in manifests}
    truth = read_ground_truth(raw, DAY2)
    expected = {k: v for k, v in truth["reconciliation"]["status_counts"].items() if v}
    expected["DUPLICATE_SETTLEMENT"] = expected.get("DUPLICATE_SETTLEMENT", 0) * 2  # + the second lines
    recon = by_index["reconciliation_index"]["counts"]["by_match_status"]

    import pyarrow.parquet as pq

    flagged = set(pq.read_table(by_index["fraud_index"]["location"], columns=["transaction_id"]).column(0).to_pylist())
    patterns = [p for p in truth["fraud_patterns"].values() if isinstance(p, dict)]
    injected = set().union(*(set(p["transaction_ids"]) for p in patterns))
    hits = flagged & injected
    return {
        "transactions_per_day": size,
        "batch_index_s": {date: round(seconds, 1) for date, seconds in batch_seconds.items()},
        "peak_rss_mb": dict(PEAK_RSS_MB),
        "aggregate_day1_s": round(seconds_day1, 1),
        "aggregate_day2_s": round(seconds_day2, 1),
        "aggregate_day2_rows": agg2["rows"],
        "audit_rows_day2": sum(
            json.loads(Path(agg2["audit_location"], "_manifest.json").read_text())["counts"]["by_field"].values()
        ),
        "business_all_s": round(seconds_business, 1),
        "per_index_s": {name: m["seconds"] for name, m in by_index.items()},
        "reconciliation_equals_truth": recon == expected,
        "fraud_precision": round(len(hits) / len(flagged), 3) if flagged else None,
        "fraud_recall_vs_all_injected": round(len(hits) / len(injected), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    from payments_platform.profiles import load_profile

    spark_settings = {
        k: v for k, v in load_profile("local").spark.conf.items() if k.startswith(("spark.driver", "spark.sql.shuffle"))
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"jobs run by spark-submit with the local profile's settings {spark_settings}"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-indexes-") as folder:
            print(json.dumps(bench(size, Path(folder)), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
