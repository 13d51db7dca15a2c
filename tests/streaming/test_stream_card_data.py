"""Card data never leaves the stream in clear (issue 22, PCI DSS 3.3/3.4): card numbers grouped by
spaces or dashes in any field, CVVs under other names, IPv6 addresses, unparseable records on both
input topics. The tests' one scanner (tests/batch/pii_scan.py) reads everything the job wrote: the
stream index, its checkpoint and metrics, and both output topics, as messages and as the broker's
log segments on disk."""

from __future__ import annotations

import json

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps.fraud_rules import load_rules
from tests.batch.pii_scan import card_numbers_in, findings_in_file, findings_in_values, kafka_segment_records, scan_tree
from tests.streaming.helpers import PAN_KEY, consume_all, epoch_ms, job_options, produce, run_available_now, txn

pytestmark = [pytest.mark.kafka, pytest.mark.spark]

T0 = "2026-11-21T10:00:00Z"


def at(seconds: int) -> str:
    return f"2026-11-21T10:{seconds // 60:02d}:{seconds % 60:02d}Z"


def with_fields(record: dict, **fields) -> dict:
    return {**record, **fields}


def topic_segments(kafka_broker, topic: str) -> list:
    return sorted(p for folder in kafka_broker.log_dir.glob(f"{topic}-*") for p in folder.glob("*.log"))


def test_no_card_number_cvv_or_full_ip_leaves_the_stream(spark, kafka_broker, kafka_topics, tmp_path):
    import base64
    import hashlib
    import hmac

    base = epoch_ms(T0)
    records = [
        # valid: a grouped card, a card number typed into device_id, IPv6 and IPv4-mapped addresses
        with_fields(txn("t-1", at(0), user="u-1", pan="4111 1111 1111 1111", amount="7000.00"), ip="2001:db8::1"),
        with_fields(
            txn("t-2", at(1), user="u-2", pan="5500-0000-0000-0004", device="d-2 card 4012 8888-8888 1881"),
            ip="::ffff:203.0.113.9",
        ),
        with_fields(txn("t-3", at(2), user="u-3", pan="4111 1111-1111 1111"), ip="fe80::1%eth0"),
        # rejected (no user): its dead letter carries the record, masked
        with_fields(txn("t-4", at(3), user="", device="pos 3782-822463-10005 cvv=123"), ip="2001:db8:aa::7"),
    ]
    messages = [(r["transaction_id"], r, base + 100 * i) for i, r in enumerate(records)]
    broken = [
        '{"transaction_id":"t-5","pan":"4111 1111 1111 1111","CVV":"123","ip":"2001:db8::9","expiry":"07/2',
        'tx-6,u-1,4111-1111-1111-1111,"123",07/29,10.1.2.3,<garbled>',
        "t-7 card=5500 0000 0000 0004 cvc: 456",
    ]
    messages += [(None, text, base + 1000 + i) for i, text in enumerate(broken)]
    produce(kafka_broker.bootstrap, kafka_topics["transactions"], messages)
    produce(
        kafka_broker.bootstrap,
        kafka_topics["fraud_signals"],
        [
            ("t-1", '{"transaction_id":"t-1","note":"card 4111-1111-1111-1111 cvv2=999","fraud_score":"x', base + 50),
            # a parseable ML output whose free-text explanation holds a card number: masked in the index
            (
                "t-3",
                json.dumps(
                    {
                        "transaction_id": "t-3",
                        "fraud_score": "0.1000",
                        "model_version": "v1",
                        "explanations": "card 4111 1111 1111 1111 cvv: 321",
                        "inference_time": at(2),
                    }
                ),
                base + 150,
            ),
        ],
    )
    options = job_options(kafka_broker, kafka_topics, tmp_path)
    run_available_now(spark, options, load_rules())

    # The index rows: tokens of the normalized card (one per card however it was written), device
    # ids without the card number, addresses reduced to their networks.
    def token(pan: str) -> str:
        digest = hmac.new(PAN_KEY, pan.encode(), hashlib.sha256).digest()
        return "tok_v1_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")

    index_df = spark.read.parquet(f"{options.index_uri}/stream_index")
    assertDataFrameEqual(
        index_df.select("transaction_id", "device_id", "ip_masked", "card_last4", "card_token"),
        [
            ("t-1", "d-1", "2001:db8::/48", "1111", token("4111111111111111")),
            ("t-2", "d-2 card [pan ****1881]", "203.0.113.0/24", "0004", token("5500000000000004")),
            ("t-3", "d-1", "fe80::/48", "1111", token("4111111111111111")),
        ],
    )

    assert index_df.where("transaction_id = 't-3'").select("fraud_explanations").first()[0] == "card [pan ****1111] cvv: ***"

    alerts = consume_all(kafka_broker.bootstrap, kafka_topics["fraud_alerts"])
    dead = consume_all(kafka_broker.bootstrap, kafka_topics["dead_letter"])
    assert [a["key"] for a in alerts] == ["t-1"]
    assert len(dead) == 5  # t-4, three unparseable transactions, the unparseable ML output
    assert findings_in_values([m["value"] for m in alerts + dead], "messages") == []
    payloads = {m["value"]["payload_masked"] for m in dead}
    assert json.loads(next(p for p in payloads if '"t-4"' in p))["device_id"] == "pos [pan ****0005] cvv=***"
    assert json.loads(next(p for p in payloads if '"t-4"' in p))["ip"] == "2001:db8:aa::/48"
    assert {
        '{"transaction_id":"t-5","pan":"[pan ****1111]","CVV":"***","ip":"2001:db8::/48","expiry":"07/2',
        "tx-6,u-1,[pan ****1111],***,07/**,10.1.2.0/24,<garbled>",
        "t-7 card=[pan ****0004] cvc: ***",
        '{"transaction_id":"t-1","note":"card [pan ****1111] cvv2=***","fraud_score":"x',
    } <= payloads

    # Everything the job wrote on disk: index, checkpoint (offsets, commits, state changelogs), metrics.
    findings, scanned = scan_tree(tmp_path)
    assert scanned > 10 and findings == []
    # The output topics as the broker stored them (lz4 record batches, decoded by the scanner) ...
    segments = topic_segments(kafka_broker, kafka_topics["dead_letter"]) + topic_segments(
        kafka_broker, kafka_topics["fraud_alerts"]
    )
    assert segments and [f for path in segments for f in findings_in_file(path)] == []
    decoded = b"".join(batch for path in segments for batch in kafka_segment_records(path.read_bytes()))
    assert decoded.count(b"[pan ****") >= 5 and b'"reason_code":"unparseable"' in decoded  # the messages were read
    # ... while the same scanner finds every card number of the input topic: the scan means something.
    planted = [f for path in topic_segments(kafka_broker, kafka_topics["transactions"]) for f in findings_in_file(path)]
    assert sum("Luhn-valid card number" in f for f in planted) >= len(records) + len(broken) + 2
    assert card_numbers_in(" ".join(broken)) == ["4111 1111 1111 1111", "4111-1111-1111-1111", "5500 0000 0000 0004"]
