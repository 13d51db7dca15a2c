"""Re-tokenization after a key rotation (docs/security.md): the map from retained raw drops, then a
table version rewritten as a new run; cards absent from every retained drop keep their old token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_apps import lake
from spark_apps.jobs import retokenize
from spark_apps.secrets import parse_pan_token_keyring

pytestmark = pytest.mark.spark
DATE = "2026-11-21"
OLD, NEW = "old-key-of-version-one-0123456789", "new-key-of-version-two-0123456789abcdef"
KEYRING = json.dumps({"current": "v2", "keys": {"v1": OLD, "v2": NEW}})


def token(pan: str, key: str, version: str) -> str:
    digest = hmac.new(key.encode(), pan.encode(), hashlib.sha256).digest()
    return f"tok_{version}_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_map_from_retained_raw_drops_then_apply_to_a_table_version(spark, tmp_path):
    raw, index = tmp_path / "raw", tmp_path / "indexes"
    drop = raw / "gateway_a" / f"dt={DATE}"
    drop.mkdir(parents=True)
    lines = [
        {"transaction_id": "t1", "pan": "4111 1111 1111 1111"},
        {"transaction_id": "t2", "pan": "4111-1111-1111-1111"},
        {"transaction_id": "t3", "pan": "5500000000000004"},
    ]
    (drop / "part.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"cut": "4000 0000\n')
    keyring = parse_pan_token_keyring(KEYRING)

    mapped = retokenize.run_map(spark, str(raw), str(index), [DATE], keyring)
    location = retokenize.map_location(str(index), "v1", "v2", DATE)
    assert mapped == {"mode": "map", "current": "v2", "pairs": {location: 2}}
    visa, master = "4111111111111111", "5500000000000004"
    assertDataFrameEqual(
        spark.read.parquet(location),
        [
            (token(visa, OLD, "v1"), token(visa, NEW, "v2"), "v1", "v2"),
            (token(master, OLD, "v1"), token(master, NEW, "v2"), "v1", "v2"),
        ],
    )

    # A published aggregate version written under v1: a pre-version token, and a card that is in no
    # retained raw drop (its PAN is gone: it cannot be re-tokenized).
    lost = token("4000000000000002", OLD, "v1")
    table_df = spark.createDataFrame(
        [
            ("t1", token(visa, OLD, "v1")),
            ("t3", "tok_" + token(master, OLD, "v1")[len("tok_v1_") :]),
            ("t9", lost),
            ("t0", None),
        ],
        "transaction_id string, card_token string",
    )
    source = lake.write_versioned(table_df, str(index), "aggregate_index", DATE, "agg-1", table_df.schema, {"rows": 4})
    summary = retokenize.run_apply(spark, str(index), "aggregate_index", DATE, "agg-1", "agg-1-v2", str(index), "v2")
    assert summary["rows"] == 4 and summary["source_location"] == source
    assert summary["token_versions"] == {"card_token": {"v2": 2, "v1": 1, "none": 1}}
    assert summary["unmapped_by_version"] == {"card_token": {"v1": 1}}
    assertDataFrameEqual(
        spark.read.parquet(summary["location"]),
        [("t1", token(visa, NEW, "v2")), ("t3", token(master, NEW, "v2")), ("t9", lost), ("t0", None)],
    )
    manifest = lake.read_manifest(summary["location"])
    assert (manifest["version"], manifest["rows"], manifest["retokenized"]["unmapped_by_version"]) == (
        "agg-1-v2",
        4,
        {"card_token": {"v1": 1}},
    )
    assert "4111" not in json.dumps(manifest)  # no PAN in what the job writes
    assert lake.list_versions(str(index), "aggregate_index", DATE) == ["agg-1", "agg-1-v2"]  # the old version stays


def test_the_map_step_needs_an_old_key_beside_the_new_one(monkeypatch, tmp_path):
    monkeypatch.setenv("RING", json.dumps({"current": "v2", "keys": {"v2": NEW}}))
    args = ["map", "--raw-uri", str(tmp_path), "--map-uri", str(tmp_path), "--date", DATE, "--token-key-ref", "env:RING"]
    with pytest.raises(SystemExit, match="holds only v2: nothing to map"):
        retokenize.main(args)
    monkeypatch.setenv("RING", "short")
    with pytest.raises(ValueError, match="at least 32 are required"):
        retokenize.main(args)
    parsed = retokenize.parse_args(
        ["apply", "--base-uri", "i", "--table", "t", "--date", DATE, "--from-version", "a", "--version", "b"]
        + ["--map-uri", "m", "--to-key-version", "v2", "--master", "local[1]"]
    )
    assert (parsed.mode, parsed.columns, parsed.master) == ("apply", None, "local[1]")
