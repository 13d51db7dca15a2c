"""Generator CLI.

    python -m devtools.generator generate --date 2026-11-21 --transactions 1000000 --raw-uri .local/lake/raw [--seed 42]
        [--format gateway_a=parquet ...] [--rate malformed_rate=0.01 ...]
    python -m devtools.generator stream --date 2026-11-21 --transactions 10000 --rate-per-second 500
        [--bootstrap-servers 127.0.0.1:19092] [--topic payments.transactions]

``generate`` writes the raw drops of every source plus the ground truth and prints a
JSON summary. ``stream`` produces the same day's transaction records to Kafka in
produce order at a target rate (implemented by devtools.generator.kafka_stream).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time

from devtools.generator.drops import write_drops, write_ground_truth
from devtools.generator.workload import WorkloadConfig, generate_day

RATE_FIELDS = {f.name: f.type for f in dataclasses.fields(WorkloadConfig) if f.name not in ("date", "transactions", "seed")}


def _key_values(pairs: list[str], what: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--{what} {pair!r}: expected NAME=VALUE")
        result[key] = value
    return result


def _config(args: argparse.Namespace) -> WorkloadConfig:
    overrides = {}
    for key, value in _key_values(args.rate, "rate").items():
        if key not in RATE_FIELDS:
            raise SystemExit(f"--rate {key}: unknown (known: {', '.join(sorted(RATE_FIELDS))})")
        overrides[key] = int(value) if RATE_FIELDS[key] in (int, "int") else float(value)
    try:
        return WorkloadConfig(date=args.date, transactions=args.transactions, seed=args.seed, **overrides)
    except ValueError as exc:
        raise SystemExit(f"bad workload configuration: {exc}") from None


def _default_raw_uri() -> str:
    from payments_platform.profiles import get_profile

    return get_profile().lake.raw_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.generator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("generate", "stream"):
        p = sub.add_parser(name)
        p.add_argument("--date", required=True, help="YYYY-MM-DD")
        p.add_argument("--transactions", type=int, default=1000, help="unique valid transactions (>= 1000)")
        p.add_argument("--seed", type=int, default=42)
        p.add_argument("--rate", action="append", default=[], metavar="NAME=VALUE", help="override a WorkloadConfig rate")
    gen = sub.choices["generate"]
    gen.add_argument("--raw-uri", help="local folder for the raw drops (default: the profile's lake.raw_uri)")
    gen.add_argument("--format", action="append", default=[], metavar="SOURCE=FORMAT", help="jsonl, csv or parquet for a source")
    stream = sub.choices["stream"]
    stream.add_argument("--rate-per-second", type=float, default=1000.0)
    stream.add_argument("--bootstrap-servers")
    stream.add_argument("--topic")
    stream.add_argument("--fraud-topic")
    stream.add_argument("--limit", type=int, help="stop after this many records")
    stream.add_argument("--security", choices=("plaintext", "iam"), help="default: the profile's kafka.security")
    stream.add_argument("--region", help="AWS region for --security iam (default: the profile's)")
    args = parser.parse_args(argv)
    config = _config(args)

    if args.command == "generate":
        started = time.monotonic()
        workload = generate_day(config)
        generated = time.monotonic()
        raw_uri = args.raw_uri or _default_raw_uri()
        written = write_drops(workload, raw_uri, _key_values(args.format, "format"))
        truth_path = write_ground_truth(workload, raw_uri, written)
        summary = {
            "date": config.date,
            "raw_uri": raw_uri,
            "ground_truth": truth_path,
            "expected_counts": workload.truth["expected_counts"],
            "sources": {name: {k: v for k, v in info.items() if k != "location"} for name, info in written.items()},
            "seconds": {"generate": round(generated - started, 2), "write": round(time.monotonic() - generated, 2)},
        }
        print(json.dumps(summary, indent=1))
        return 0

    try:
        kafka_stream = importlib.import_module("devtools.generator.kafka_stream")
    except ModuleNotFoundError as exc:
        if exc.name != "devtools.generator.kafka_stream":
            raise
        print("stream: devtools.generator.kafka_stream is not available yet (owned by the streaming work)", file=sys.stderr)
        return 2
    workload = generate_day(config)
    options = {
        k: v
        for k, v in {
            "bootstrap_servers": args.bootstrap_servers,
            "topic": args.topic,
            "fraud_topic": args.fraud_topic,
            "limit": args.limit,
            "security": args.security,
            "region": args.region,
        }.items()
        if v is not None
    }
    result = kafka_stream.stream_to_kafka(workload, rate_per_second=args.rate_per_second, **options)
    if result is not None:
        print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
