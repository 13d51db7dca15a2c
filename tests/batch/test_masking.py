"""PII masking column functions, payload maskers and the versioned token key, on explicit rows
(null cases included). Card numbers in the shapes people type them (grouped by spaces or dashes),
CVVs under other names and compressed IPv6 addresses are masked wherever they appear."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_apps import masking
from spark_apps.secrets import (
    PanTokenKey,
    PanTokenKeyError,
    SecretError,
    pan_token_key,
    pan_token_keyring,
    parse_pan_token_keyring,
    resolve_secret,
)
from tests.batch.pii_scan import card_numbers_in, findings_in_text

KEY = b"test-only-pan-token-key-0123456789"
pytestmark = pytest.mark.spark


def python_token(pan: str, key: bytes = KEY, version: str = "v1") -> str:
    digest = hmac.new(key, pan.encode(), hashlib.sha256).digest()
    return f"tok_{version}_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_card_fields_are_reduced_to_last4_token_and_masked_expiry(spark):
    df = spark.createDataFrame(
        [
            ("4111111111111111", "123", "07/29"),
            ("4111 1111-1111 1111", "999", "12/2031"),
            (None, None, None),
            ("12345", "1", "13/29"),
            ("abcd5678efgh1234", None, "7/29"),
        ],
        "pan string, cvv string, expiry string",
    )
    out_df = df.transform(masking.with_hmac_pads(KEY)).select(
        masking.card_last4_col(F.col("pan")).alias("last4"),
        masking.card_token_col(F.col("pan")).alias("token"),
        masking.expiry_masked_col(F.col("expiry")).alias("expiry"),
    )
    token = python_token("4111111111111111")
    assertDataFrameEqual(
        out_df,
        [("1111", token, "07/**"), ("1111", token, "12/**"), (None, None, None), (None, None, "**/**"), (None, None, "**/**")],
        checkRowOrder=True,
    )


def test_token_is_keyed_hmac_sha256_for_any_key_length_from_32_bytes(spark):
    long_key = b"k" * 100  # longer than the SHA-256 block: hashed first, as RFC 2104 says
    other = b"o" * 32  # the shortest accepted key
    df = spark.createDataFrame([("5500000000000004",)], "pan string")
    a = df.transform(masking.with_hmac_pads(long_key)).select(masking.card_token_col(F.col("pan"))).first()[0]
    b = df.transform(masking.with_hmac_pads(other)).select(masking.card_token_col(F.col("pan"))).first()[0]
    assert a == python_token("5500000000000004", long_key)
    assert b == python_token("5500000000000004", other) != a
    with pytest.raises(ValueError, match="empty"):
        masking.with_hmac_pads(b"")


@pytest.mark.parametrize("key", [b"short", b"test-only-pan-token-key", b"x" * 31])
def test_a_key_shorter_than_32_bytes_is_refused_before_anything_is_tokenized(spark, key, monkeypatch):
    df = spark.createDataFrame(
        [("t1", "4111111111111111", "123", "07/29", "10.1.2.3")],
        "transaction_id string, pan string, cvv string, expiry string, ip string",
    )
    with pytest.raises(PanTokenKeyError, match=f"is {len(key)} bytes; at least 32 are required"):
        masking.with_masked_card_fields(df, key)
    with pytest.raises(ValueError, match="at least 32"):
        masking.with_hmac_pads(key)
    monkeypatch.setenv("PAYMENTS_PAN_TOKEN_KEY", key.decode())
    with pytest.raises(SecretError, match="at least 32 are required"):  # the jobs resolve their key here
        pan_token_key()


def test_no_key_material_in_the_query_plan(spark):
    """The pads (key XOR 0x36 / 0x5C) would give the key back: no plan may print them."""
    key = b"plan-secret-key-0123456789-abcdefgh"
    pads = [pad.hex() for pad in masking._hmac_pads(key)]
    df = spark.createDataFrame(
        [("4111111111111111", "123", "07/29", "203.0.113.7")], "pan string, cvv string, expiry string, ip string"
    )
    masked_df = masking.with_masked_card_fields(df, key)
    plans = masked_df._jdf.queryExecution().toString()  # parsed, analyzed, optimized and physical
    assert masked_df.first().card_token == python_token("4111111111111111", key)
    assert "sha2" in plans.lower()
    for text in (*pads, key.hex(), key.decode()):
        assert text.lower() not in plans.lower().replace(" ", "")


def test_the_pads_are_a_local_relation_not_a_python_rdd(spark):
    """A Python-list DataFrame is an RDD whose scan starts Python workers each time it runs:
    every stream micro-batch paid ~0.8 s to broadcast the pads. A local relation needs no job."""
    import pyarrow as pa

    df = spark.createDataFrame(pa.table({"pan": ["4111111111111111"]}), "pan string")
    plan = masking.with_hmac_pads(b"k" * 32)(df)._jdf.queryExecution().optimizedPlan().toString()
    assert plan.count("LocalRelation") == 2, plan
    assert "LogicalRDD" not in plan


def test_ip_is_reduced_to_its_network(spark):
    cases = [
        ("203.0.113.77", "203.0.113.0/24"),
        (" 10.1.2.3 ", "10.1.2.0/24"),
        ("2001:DB8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3::/48"),
        # compressed forms: the groups "::" stands for are zeros, and zero groups of the /48 compress
        ("2001:db8::1", "2001:db8::/48"),
        ("::1", "::/48"),
        ("fe80::", "fe80::/48"),
        ("fe80::1%eth0", "fe80::/48"),  # a zone is dropped
        ("::", "::/48"),
        ("2001:0DB8:0000:0001::", "2001:db8::/48"),  # third group 0000 -> compressed
        ("0db8:0000:0001::", "db8:0:1::/48"),
        ("0:db8::", "0:db8::/48"),
        ("64:ff9b::1.2.3.4", "64:ff9b::/48"),
        # an IPv4-mapped address is an IPv4 address: reduced to its /24
        ("::ffff:1.2.3.4", "1.2.3.0/24"),
        ("::FFFF:192.0.2.128", "192.0.2.0/24"),
        ("0:0:0:0:0:ffff:10.0.0.1", "10.0.0.0/24"),
        # not addresses
        ("1::2::3", None),
        ("1:2:3:4:5:6:7::8", None),
        ("1:2:3:4:5:6:7:8:9", None),
        ("12:30:45", None),
        ("256.1.1.1", None),
        ("not an ip", None),
        (None, None),
    ]
    df = spark.createDataFrame([(ip,) for ip, _ in cases], "ip string")
    assertDataFrameEqual(
        df.select(masking.ip_masked_col(F.col("ip")).alias("ip")), [(masked,) for _, masked in cases], checkRowOrder=True
    )


def test_with_masked_card_fields_drops_clear_columns(spark):
    df = spark.createDataFrame(
        [("t1", "4111111111111111", "123", "07/29", "10.1.2.3")],
        "transaction_id string, pan string, cvv string, expiry string, ip string",
    )
    out_df = masking.with_masked_card_fields(df, KEY)
    assert out_df.columns == ["transaction_id", "card_last4", "card_token", "card_expiry_masked", "ip_masked"]
    assertDataFrameEqual(out_df, [("t1", "1111", python_token("4111111111111111"), "07/**", "10.1.2.0/24")])


def test_a_card_number_typed_into_device_id_never_reaches_the_index(spark):
    df = spark.createDataFrame(
        [
            ("t1", "d-00000014-0 card 4444 6281-4713 6661", "4111 1111 1111 1111", "2001:db8::7"),
            ("t2", "d-00000002-0", "4111-1111-1111-1111", "::ffff:1.2.3.4"),
            ("t3", "pos 3782-822463-10005", None, None),
            ("t4", None, "4111111111111111", "fe80::"),
        ],
        "transaction_id string, device_id string, pan string, ip string",
    ).select("*", F.lit("123").alias("cvv"), F.lit("07/29").alias("expiry"))
    out_df = masking.with_masked_card_fields(df, KEY).select(
        "transaction_id", "device_id", "card_last4", "card_token", "ip_masked"
    )
    token = python_token("4111111111111111")
    assertDataFrameEqual(
        out_df,
        [
            ("t1", "d-00000014-0 card [pan ****6661]", "1111", token, "2001:db8::/48"),
            ("t2", "d-00000002-0", "1111", token, "1.2.3.0/24"),
            ("t3", "pos [pan ****0005]", None, None, None),
            ("t4", None, "1111", token, "fe80::/48"),
        ],
    )


def test_card_numbers_in_text_are_masked_however_they_are_grouped(spark):
    cases = [
        ("4111 1111 1111 1111", "[pan ****1111]"),
        ("4111-1111-1111-1111", "[pan ****1111]"),
        ("card 4111 1111-1111 1111 ok", "card [pan ****1111] ok"),
        ("amex 3782 822463 10005", "amex [pan ****0005]"),
        ("19 digits 6011 0009 9013 9424 123", "19 digits [pan ****]"),
        ("4111111111111111-2026", "[pan ****1111]-2026"),
        ("a b 4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "a b [pan ****]"),
        # ids, dates and times are not card numbers
        ("tx-20261121-000000123 at 2026-11-21 10:15:30", "tx-20261121-000000123 at 2026-11-21 10:15:30"),
        ("d-00000014-0", "d-00000014-0"),
        ("12345678901", "12345678901"),
        (None, None),
    ]
    df = spark.createDataFrame([(text,) for text, _ in cases], "text string")
    masked = [r[0] for r in df.select(masking.mask_card_numbers_col(F.col("text"))).collect()]
    assert masked == [expected for _, expected in cases]
    assert all(card_numbers_in(text or "") == [] for text in masked)


def test_unparseable_payloads_lose_grouped_card_numbers_cvv_variants_and_full_ips(spark):
    texts = [
        # a truncated JSON line of gateway A: grouped PAN, the CVV under another name, an IPv6 address
        '{"transaction_id":"tx-1","ip":"2001:db8::1","pan":"4111 1111 1111 1111","CVV":"123","expiry":"07/29","amo',
        '{"ip":"::ffff:203.0.113.9","pan":"4111-1111-1111-1111","cvc":"456"}x',
        '{"pan":"4111 1111-1111 1111","cvv2":78',
        '{"Cvv": "12',  # cut inside the value
        # CSV lines of gateway B with the wrong number of columns: quoted and named CVVs
        'tx-2,u-1,4111-1111-1111-1111,"123",07/29,10.1.2.3,<garbled>',
        "tx-3,u-1,4111 1111 1111 1111,cvv=123,12/2029,fe80::1%eth0,<garbled>",
        "tx-4,u-1,card 5500 0000 0000 0004 cvc: 999 cvv2 '321',<garbled>",
        "tx-5,u-1,'7777',<garbled>",
    ]
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    masked = [r[0] for r in df.select(masking.mask_payload_text_col(F.col("text"))).collect()]
    assert masked == [
        '{"transaction_id":"tx-1","ip":"2001:db8::/48","pan":"[pan ****1111]","CVV":"***","expiry":"07/**","amo',
        '{"ip":"203.0.113.0/24","pan":"[pan ****1111]","cvc":"***"}x',
        '{"pan":"[pan ****1111]","cvv2":"***"',
        '{"Cvv": "***"',
        "tx-2,u-1,[pan ****1111],***,07/**,10.1.2.0/24,<garbled>",
        "tx-3,u-1,[pan ****1111],cvv=***,12/**,fe80::/48,<garbled>",
        "tx-4,u-1,card [pan ****0004] cvc: *** cvv2 '***',<garbled>",
        "tx-5,u-1,***,<garbled>",
    ]
    for text in masked:  # and the tests' scanner agrees
        assert findings_in_text(text, "payload") == []
    assert all(findings_in_text(t, "raw") for t in texts[:3] + texts[4:7])


def test_masked_payload_json_reduces_ip_and_masks_card_data_in_every_field(spark):
    df = spark.createDataFrame(
        [
            (
                "tx-20261121-000000123",
                "4111 1111 1111 1111",
                "123",
                "07/29",
                "d-1 card 5500-0000-0000-0004 cvv=999",
                "2001:db8::1",
            ),
            ("t2", "4111-1111-1111-1111", "1", "13/29", None, "4111 1111 1111 1111"),
        ],
        "transaction_id string, pan string, cvv string, expiry string, device_id string, ip string",
    )
    fields = ("transaction_id", "pan", "cvv", "expiry", "device_id", "ip")
    out = [json.loads(r[0]) for r in df.select(masking.masked_payload_json_col(fields)).collect()]
    assert out == [
        {
            "transaction_id": "tx-20261121-000000123",
            "pan": "****1111",
            "cvv": "***",
            "expiry": "07/**",
            "device_id": "d-1 card [pan ****0004] cvv=***",
            "ip": "2001:db8::/48",
        },
        {"transaction_id": "t2", "pan": "****1111", "cvv": "***", "expiry": "**/**", "device_id": None, "ip": "[pan ****1111]"},
    ]


def test_unparseable_payload_text_is_masked(spark):
    texts = [
        '{"transaction_id":"tx-20261121-000000123","pan":"4111111111111111","cvv":"123","expiry":"07/29","amo',
        "tx-1,u-1,4111111111111111,123,07/29,<garbled>",
        '{"cvv": 987, "pan": null}',
        None,
    ]
    df = spark.createDataFrame([(t,) for t in texts], "text string")
    assertDataFrameEqual(
        df.select(masking.mask_payload_text_col(F.col("text")).alias("masked")),
        [
            ('{"transaction_id":"tx-20261121-000000123","pan":"[pan ****1111]","cvv":"***","expiry":"07/**","amo',),
            ("tx-1,u-1,[pan ****1111],***,07/**,<garbled>",),
            ('{"cvv": "***", "pan": null}',),
            (None,),
        ],
        checkRowOrder=True,
    )


def test_masked_payload_json_keeps_fields_but_no_card_data(spark):
    df = spark.createDataFrame(
        [("t1", "4111111111111111", "123", "07/29", "note 5500000000000004"), ("t2", None, None, None, None)],
        "transaction_id string, pan string, cvv string, expiry string, device_id string",
    )
    out = [
        r.payload
        for r in df.select(
            masking.masked_payload_json_col(("transaction_id", "pan", "cvv", "expiry", "device_id")).alias("payload")
        ).collect()
    ]
    assert out == [
        '{"transaction_id":"t1","pan":"****1111","cvv":"***","expiry":"07/**","device_id":"note [pan ****0004]"}',
        '{"transaction_id":"t2","pan":null,"cvv":null,"expiry":null,"device_id":null}',
    ]


def test_secret_references_resolve_from_env_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SOME_KEY", "s3cret")
    assert resolve_secret("env:SOME_KEY") == "s3cret"
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    assert resolve_secret(f"file:{secret_file}") == "from-file"
    monkeypatch.setenv("PAYMENTS_PAN_TOKEN_KEY", "a" * 32)
    assert pan_token_key() == b"a" * 32 and pan_token_key().version == "v1"
    monkeypatch.delenv("SOME_KEY")
    for bad in ("env:SOME_KEY", "SOME_KEY", "vault:x", f"file:{tmp_path / 'missing'}"):
        with pytest.raises(SecretError):
            resolve_secret(bad)


def test_pan_normalization_and_token_padding_on_edge_rows(spark):
    """normalized_pan_col deletes spaces and dashes only (translate, no regex); the token keeps the
    43 base64url characters of the 32-byte digest (no '=' padding); nulls stay null."""
    df = spark.createDataFrame(
        [("4111-1111 1111-1111",), ("--  --",), ("41_11.11",), ("",), (None,), ("\u00e94111 1111 1111 1111",)], "pan string"
    )
    out_df = df.transform(masking.with_hmac_pads(KEY)).select(
        masking.normalized_pan_col(F.col("pan")).alias("normalized"),
        masking.valid_pan_col(F.col("pan")).alias("valid"),
        masking.card_token_col(F.col("pan")).alias("token"),
    )
    token = python_token("4111111111111111")
    assertDataFrameEqual(
        out_df,
        [
            ("4111111111111111", True, token),
            ("", False, None),
            ("41_11.11", False, None),
            ("", False, None),
            (None, None, None),
            ("\u00e94111111111111111", False, None),
        ],
        checkRowOrder=True,
    )
    assert len(token) == len("tok_v1_") + 43 and "=" not in token


def test_side_source_and_quarantine_rows_hold_no_card_data(spark, tmp_path):
    """An unparseable side-source line and a rejected transaction whose id is a card number:
    payload_masked and transaction_id of their quarantine rows are masked."""
    from spark_apps.readers import read_side_source
    from spark_apps.schemas import SETTLEMENT_LINE_SCHEMA
    from spark_apps.validation import validate_json_events

    folder = tmp_path / "settlements"
    folder.mkdir()
    header = ",".join(SETTLEMENT_LINE_SCHEMA.fieldNames())
    (folder / "part-00000.csv").write_text(f'{header}\nSTMT-1,ln-1,BANK,"card 4111-1111-1111-1111 cvv=123"\n')
    at = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    _good, bad_df = read_side_source(spark, str(folder), "settlements", SETTLEMENT_LINE_SCHEMA, "r1", at)
    (row,) = bad_df.collect()
    assert (row.reason_code, row.payload_masked) == ("unparseable", 'STMT-1,ln-1,BANK,"card [pan ****1111] cvv=***"')

    record = {"transaction_id": "4111 1111 1111 1111", "amount": "-1", "pan": "4111 1111 1111 1111", "cvv": "123"}
    kafka_df = spark.createDataFrame([(json.dumps(record),)], "value string")
    _valid, rejected_df = validate_json_events(kafka_df, quarantined_at=at)
    (row,) = rejected_df.collect()
    assert row.transaction_id == "[pan ****1111]"
    assert findings_in_text(json.dumps(row.asDict(), default=str), "quarantine row") == []


# --- the versioned token key ------------------------------------------------------------------------


def test_tokens_carry_their_key_version_and_differ_across_versions(spark):
    v1, v2 = PanTokenKey(KEY, "v1"), PanTokenKey(b"another-key-for-version-two-0123456789", "v2")
    df = spark.createDataFrame(
        [("4111111111111111", "123", "07/29", "1.2.3.4"), ("4111 1111-1111 1111", "123", "07/29", "1.2.3.4")],
        "pan string, cvv string, expiry string, ip string",
    )
    tokens_v1 = [r.card_token for r in masking.with_masked_card_fields(df, v1).collect()]
    tokens_v2 = [r.card_token for r in masking.with_masked_card_fields(df, v2).collect()]
    plain = [r.card_token for r in masking.with_masked_card_fields(df, KEY).collect()]  # plain bytes: v1
    assert tokens_v1 == plain == [python_token("4111111111111111", KEY, "v1")] * 2
    assert tokens_v2 == [python_token("4111111111111111", bytes(v2), "v2")] * 2
    assert tokens_v1[0].startswith("tok_v1_") and tokens_v2[0].startswith("tok_v2_") and len(tokens_v1[0]) == 50


def test_token_versions_and_pre_version_tokens(spark):
    digest = python_token("4111111111111111")[len("tok_v1_") :]
    df = spark.createDataFrame(
        [(f"tok_v1_{digest}",), (f"tok_v12_{digest}",), (f"tok_{digest}",), ("tok_v1_short",), ("user:u-1",), (None,)],
        "token string",
    )
    out_df = df.select(
        masking.token_version_col(F.col("token")).alias("version"), masking.canonical_token_col(F.col("token")).alias("canonical")
    )
    assertDataFrameEqual(
        out_df,
        [
            ("v1", f"tok_v1_{digest}"),
            ("v12", f"tok_v12_{digest}"),
            ("v1", f"tok_v1_{digest}"),  # written before versions existed: the same v1 key
            (None, "tok_v1_short"),
            (None, "user:u-1"),
            (None, None),
        ],
        checkRowOrder=True,
    )


def test_keyrings_from_the_secret_value(monkeypatch):
    old, new = "o" * 40, "n" * 64
    ring = parse_pan_token_keyring(json.dumps({"current": "v2", "keys": {"v1": old, "v2": new}}))
    assert (ring.current, ring.current_key, ring.current_key.version) == ("v2", new.encode(), "v2")
    assert {v: bytes(k) for v, k in ring.previous.items()} == {"v1": old.encode()}
    assert parse_pan_token_keyring(f"v3:{new}").current_key.version == "v3"
    assert parse_pan_token_keyring(new).current_key.version == "v1"  # a bare key: v1
    monkeypatch.setenv("RING", json.dumps({"current": "v2", "keys": {"v1": old, "v2": new}}))
    assert pan_token_key("env:RING").version == "v2" and sorted(pan_token_keyring("env:RING").keys) == ["v1", "v2"]
    assert new not in repr(ring) and new not in repr(ring.current_key) and new not in str(ring.current_key)
    refused = {
        json.dumps({"current": "v3", "keys": {"v1": old}}): "current version 'v3' has no key",
        json.dumps({"current": "v2", "keys": {"v1": old, "v2": "short"}}): "v2 is 5 bytes; at least 32",
        json.dumps({"current": "2", "keys": {"2": new}}): "expected v1, v2",
        json.dumps({"keys": {"v1": new}}): "expected {",
        '{"current": "v1", "keys": {"v1": "' + new: "not valid JSON",
        "v2:short": "v2 is 5 bytes",
    }
    for value, message in refused.items():
        with pytest.raises(PanTokenKeyError, match=re.escape(message)):
            parse_pan_token_keyring(value)
    with pytest.raises(PanTokenKeyError) as error:
        parse_pan_token_keyring('{"keys": [' + new)
    assert new not in str(error.value)  # key material never in an error message


def test_retokenization_maps_old_tokens_to_the_new_key_for_cards_in_retained_raw_data(spark):
    old, new = "o" * 40, "n" * 64
    ring = parse_pan_token_keyring(json.dumps({"current": "v2", "keys": {"v1": old, "v2": new}}))
    raw_df = spark.createDataFrame(
        [("4111 1111 1111 1111",), ("4111111111111111",), ("5500-0000-0000-0004",), ("not a card",), (None,)], "pan string"
    )
    mapping_df = masking.token_map(raw_df, ring)
    a1, a2 = python_token("4111111111111111", old.encode(), "v1"), python_token("4111111111111111", new.encode(), "v2")
    b1, b2 = python_token("5500000000000004", old.encode(), "v1"), python_token("5500000000000004", new.encode(), "v2")
    assertDataFrameEqual(mapping_df, [(a1, a2, "v1", "v2"), (b1, b2, "v1", "v2")])
    assert "4111" not in " ".join(str(v) for r in mapping_df.collect() for v in r)

    unknown = python_token("4000000000000002", old.encode(), "v1")  # a card absent from the retained drops
    index_df = spark.createDataFrame(
        [
            ("t1", a1, 1),
            ("t2", b1, 2),
            ("t3", "tok_" + b1[len("tok_v1_") :], 3),
            ("t4", unknown, 4),
            ("t5", a2, 5),
            ("t6", None, 6),
        ],
        "transaction_id string, card_token string, n int",
    )
    out_df = masking.retokenized(index_df, mapping_df.unionByName(mapping_df))  # a map read twice changes nothing
    assert out_df.columns == index_df.columns
    assertDataFrameEqual(
        out_df,
        [("t1", a2, 1), ("t2", b2, 2), ("t3", b2, 3), ("t4", unknown, 4), ("t5", a2, 5), ("t6", None, 6)],
    )
    versions = {
        r.v: r["count"] for r in out_df.groupBy(masking.token_version_col(F.col("card_token")).alias("v")).count().collect()
    }
    assert versions == {"v2": 4, "v1": 1, None: 1}  # t4 stays on v1: its card is in no retained raw drop
    with pytest.raises(ValueError, match="only the current version"):
        masking.token_map(raw_df, parse_pan_token_keyring(new))
