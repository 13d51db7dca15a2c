"""A small generated day, pinned: its content hash, counts and a few exact records.

Everything the tests and benchmarks expect of a generated day (its ground truth, the indexes'
figures in tests/indexes/test_generated_day.py) follows from the order of the generator's random
draws. A refactor that reorders them (moves a step of ``generate_day`` or a draw inside one) gives
another, equally valid day: this test notices it. If the day changed on purpose, update the pins
here and say why in the commit. (A numpy upgrade may also change ``Generator`` streams.)
"""

from __future__ import annotations

import hashlib
import json

import pytest

from devtools.generator import WorkloadConfig, generate_day

CONFIG = WorkloadConfig(date="2026-11-21", transactions=1000, seed=11)  # the day of tests/indexes/test_generated_day.py
TABLES = ("transactions", "fraud_scores", "settlements", "merchants", "users", "policies", "fx_rates", "reconciliation_truth")
PINNED_SHA256 = "15889a2f622a662e2fa4c9d2a2e87d2c91c2930f3310ec0f7e6695563cc9e87a"


@pytest.fixture(scope="module")
def day():
    return generate_day(CONFIG)


def content_sha256(workload) -> str:
    """Of every table's rows (transactions in produce order), the ground truth and the side sources' lines."""
    digest = hashlib.sha256()
    for name in TABLES:
        digest.update(name.encode())
        digest.update(json.dumps(getattr(workload, name).to_pylist(), sort_keys=True).encode())
    digest.update(json.dumps(workload.truth, sort_keys=True).encode())
    digest.update(json.dumps(workload.side_raw_lines, sort_keys=True).encode())
    return digest.hexdigest()


def test_counts_of_the_pinned_day(day):
    assert day.truth["expected_counts"] == {
        "read": 1027,
        "indexed": 1000,
        "quarantined": 7,
        "duplicates": 20,
        "quarantined_by_reason": {
            "unparseable": 1,
            "missing_required_field": 1,
            "non_positive_amount": 1,
            "unknown_currency": 1,
            "invalid_timestamp": 1,
            "oversize_field": 1,
            "wrong_type": 1,
        },
        "read_by_source": {"gateway_a": 348, "gateway_b": 362, "gateway_c": 317},
        "side_source_unparseable_lines": {"fraud_scores": 1, "settlements": 1},
    }
    assert [day.fraud_scores.num_rows, day.settlements.num_rows, day.users.num_rows, day.merchants.num_rows] == [
        1030,
        867,
        54,
        20,
    ]


def test_exact_records_of_the_pinned_day(day):
    fields = ("transaction_id", "timestamp", "amount", "currency", "transaction_status", "source_name", "produce_ms")
    transactions = day.transactions
    first, last = (transactions.slice(i, 1).select(fields).to_pylist()[0] for i in (0, transactions.num_rows - 1))
    assert first == {
        "transaction_id": "tx-20261121-000000044",
        "timestamp": "2026-11-21T00:04:05.744Z",
        "amount": "26.43",
        "currency": "CAD",
        "transaction_status": "AUTHORIZED",
        "source_name": "gateway_b",
        "produce_ms": 1795219447689,
    }
    assert last == {
        "transaction_id": "tx-20261121-000000981",
        "timestamp": "2026-11-21T23:32:29.874Z",
        "amount": "41.00",
        "currency": "USD",
        "transaction_status": "AUTHORIZED",
        "source_name": "gateway_a",
        "produce_ms": 1795303976078,
    }
    assert day.settlements.slice(0, 1).to_pylist()[0] == {
        "statement_id": "STMT-BANK-20261121",
        "line_id": "ln-20261121-000000431",
        "statement_source": "BANK",
        "transaction_ref": "tx-20261121-000000489",
        "amount": "9.47",
        "currency": "USD",
        "fee": "0.57",
        "settled_at": "2026-11-22T15:11:57.080Z",
        "settlement_status": "SETTLED",
    }
    assert day.truth["duplicates"]["out_of_order_ids"] == [
        "tx-20261121-000000166",
        "tx-20261121-000000526",
        "tx-20261121-000000569",
        "tx-20261121-000000687",
        "tx-20261121-000000870",
    ]


def test_content_hash_of_the_pinned_day(day):
    assert content_sha256(day) == PINNED_SHA256
