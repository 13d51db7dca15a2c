"""PII masking column functions and payload maskers, on explicit rows (null cases included)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from spark_apps import masking
from spark_apps.secrets import SecretError, pan_token_key, resolve_secret

KEY = b"test-only-pan-token-key"
pytestmark = pytest.mark.spark


def python_token(pan: str, key: bytes = KEY) -> str:
    digest = hmac.new(key, pan.encode(), hashlib.sha256).digest()
    return "tok_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


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


def test_token_is_keyed_hmac_sha256_for_any_key_length(spark):
    long_key = b"k" * 100  # longer than the SHA-256 block: hashed first, as RFC 2104 says
    df = spark.createDataFrame([("5500000000000004",)], "pan string")
    a = df.transform(masking.with_hmac_pads(long_key)).select(masking.card_token_col(F.col("pan"))).first()[0]
    b = df.transform(masking.with_hmac_pads(b"other")).select(masking.card_token_col(F.col("pan"))).first()[0]
    assert a == python_token("5500000000000004", long_key)
    assert b == python_token("5500000000000004", b"other") != a
    with pytest.raises(ValueError, match="empty"):
        masking.with_hmac_pads(b"")


def test_no_key_material_in_the_query_plan(spark):
    """The pads (key XOR 0x36 / 0x5C) would give the key back: no plan may print them."""
    key = b"plan-secret-key-0123456789"
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
    df = spark.createDataFrame([("203.0.113.77",), ("2001:DB8:85a3:0:0:8a2e:370:7334",), ("not an ip",), (None,)], "ip string")
    assertDataFrameEqual(
        df.select(masking.ip_masked_col(F.col("ip")).alias("ip")),
        [("203.0.113.0/24",), ("2001:db8:85a3::/48",), (None,), (None,)],
        checkRowOrder=True,
    )


def test_with_masked_card_fields_drops_clear_columns(spark):
    df = spark.createDataFrame(
        [("t1", "4111111111111111", "123", "07/29", "10.1.2.3")],
        "transaction_id string, pan string, cvv string, expiry string, ip string",
    )
    out_df = masking.with_masked_card_fields(df, KEY)
    assert out_df.columns == ["transaction_id", "card_last4", "card_token", "card_expiry_masked", "ip_masked"]
    assertDataFrameEqual(out_df, [("t1", "1111", python_token("4111111111111111"), "07/**", "10.1.2.0/24")])


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
    monkeypatch.setenv("PAYMENTS_PAN_TOKEN_KEY", "abc")
    assert pan_token_key() == b"abc"
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
    assert len(token) == len("tok_") + 43 and "=" not in token
