"""Run the platform's daily pipeline on this machine (see scripts/run_local.sh).

1. generate one day of payments (raw drops in every format + ground truth);
2. mark the day's drops complete (what the upstream drop jobs do in production);
3. run ``payments_daily_index`` for that day with ``dag.test()`` (real DAG,
   real Spark jobs, real Soda gate, embedded catalog);
4. print the partitions published in the embedded catalog, with row counts.

A failure names the stage and the log to read, and exits non-zero; versions that did
not pass their gate are never published.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(name: str, command: list[str], log: Path) -> None:
    print(f"[run] {name} ...", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        sys.exit(f"[run] FAILED at stage '{name}' (exit {code}). Full log: {log}\n{tail}")
    print(f"[run] {name}: ok (log: {log})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--date", default=(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat())
    parser.add_argument("--transactions", type=int, default=20_000)
    args = parser.parse_args()

    from payments_platform.profiles import get_profile
    from payments_platform.publishing import get_publisher
    from payments_platform.sensors import ready_marker_uri

    profile = get_profile()
    logs = Path(os.environ.get("PAYMENTS_LOCAL_DIR", ROOT / ".local")) / "run-logs"
    stage(
        "generate the day's raw drops",
        [
            sys.executable,
            "-m",
            "spark_apps.generator",
            "generate",
            "--date",
            args.date,
            "--transactions",
            str(args.transactions),
            "--raw-uri",
            profile.lake.raw_uri,
        ],
        logs / "generate.log",
    )
    marker = Path(ready_marker_uri(profile.lake.raw_uri, args.date))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"dt": args.date, "complete": True}))
    stage(
        "payments_daily_index (dag.test through Airflow)",
        [sys.executable, "-m", "payments_platform.local_runner", "payments_daily_index", "--date", args.date],
        logs / "payments_daily_index.log",
    )

    import duckdb

    publisher = get_publisher(profile)
    print(f"\n[run] published partitions for dt={args.date} (embedded catalog {profile.catalog.embedded_path}):")
    with duckdb.connect(profile.catalog.embedded_path, read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, location FROM main.catalog_partitions WHERE dt = ? ORDER BY table_name", [args.date]
        ).fetchall()
        for table, location in rows:
            count = con.execute(
                f"SELECT count(*) FROM read_parquet('{location}/*.parquet', hive_partitioning = false)"
            ).fetchone()[0]
            print(f"  {table:28} {count:>10,} rows  {location}")
    if not rows:
        print("  (none)")
        return 1
    del publisher
    return 0


if __name__ == "__main__":
    sys.exit(main())
