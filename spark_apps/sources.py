"""The raw drops the batch index job reads: one folder per source and date.

Layout: ``<lake.raw_uri>/<source>/dt=<YYYY-MM-DD>/<any name>.{jsonl,json,csv,parquet}``.
Any source may arrive in any of the three formats (the reader picks the parser by
file extension); the defaults below are what the generator writes.
"""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("jsonl", "csv", "parquet")
# File name endings per format, as the reader recognises them.
FORMAT_EXTENSIONS = {"jsonl": (".jsonl", ".json", ".jsonl.gz", ".json.gz"), "csv": (".csv", ".csv.gz"), "parquet": (".parquet",)}


@dataclass(frozen=True)
class RawSource:
    name: str
    kind: str  # transactions, fraud_scores, settlements, merchants, users, policies, fx_rates
    default_format: str
    description: str


TRANSACTION_SOURCES = (
    RawSource("gateway_a", "transactions", "jsonl", "payment gateway A: transaction events as JSON lines"),
    RawSource("gateway_b", "transactions", "csv", "payment gateway B: transaction events as CSV with a header"),
    RawSource("gateway_c", "transactions", "parquet", "payment gateway C (POS acquirer): transaction events as Parquet"),
)
SIDE_SOURCES = (
    RawSource("fraud_scores", "fraud_scores", "jsonl", "ML fraud model outputs (one or more per transaction)"),
    RawSource("settlements", "settlements", "csv", "bank and aggregator settlement statement lines"),
    RawSource("merchants", "merchants", "parquet", "merchant reference snapshot"),
    RawSource("users", "users", "parquet", "user (cardholder) reference snapshot"),
    RawSource("policies", "policies", "jsonl", "every version of the effective-dated risk policy"),
    RawSource("fx_rates", "fx_rates", "csv", "daily FX rates to the reporting currency, for the date and the 7 days before"),
)
RAW_SOURCES = TRANSACTION_SOURCES + SIDE_SOURCES
RAW_SOURCES_BY_NAME = {source.name: source for source in RAW_SOURCES}
GROUND_TRUTH_DIR = "_ground_truth"  # under raw_uri; never read by the jobs


def source_location(raw_uri: str, source: str, date: str) -> str:
    return f"{raw_uri.rstrip('/')}/{source}/dt={date}"
