# ruff: noqa: E402  (imports follow the sys.path setup for running as a script)
"""Benchmark the batch index job against a DuckDB SQL reference of the same semantics.

    source scripts/env.sh
    python bench/bench_batch_index.py                       # 1M and 10M transactions
    python bench/bench_batch_index.py --sizes 1000000 --reuse

For each size: generate the day (timed), run the Spark job exactly as Airflow does
(``python -m spark_apps.jobs.batch_index`` on ``local[2]``, timed end to end, JVM start
included), run the DuckDB reference (timed), check that both produce the same row set
(every BATCH_INDEX_SCHEMA column except version / ingested_at, compared with EXCEPT ALL
both ways) and the same counts as the ground truth, then print rows/s and the ratio.

The DuckDB reference re-implements validation, masking (same HMAC token), dedup (latest
updated_at; ties by source name), FX, effective-dated policy (ASOF join), latest fraud
output, the trailing-window rules and the risk score in SQL. Where the two differ by
design it is noted inline (the fingerprint tie-break only matters for conflicting records
with equal updated_at, which the generator never produces).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from devtools.generator import WorkloadConfig, generate_day, read_ground_truth, write_drops, write_ground_truth
from spark_apps.fraud_rules import FraudRules, load_rules
from spark_apps.masking import _hmac_pads
from spark_apps.schemas import (
    BATCH_INDEX_SCHEMA,
    CHANNELS,
    CURRENCY_MINOR_UNITS,
    MAX_FIELD_LENGTH,
    RAW_TRANSACTION_FIELDS,
    REPORTING_CURRENCY,
    REQUIRED_TRANSACTION_FIELDS,
    TRANSACTION_STATUSES,
)
from spark_apps.sources import TRANSACTION_SOURCES, source_location
from spark_apps.validation import _AMOUNT_TEXT, _TIMESTAMP_TEXT

DATE = "2026-11-21"
FIELDS = RAW_TRANSACTION_FIELDS
REQUIRED = REQUIRED_TRANSACTION_FIELDS
COMPARED = [f.name for f in BATCH_INDEX_SCHEMA.fields if f.name not in ("version", "ingested_at")]


def sql_list(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def files(location: str, suffixes: tuple[str, ...]) -> list[str]:
    folder = Path(location)
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and p.name.endswith(suffixes)) if folder.is_dir() else []


def raw_events_sql(raw_uri: str) -> str:
    """Every transaction record as text + an unparseable marker, one SELECT per file format."""
    parts = []
    for source in TRANSACTION_SOURCES:
        location = source_location(raw_uri, source.name, DATE)
        for path in files(location, (".jsonl", ".json")):
            fields = ", ".join(f"try(json_extract_string(line, '$.{f}')) AS {f}" for f in FIELDS)
            parts.append(
                f"SELECT {fields}, NOT coalesce(try(json_type(line)) = 'OBJECT', false) AS unparseable, '{source.name}' AS source_name "
                f"FROM read_csv('{path}', columns={{'line': 'VARCHAR'}}, delim=E'\\x01', quote='', escape='', header=false, auto_detect=false)"
            )
        for path in files(location, (".csv",)):
            columns = ", ".join(f"'{f}': 'VARCHAR'" for f in FIELDS)
            parts.append(
                f"SELECT {', '.join(FIELDS)}, false AS unparseable, '{source.name}' AS source_name FROM read_csv('{path}', header=true, "
                f"columns={{{columns}}}, auto_detect=false, store_rejects=true, ignore_errors=true, rejects_table='rejects_{len(parts)}', "
                f"rejects_scan='rejects_scan_{len(parts)}')"
            )
        for path in files(location, (".parquet",)):
            parts.append(
                f"SELECT {', '.join(f'CAST({f} AS VARCHAR) AS {f}' for f in FIELDS)}, false AS unparseable, '{source.name}' AS source_name FROM read_parquet('{path}')"
            )
    return "\nUNION ALL\n".join(parts)


def ip_network_reference(ip: str | None) -> str | None:
    """masking.ip_masked_col by Python's ipaddress (the reference for the few IPv6 rows)."""
    import ipaddress

    try:
        address = ipaddress.ip_address((ip or "").strip().split("%")[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 48}", strict=False))


def card_numbers_masked_reference(text: str | None) -> str | None:
    """masking.mask_card_numbers_col with Python's re (DuckDB's RE2 has no look-around)."""
    import re

    from spark_apps.masking import _PAN_CONTIGUOUS, _PAN_GROUPED, _PAN_GROUPED_LAST4

    if text is None:
        return None
    text = re.sub(_PAN_GROUPED_LAST4, lambda m: f"[pan ****{m.group(1)}]", text)
    text = re.sub(_PAN_GROUPED, "[pan ****]", text)
    return re.sub(_PAN_CONTIGUOUS, lambda m: f"[pan ****{m.group(1)}]", text)


def duckdb_batch_index(connection, raw_uri: str, key: bytes, rules: FraudRules) -> dict:
    """Build the batch index in DuckDB as table ``duck_index``; return its counts."""
    inner, outer = (pad.hex() for pad in _hmac_pads(key))
    # The generator's few rows with an IPv6 address or a card number in device_id go through Python.
    connection.create_function("ip_network_ref", ip_network_reference, ["VARCHAR"], "VARCHAR", null_handling="special")
    connection.create_function("pan_text_ref", card_numbers_masked_reference, ["VARCHAR"], "VARCHAR", null_handling="special")
    units = ", ".join(f"'{c}': {u}" for c, u in CURRENCY_MINOR_UNITS.items())
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"CREATE OR REPLACE TEMP TABLE raw_events AS {raw_events_sql(raw_uri)}")
    csv_rejects = sum(
        connection.execute(f"SELECT count(DISTINCT (file_id, line)) FROM {name}").fetchone()[0]
        for (name,) in connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'rejects_%' AND table_name NOT LIKE 'rejects_scan_%'"
        ).fetchall()
    )
    missing = " OR ".join(f"({f} IS NULL OR trim({f}) = '')" for f in REQUIRED)
    oversize = " OR ".join(f"coalesce(length({f}) > {MAX_FIELD_LENGTH}, false)" for f in FIELDS)

    def ts(column: str) -> str:
        return f"CASE WHEN regexp_full_match(trim({column}), '{_TIMESTAMP_TEXT}') THEN try_cast(trim({column}) AS TIMESTAMPTZ)::TIMESTAMP END"

    connection.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        WITH typed AS (
            SELECT *, {ts("timestamp")} AS event_ts, {ts("updated_at")} AS updated_ts,
                   try_cast(trim(amount) AS DECIMAL(38, 10)) AS amount_wide, MAP {{{units}}}[upper(trim(currency))] AS minor_units
            FROM raw_events
        )
        SELECT *, CASE
            WHEN unparseable THEN 'unparseable'
            WHEN {missing} THEN 'missing_required_field'
            WHEN {oversize} THEN 'oversize_field'
            WHEN NOT regexp_full_match(trim(amount), '{_AMOUNT_TEXT}') THEN 'wrong_type'
            WHEN event_ts IS NULL OR updated_ts IS NULL THEN 'invalid_timestamp'
            WHEN amount_wide <= 0 THEN 'non_positive_amount'
            WHEN minor_units IS NULL THEN 'unknown_currency'
            WHEN upper(trim(transaction_status)) NOT IN ({sql_list(TRANSACTION_STATUSES)}) OR upper(trim(channel)) NOT IN ({sql_list(CHANNELS)})
                 OR amount_wide IS NULL OR abs(amount_wide) >= 10000000000000000 OR CASE minor_units {" ".join(f"WHEN {u} THEN amount_wide <> round(amount_wide, {u})" for u in sorted(set(CURRENCY_MINOR_UNITS.values())))} END
                 OR (pan IS NOT NULL AND NOT regexp_full_match(regexp_replace(pan, '[ \\-]', '', 'g'), '[0-9]{{12,19}}')) THEN 'invalid_value'
        END AS reason_code
        FROM typed
    """)
    counts = dict(connection.execute("SELECT coalesce(reason_code, 'valid'), count(*) FROM checked GROUP BY 1").fetchall())
    counts["unparseable"] = counts.get("unparseable", 0) + csv_rejects
    token = f"'tok_v1_' || rtrim(translate(to_base64(unhex(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') || encode(pan_n)))))), '+/', '-_'), '=')"
    w = rules.flag_weights
    connection.execute(f"""
        CREATE OR REPLACE TEMP TABLE duck_index AS
        WITH valid AS (
            SELECT trim(transaction_id) AS transaction_id, trim(user_id) AS user_id, trim(merchant_id) AS merchant_id, event_ts AS event_time,
                   amount_wide::DECIMAL(18, 2) AS amount, upper(trim(currency)) AS currency, upper(trim(transaction_status)) AS transaction_status,
                   upper(trim(channel)) AS channel, upper(trim(country)) AS country,
                   CASE WHEN regexp_matches(device_id, '([0-9][ -]?){{12}}') THEN pan_text_ref(device_id) ELSE device_id END AS device_id,
                   ip, updated_ts AS updated_at,
                   regexp_replace(pan, '[ \\-]', '', 'g') AS pan_n, expiry, source_name
            FROM checked WHERE reason_code IS NULL
        ), masked AS (
            SELECT * EXCLUDE (pan_n, expiry, ip),
                   CASE WHEN regexp_full_match(pan_n, '[0-9]{{12,19}}') THEN right(pan_n, 4) END AS card_last4,
                   CASE WHEN regexp_full_match(pan_n, '[0-9]{{12,19}}') THEN {token} END AS card_token,
                   CASE WHEN regexp_full_match(trim(expiry), '(0[1-9]|1[0-2])/([0-9]{{2}}|[0-9]{{4}})') THEN left(trim(expiry), 2) || '/**'
                        WHEN expiry IS NOT NULL THEN '**/**' END AS card_expiry_masked,
                   CASE WHEN contains(ip, ':') THEN ip_network_ref(ip)
                        WHEN regexp_full_match(trim(ip), '[0-9]{{1,3}}\\.[0-9]{{1,3}}\\.[0-9]{{1,3}}\\.[0-9]{{1,3}}')
                        THEN regexp_extract(trim(ip), '^([0-9]{{1,3}}\\.[0-9]{{1,3}}\\.[0-9]{{1,3}})\\.', 1) || '.0/24' END AS ip_masked
            FROM valid
        ), deduped AS (
            -- latest updated_at wins; equal timestamps: by source name (Spark first compares a content fingerprint,
            -- which only differs for conflicting records the generator never produces)
            SELECT * FROM masked QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY updated_at DESC, source_name) = 1
        ), scores AS (
            SELECT transaction_id, fraud_score, model_version, explanations, inference_time FROM (
                SELECT transaction_id, try_cast(fraud_score AS DECIMAL(5, 4)) AS fraud_score, model_version, explanations,
                       try_cast(inference_time AS TIMESTAMPTZ)::TIMESTAMP AS inference_time
                FROM read_json('{source_location(raw_uri, "fraud_scores", DATE)}/*.jsonl', columns={{model_version: 'VARCHAR', transaction_id: 'VARCHAR', fraud_score: 'VARCHAR', explanations: 'VARCHAR', inference_time: 'VARCHAR'}}, format='newline_delimited', ignore_errors=true)
            ) QUALIFY row_number() OVER (PARTITION BY transaction_id ORDER BY inference_time DESC, model_version DESC, fraud_score DESC, coalesce(explanations, '') DESC) = 1
        ), fx AS (
            SELECT rate_date::DATE AS rate_date, currency, max(rate_to_reporting::DECIMAL(18, 8)) AS rate
            FROM read_csv('{source_location(raw_uri, "fx_rates", DATE)}/*.csv', all_varchar=true, header=true) GROUP BY 1, 2
        ), merchants AS (
            SELECT merchant_id, max(risk_level) AS merchant_risk_level FROM read_parquet('{source_location(raw_uri, "merchants", DATE)}/*.parquet') GROUP BY 1
        ), policies AS (
            SELECT policy_id, try_cast(effective_date AS TIMESTAMPTZ)::TIMESTAMP AS effective_date,
                   json_extract_string(policy_data, '$.velocity_per_minute')::INT AS v1m, json_extract_string(policy_data, '$.velocity_per_5min')::INT AS v5m,
                   json_extract(policy_data, '$.blocked_countries')::VARCHAR[] AS blocked, json_extract_string(policy_data, '$.amount_limit')::DECIMAL(18, 2) AS amount_limit
            FROM read_json('{source_location(raw_uri, "policies", DATE)}/*.jsonl', columns={{policy_id: 'VARCHAR', policy_name: 'VARCHAR', policy_data: 'VARCHAR', effective_date: 'VARCHAR'}}, format='newline_delimited')
        ), enriched AS (
            SELECT d.*, s.fraud_score, s.model_version, s.explanations AS fraud_explanations, s.inference_time,
                   CASE WHEN d.currency = '{REPORTING_CURRENCY}' THEN 1::DECIMAL(18, 8) ELSE fx.rate END AS fx_rate,
                   m.merchant_risk_level
            FROM deduped d
            LEFT JOIN scores s USING (transaction_id)
            LEFT JOIN fx ON fx.rate_date = d.event_time::DATE AND fx.currency = d.currency
            LEFT JOIN merchants m USING (merchant_id)
        ), signals AS (
            SELECT *, round(amount * fx_rate, 2)::DECIMAL(18, 2) AS amount_reporting,
                   coalesce(card_token, 'user:' || user_id) AS card_key, epoch_us(event_time) AS t_us
            FROM enriched
        ), windows AS (
            SELECT *,
                count(*) OVER (PARTITION BY card_key ORDER BY t_us RANGE BETWEEN {rules.velocity_window_seconds * 1_000_000 - 1} PRECEDING AND CURRENT ROW) AS velocity_count,
                count(*) OVER (PARTITION BY card_key ORDER BY t_us RANGE BETWEEN 59999999 PRECEDING AND CURRENT ROW) AS card_count_1m,
                count(*) OVER (PARTITION BY card_key ORDER BY t_us RANGE BETWEEN 299999999 PRECEDING AND CURRENT ROW) AS card_count_5m,
                sum(CASE WHEN amount_reporting <= {rules.card_testing_small_amount} THEN 1 ELSE 0 END)
                    OVER (PARTITION BY card_key ORDER BY t_us RANGE BETWEEN {rules.card_testing_window_seconds * 1_000_000 - 1} PRECEDING AND CURRENT ROW) AS small_count,
                lag(country) OVER (PARTITION BY user_id ORDER BY event_time, transaction_id) AS prev_country,
                lag(t_us) OVER (PARTITION BY user_id ORDER BY event_time, transaction_id) AS prev_us,
                count(DISTINCT device_id) OVER (PARTITION BY user_id ORDER BY event_time, transaction_id
                                                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS distinct_devices
            FROM signals
        ), devices AS (
            SELECT * FROM windows
        ), flagged AS (
            SELECT d.*, p.policy_id,
                list_filter([
                    CASE WHEN card_count_1m > p.v1m OR card_count_5m > p.v5m THEN 'VELOCITY' END,
                    CASE WHEN list_contains(p.blocked, d.country) THEN 'GEO_BLOCK' END,
                    CASE WHEN amount_reporting > p.amount_limit THEN 'AMOUNT_LIMIT' END], lambda x: x IS NOT NULL) AS policy_flags,
                list_filter([
                    CASE WHEN velocity_count > {rules.velocity_max_transactions} THEN 'VELOCITY' END,
                    CASE WHEN amount_reporting <= {rules.card_testing_small_amount} AND small_count >= {rules.card_testing_min_transactions} THEN 'CARD_TESTING' END,
                    CASE WHEN prev_country IS NOT NULL AND country IS NOT NULL AND prev_country <> country
                          AND (t_us - prev_us) / 60000000.0 <= {rules.geo_jump_max_minutes} THEN 'GEO_JUMP' END,
                    CASE WHEN amount_reporting >= {rules.high_amount_min} THEN 'HIGH_AMOUNT' END,
                    CASE WHEN distinct_devices >= {rules.device_churn_min_devices} THEN 'DEVICE_CHURN' END], lambda x: x IS NOT NULL) AS rule_flags
            FROM devices d ASOF LEFT JOIN policies p ON d.event_time >= p.effective_date
        ), scored AS (
            SELECT *, least(100, round(
                {" + ".join(f"CASE WHEN list_contains({'policy_flags' if k.startswith('POLICY_') else 'rule_flags'}, '{k.removeprefix('POLICY_')}') THEN {v} ELSE 0 END" for k, v in sorted(w.items()))}
                + coalesce(fraud_score::DECIMAL(12, 4) * {rules.ml_weight}, 0), 0))::INT AS risk_score
            FROM flagged
        )
        SELECT {", ".join(c for c in COMPARED if c not in ("recommended_action",))},
            CASE WHEN velocity_count >= {rules.block_card_min_velocity} THEN 'BLOCK_CARD'
                 WHEN velocity_count >= {rules.require_3ds_min_velocity} THEN 'REQUIRE_3DS'
                 WHEN risk_score > {rules.manual_review_above} THEN 'MANUAL_REVIEW' ELSE 'ALLOW' END AS recommended_action
        FROM scored
    """)
    indexed = connection.execute("SELECT count(*) FROM duck_index").fetchone()[0]
    read = sum(counts.values())
    quarantined = read - counts.get("valid", 0)
    return {"read": read, "indexed": indexed, "quarantined": quarantined, "duplicates": counts.get("valid", 0) - indexed}


def compare_row_sets(connection, spark_location: str) -> dict:
    columns = ", ".join(COMPARED)
    spark_cols = ", ".join(
        f"{c}::TIMESTAMP AS {c}" if c in ("event_time", "updated_at", "inference_time") else c for c in COMPARED
    )
    connection.execute(
        f"CREATE OR REPLACE TEMP VIEW spark_index AS SELECT {spark_cols} FROM read_parquet('{spark_location}/*.parquet')"
    )
    only_spark = connection.execute(
        f"SELECT count(*) FROM (SELECT {columns} FROM spark_index EXCEPT ALL SELECT {columns} FROM duck_index)"
    ).fetchone()[0]
    only_duck = connection.execute(
        f"SELECT count(*) FROM (SELECT {columns} FROM duck_index EXCEPT ALL SELECT {columns} FROM spark_index)"
    ).fetchone()[0]
    return {"only_in_spark": only_spark, "only_in_duckdb": only_duck, "same_row_set": only_spark == 0 and only_duck == 0}


def run(
    size: int,
    workdir: Path,
    reuse: bool,
    master: str,
    driver_memory: str,
    partitions: int,
    with_spark: bool = True,
    duckdb_memory: str = "8GB",
) -> dict:
    import duckdb

    raw_uri = str(workdir / f"n{size}" / "raw")
    result: dict = {"transactions": size}
    truth_file = Path(raw_uri) / "_ground_truth" / f"dt={DATE}" / "ground_truth.json"
    if reuse and truth_file.exists() and read_ground_truth(raw_uri, DATE)["config"]["transactions"] == size:
        truth = read_ground_truth(raw_uri, DATE)
        result["generate_seconds"] = None
    else:
        started = time.monotonic()
        workload = generate_day(WorkloadConfig(date=DATE, transactions=size, seed=42))
        written = write_drops(workload, raw_uri)
        write_ground_truth(workload, raw_uri, written)
        truth = workload.truth
        del workload
        result["generate_seconds"] = round(time.monotonic() - started, 1)
    expected = truth["expected_counts"]
    result["records_read"] = expected["read"]

    key = os.environ.setdefault("PAYMENTS_PAN_TOKEN_KEY", "bench-only-pan-token-key-0123456789").encode()
    version = f"bench-{int(time.time())}"
    manifest = None
    if with_spark:
        command = [
            sys.executable, "-m", "spark_apps.jobs.batch_index", "--date", DATE, "--version", version,
            "--raw-uri", raw_uri, "--index-uri", str(workdir / f"n{size}" / "indexes"), "--quarantine-uri", str(workdir / f"n{size}" / "quarantine"),
            "--master", master, "--conf", f"spark.driver.memory={driver_memory}", "--conf", f"spark.sql.shuffle.partitions={partitions}",
            "--conf", "spark.ui.enabled=false",
        ]  # fmt: skip
        started = time.monotonic()
        completed = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
        )
        spark_seconds = time.monotonic() - started
        if completed.returncode != 0:
            raise SystemExit(f"batch index job failed:\n{completed.stderr[-4000:]}")
        manifest = json.loads(completed.stdout.strip().splitlines()[-1])
        result["spark"] = {
            "seconds": round(spark_seconds, 1),
            "job_seconds": manifest["seconds"],
            "counts": {k: manifest["counts"][k] for k in ("read", "indexed", "quarantined", "duplicates")},
        }

    connection = duckdb.connect()
    connection.execute("SET preserve_insertion_order = false")
    # Bounded like the Spark driver (shared machine): DuckDB spills to its temp directory beyond this.
    connection.execute(f"SET memory_limit = '{duckdb_memory}'")
    connection.execute(f"SET temp_directory = '{workdir / f'n{size}' / 'duckdb_tmp'}'")
    started = time.monotonic()
    duck_counts = duckdb_batch_index(connection, raw_uri, key, load_rules())
    duck_seconds = time.monotonic() - started
    result["duckdb"] = {"seconds": round(duck_seconds, 1), "counts": duck_counts}
    result["duckdb"]["rows_per_second"] = round(expected["read"] / duck_seconds)
    if manifest is None:
        result["counts_match_truth"] = all(
            expected[k] == duck_counts[k] for k in ("read", "indexed", "quarantined", "duplicates")
        )
        return result
    result["comparison"] = compare_row_sets(connection, manifest["index_location"])
    result["counts_match_truth"] = all(
        result["spark"]["counts"][k] == expected[k] == duck_counts[k] for k in ("read", "indexed", "quarantined", "duplicates")
    )
    result["spark"]["rows_per_second"] = round(expected["read"] / spark_seconds)
    result["spark_to_duckdb_time_ratio"] = round(spark_seconds / duck_seconds, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".local" / "bench" / "batch_index")
    parser.add_argument("--reuse", action="store_true", help="reuse a generated day of the same size")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--duckdb-only", action="store_true", help="skip the Spark job (reference timing only)")
    parser.add_argument("--duckdb-memory", default="8GB", help="DuckDB memory_limit (spills beyond it)")
    args = parser.parse_args()
    print(json.dumps({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}))
    for size in args.sizes:
        result = run(
            size,
            args.workdir,
            args.reuse,
            args.master,
            args.driver_memory,
            args.shuffle_partitions,
            not args.duckdb_only,
            args.duckdb_memory,
        )
        print(json.dumps(result))
        if args.duckdb_only:
            print(
                f"{size:>11,} txns | records {result['records_read']:,} | duckdb {result['duckdb']['seconds']}s ({result['duckdb']['rows_per_second']:,} rows/s) | counts = truth: {result['counts_match_truth']}",
                flush=True,
            )
            continue
        print(
            f"{size:>11,} txns | records {result['records_read']:,} | spark {result['spark']['seconds']}s ({result['spark']['rows_per_second']:,} rows/s) "
            f"| duckdb {result['duckdb']['seconds']}s ({result['duckdb']['rows_per_second']:,} rows/s) | spark/duckdb time x{result['spark_to_duckdb_time_ratio']} "
            f"| same rows: {result['comparison']['same_row_set']} | counts = truth: {result['counts_match_truth']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
