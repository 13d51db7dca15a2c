"""The stream's rule operator at steady state: per-micro-batch cost of one bucket's state (issue 4).

    python bench/bench_rule_state.py [--rates 100 500 1000] [--buckets 4] [--batch-seconds 5]
        [--users 50000] [--batches 3] [--signal-rows]

``bench_stream.py`` runs for about a minute, far less than the rule state's retention
(card windows and user history reach back from the watermark, which trails produce
time by the dedup horizon), so it never sees the state a long-running stream carries.
This fills one bucket's state as a stream at ``rate`` transactions/s would hold it after
running for hours (the job's default bounds: dedup horizon 900 s, late bound 600 s,
signal window 300 s; the rules file's windows), then times micro-batches through the
real operator function (spark_apps.streaming.rule_state): unpickle the bucket, add the
batch and compute its signals, evict, pickle. Prints per rate the state entries, the
blob size (what the state store writes each batch per bucket) and the milliseconds per
batch and bucket; the buckets of a batch run in parallel on the executor cores.
With ``--signal-rows`` each transaction also comes with its ML output's row, as the stream's
join emits it: in the same batch for 95% of them, in the next batch for the rest.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT), str(PROJECT_ROOT / "plugins")]

DEDUP_HORIZON_S, LATE_BOUND_S, SIGNAL_WINDOW_S = 900, 600, 300
START_MS = 1_795_000_000_000


class FakeGroupState:
    """The parts of PySpark's GroupState the operator function uses."""

    def __init__(self, blob: bytes | None, watermark_ms: int) -> None:
        self.blob, self.watermark_ms = blob, watermark_ms

    @property
    def exists(self) -> bool:
        return self.blob is not None

    @property
    def get(self) -> tuple:
        return (self.blob,)

    def getCurrentWatermarkMs(self) -> int:
        return self.watermark_ms

    def update(self, value: tuple) -> None:
        self.blob = value[0]


def transaction(rng: random.Random, i: int, t_ms: int, users: int) -> dict:
    user = rng.randrange(users)
    return {
        "row_kind": "txn",
        "event_time": pd.Timestamp(t_ms, unit="ms", tz="UTC"),
        "transaction_id": f"txn-{i:012d}",
        "user_id": f"user-{user:07d}",
        "card_token": f"tok_{user:07d}_{rng.randrange(2)}",
        "country": rng.choice(("US", "US", "US", "GB", "DE", "FR")),
        "device_id": f"dev-{user:07d}-{rng.randrange(3)}",
        "amount": Decimal(rng.randrange(100, 50_000)) / 100,
        "currency": "USD",
        "kafka_partition": 0,
        "kafka_offset": i,
    }


def run_rate(rate: int, buckets: int, batch_s: int, users: int, batches: int, signal_rows: bool = False) -> dict:
    from spark_apps.fraud_rules import load_rules
    from spark_apps.streaming.rule_state import BucketState, RuleWindows, make_rule_state_function

    windows = RuleWindows.from_rules(load_rules(), LATE_BOUND_S + SIGNAL_WINDOW_S)
    update = make_rule_state_function(windows)
    rng = random.Random(rate)
    per_bucket = rate / buckets  # transactions/s this bucket receives
    users_here = max(1, users // buckets)
    now_ms = START_MS + 6 * 3_600_000  # the stream has run for 6 hours
    # Steady state: every transaction of the last two hours added (more than any window keeps), then evicted.
    bucket = BucketState()
    step_ms = 1000 / per_bucket
    i = 0
    t = now_ms - 2 * 3_600_000
    while t < now_ms:
        row = transaction(rng, i, int(t), users_here)
        card = row["card_token"]
        bucket.add(int(t), row["transaction_id"], card, row["user_id"], row["country"], row["device_id"], row["amount"], "USD")
        i += 1
        t += step_ms
    bucket.evict(now_ms - DEDUP_HORIZON_S * 1000, windows)
    state = FakeGroupState(bucket.dump(), now_ms - DEDUP_HORIZON_S * 1000)
    timings = []
    signals_next: list[dict] = []  # ML outputs arriving a batch after their transaction
    for b in range(batches):
        rows = []
        start = now_ms + b * batch_s * 1000
        for k in range(int(per_bucket * batch_s)):
            rows.append(transaction(rng, i, int(start + k * step_ms), users_here))
            i += 1
        if signal_rows:
            late_from = int(len(rows) * 0.95)
            signals = [{**row, "row_kind": "signal"} for row in rows]
            rows += signals_next + signals[:late_from]
            signals_next = signals[late_from:]
        frame = pd.DataFrame(rows)
        state.watermark_ms = start + batch_s * 1000 - DEDUP_HORIZON_S * 1000
        began = time.perf_counter()
        out = list(update(("bucket",), iter([frame]), state))
        timings.append((time.perf_counter() - began) * 1000)
        assert len(out[0]) == len(frame)
    final = BucketState.load(state.blob)
    return {
        "rate_txn_per_s": rate,
        "buckets": buckets,
        "batch_seconds": batch_s,
        "rows_per_bucket_batch": int(per_bucket * batch_s),
        "signal_rows": signal_rows,
        "card_entries": sum(map(len, final.cards.values())),
        "user_entries": sum(map(len, final.users.values())),
        "blob_mb": round(len(state.blob) / 2**20, 1),
        "ms_per_batch_and_bucket": [round(t) for t in timings],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 500, 1000], help="transactions/s of the whole stream")
    parser.add_argument("--buckets", type=int, default=4, help="rule buckets (the bench stream runs with 4)")
    parser.add_argument("--batch-seconds", type=int, default=5)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--signal-rows", action="store_true", help="each transaction's ML output row too (see above)")
    args = parser.parse_args(argv)
    for rate in args.rates:
        result = run_rate(rate, args.buckets, args.batch_seconds, args.users, args.batches, args.signal_rows)
        print(json.dumps(result))
        print(
            f"rate {rate} txn/s, {args.buckets} buckets: per bucket {result['card_entries']} card + {result['user_entries']} "
            f"user entries, blob {result['blob_mb']} MB, ms per batch {result['ms_per_batch_and_bucket']} "
            f"({result['rows_per_bucket_batch']} rows)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
