"""The stream and the batch job flag exactly the same transactions on the same traffic.

Hand-made traffic, not the generator: the patterns the rules exist for, with cards shared
across users (the stolen-card pattern) and users across cards. The same events go to the
batch index job as a raw drop and to the stream through Kafka; the rule flags of every
transaction must agree.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from spark_apps.fraud_rules import load_rules
from spark_apps.jobs.batch_index import run_batch_index
from tests.streaming.helpers import PAN_KEY, epoch_ms, job_options, produce, run_available_now, txn

pytestmark = [pytest.mark.kafka, pytest.mark.spark, pytest.mark.slow]

DATE = "2026-11-21"
START = dt.datetime(2026, 11, 21, 10, 0, 0, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    return (START + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def traffic() -> list[dict]:
    events = []
    stolen = "4000000000000002"
    # One card, twenty users, twenty seconds: VELOCITY from the 4th charge on (17 of 20).
    events += [txn(f"stolen-{i:02d}", at(i), user=f"victim-{i:02d}", pan=stolen, amount="25.00") for i in range(20)]
    # Card testing by three users on one card: six charges of 1.00 within a minute.
    tested = "5500000000000004"
    events += [txn(f"test-{i}", at(100 + 8 * i), user=f"tester-{i % 3}", pan=tested, amount="1.00") for i in range(6)]
    # A user crossing countries within the hour, on two cards of their own.
    events += [
        txn("geo-1", at(200), user="traveller", pan="4111111111111111", country="US"),
        txn("geo-2", at(200 + 30 * 60), user="traveller", pan="4012888888881881", country="FR"),
        txn("geo-3", at(200 + 120 * 60), user="traveller", pan="4012888888881881", country="DE"),  # 90 min later: no jump
    ]
    # A user on four devices (and one card per device).
    cards = ["4222222222222", "4917610000000000", "4484070000000000", "4035501000000008"]
    events += [
        txn(f"dev-{i}", at(400 + 60 * i), user="churner", device=f"device-{i}", pan=cards[i], amount="30.00") for i in range(4)
    ]
    # High amounts, and a quiet user with one card.
    events += [txn("big-1", at(500), user="spender", amount="7500.00", pan="6011000990139424")]
    events += [txn(f"quiet-{i}", at(600 + 120 * i), user="quiet", pan="3530111333300000") for i in range(3)]
    # Two users sharing one card, three charges each, 10 s apart: the card crosses 3 at its 4th charge.
    shared = "378282246310005"
    events += [txn(f"shared-{i}", at(700 + 10 * i), user=("alice", "bob")[i % 2], pan=shared) for i in range(6)]
    return events


def test_stream_and_batch_flag_the_same_transactions(spark, kafka_broker, kafka_topics, tmp_path):
    events = traffic()
    raw = tmp_path / "raw"
    drop = raw / "gateway_a" / f"dt={DATE}"
    drop.mkdir(parents=True)
    (drop / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = load_rules()
    started = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)
    result = run_batch_index(
        spark,
        DATE,
        "run-1",
        raw_uri=str(raw),
        index_uri=str(tmp_path / "batch"),
        quarantine_uri=str(tmp_path / "quarantine"),
        key=PAN_KEY,
        rules=rules,
        started_at=started,
    )
    batch = {
        r.transaction_id: sorted(r.rule_flags)
        for r in spark.read.parquet(result["index_location"]).select("transaction_id", "rule_flags").collect()
    }

    # The stream: each event produced 2 s after it happened, in event order.
    messages = [(e["transaction_id"], e, epoch_ms(e["timestamp"]) + 2000) for e in events]
    produce(kafka_broker.bootstrap, kafka_topics["transactions"], sorted(messages, key=lambda m: m[2]))
    options = job_options(kafka_broker, kafka_topics, tmp_path)
    run_available_now(spark, options, rules)
    stream = {
        r.transaction_id: sorted(r.rule_flags)
        for r in spark.read.parquet(f"{options.index_uri}/stream_index").select("transaction_id", "rule_flags").collect()
    }

    assert len(batch) == len(events)
    assert stream == batch
    # And the flags are the ones the traffic was made for.
    velocity = {t for t, flags in batch.items() if "VELOCITY" in flags}
    assert {t for t in velocity if t.startswith("stolen-")} == {f"stolen-{i:02d}" for i in range(3, 20)}
    assert {t for t in velocity if t.startswith("shared-")} == {"shared-3", "shared-4", "shared-5"}
    assert {t for t, flags in batch.items() if "CARD_TESTING" in flags} == {"test-4", "test-5"}
    assert {t for t, flags in batch.items() if "GEO_JUMP" in flags} == {"geo-2"}
    assert {t for t, flags in batch.items() if "DEVICE_CHURN" in flags} == {"dev-3"}
    assert {t for t, flags in batch.items() if "HIGH_AMOUNT" in flags} == {"big-1"}
