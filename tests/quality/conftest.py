"""Helpers for the quality gate tests: explicit small staged versions written as Parquet.

``clean_row(table)`` is one row that satisfies the table's contract; tests override single
fields to build violating datasets. ``write_version`` writes rows the way a batch job
stages a version: ``<base>/<table>/dt=<date>/version=<version>/part-*.parquet`` + ``_manifest.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.UTC)
DATE = "2026-11-22"
VERSION = "20261122T050000Z-test0001"
EVENT_TIME = dt.datetime(2026, 11, 22, 1, 30, tzinfo=dt.UTC)
WRITTEN_AT = dt.datetime(2026, 11, 22, 5, 0, tzinfo=dt.UTC)  # one hour before NOW

# Valid values by column name (explicit, per the contracts' rules).
VALUES: dict[str, Any] = {
    "currency": "USD",
    "internal_currency": "USD",
    "statement_currency": "USD",
    "settlement_currency": "USD",
    "transaction_status": "AUTHORIZED",
    "channel": "ECOM",
    "settlement_status": "SETTLED",
    "merchant_risk_level": "LOW",
    "kyc_status": "VERIFIED",
    "payout_schedule": "DAILY",
    "recommended_action": "ALLOW",
    "reason_code": "non_positive_amount",
    "record_source": "BATCH",
    "status_source": "BATCH",
    "score_source": "STREAM",
    "source": "BATCH",
    "field": "transaction_status",
    "old_value": "PENDING",
    "new_value": "AUTHORIZED",
    "match_status": "MATCHED",
    "break_reason": None,
    "payout_status": "SCHEDULED",
    "label_source": "NONE",
    "label": 0,
    "statement_source": "BANK",
    "settlement_source": "BANK",
    "source_format": "jsonl",
    "card_last4": "4242",
    "card_expiry_masked": "12/**",
    "payload_masked": '{"transaction_id": "t-1", "pan": "************4242", "amount": "-5.00"}',
    "risk_score": 12,
    "fraud_score": Decimal("0.1200"),
    "hour_of_day": 1,
    "fx_rate": Decimal("1.00000000"),
    "amount_difference": Decimal("0.00"),
    "net_amount": Decimal("70.00"),  # 100 - 10 - 10 - 10
    "gross_amount": Decimal("100.00"),
    "spend_1d": Decimal("10.00"),
    "spend_7d": Decimal("20.00"),
    "spend_30d": Decimal("30.00"),
    "transaction_count_1d": 1,
    "transaction_count_7d": 2,
    "transaction_count_30d": 3,
    "transaction_count": 3,
    "approved_count": 2,
    "declined_count": 1,
    "version": VERSION,
    "source_version": VERSION,
    "kafka_partition": 0,
    "kafka_offset": 41,
}


def _default(name: str, dtype) -> Any:
    from pyspark.sql import types as T

    if name in VALUES:
        return VALUES[name]
    if isinstance(dtype, T.TimestampType):
        return EVENT_TIME if name in ("event_time", "updated_at", "inference_time", "changed_at", "settled_at") else WRITTEN_AT
    if isinstance(dtype, T.DecimalType):
        return (
            Decimal("0.5").quantize(Decimal(1).scaleb(-dtype.scale))
            if dtype.precision - dtype.scale <= 1
            else Decimal("10").quantize(Decimal(1).scaleb(-dtype.scale))
        )
    if isinstance(dtype, T.IntegerType | T.LongType):
        return 1
    if isinstance(dtype, T.BooleanType):
        return False
    if isinstance(dtype, T.DateType):
        return dt.date.fromisoformat(DATE)
    if isinstance(dtype, T.ArrayType):
        return []
    return f"{name}-1"


def clean_row(table: str, **overrides: Any) -> dict[str, Any]:
    """One row of ``table`` that passes its contract; ``overrides`` replace single fields."""
    from spark_apps.schemas import TABLE_SCHEMAS

    row = {field.name: _default(field.name, field.dataType) for field in TABLE_SCHEMAS[table].fields}
    unknown = set(overrides) - set(row)
    assert not unknown, f"not columns of {table}: {unknown}"
    row.update(overrides)
    return row


def arrow_schema(table: str) -> pa.Schema:
    """The Parquet schema Spark writes for ``table`` (all fields nullable, so tests can write nulls)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from spark_apps.schemas import TABLE_SCHEMAS

    schema = to_arrow_schema(TABLE_SCHEMAS[table])
    return pa.schema([field.with_nullable(True) for field in schema])


def write_version(
    base: Path,
    table: str,
    rows: list[dict[str, Any]],
    version: str = VERSION,
    date: str = DATE,
    manifest: dict[str, Any] | None | str = "auto",
    schema: pa.Schema | None = None,
) -> str:
    """Stage ``rows`` as one run's version of ``table``; the manifest defaults to ``{"rows": len(rows)}``."""
    from spark_apps.lake import version_location, write_manifest

    location = version_location(str(base), table, date, version)
    Path(location).mkdir(parents=True, exist_ok=True)
    schema = schema or arrow_schema(table)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), f"{location}/part-00000.snappy.parquet")
    if manifest == "auto":
        manifest = {"version": version, "rows": len(rows)}
    if manifest is not None:
        write_manifest(location, manifest)
    return location


@pytest.fixture
def lake(tmp_path) -> Path:
    return tmp_path / "indexes"


def manifest_of(location: str) -> dict[str, Any]:
    return json.loads((Path(location) / "_manifest.json").read_text())
