"""The quality gate (DESIGN decision 4): verify a staged version with its Soda v4 data contract.

A staged version is one run's Parquet folder
``<index_uri>/<table>/dt=<YYYY-MM-DD>/version=<version>/`` plus the job's ``_manifest.json``.
:func:`verify_staged_version` checks it against ``include/contracts/<table>.yaml``
BEFORE the catalog partition is pointed at it, with one of two engines:

* ``duckdb`` (local profile): the folder becomes a DuckDB view, Soda's DuckDB source runs
  the contract in-process;
* ``spark`` (aws profile, ``spark_apps/jobs/quality_gate.py`` on EMR on EKS): the folder is
  read into a DataFrame and registered as a global temp view, Soda's Spark DataFrame
  source runs the same contract.

Both engines see the dataset as ``global_temp.<table>`` (Spark's schema for global temp
views; the DuckDB path creates a schema of that name), so contract SQL is written once.
Other datasets a contract queries (``global_temp.<other>``, for balance checks such as
reconciliation totals against the aggregate index) are registered the same way, from the
version's manifest ``inputs`` or the ``references`` the caller passes.

Each contract has a hand-written part (dataset-level checks) and a block generated from
``spark_apps/schemas.py`` (column names, types, not-null, enum and range checks):
``python -m spark_apps.quality write-contracts`` rewrites only that block and
``python -m spark_apps.quality check-contracts`` fails when a block is stale.

Nothing here imports pyspark or Soda at module level: the Airflow side imports this module
(for :class:`GateResult`) where neither may be installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from payments_contract import MANIFEST_FILE, ContractError, parse_version_location

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = PROJECT_ROOT / "include" / "contracts"
CONTRACTS_DIR_ENV_VAR = "PAYMENTS_CONTRACTS_DIR"
ENGINES = ("duckdb", "spark")

# The Soda data source name and the schema every dataset is visible under, in both engines.
DATA_SOURCE_NAME = "quality_gate"
VIEW_SCHEMA = "global_temp"
MANIFEST_ROWS_KEY = "rows"  # the manifest field holding the number of rows the job wrote
MANIFEST_INPUTS_KEY = "inputs"  # optional manifest field: {table: location} of the versions the job read

GENERATED_BEGIN = "# >>> generated from spark_apps/schemas.py by `python -m spark_apps.quality write-contracts`: do not edit"
GENERATED_END = "# <<< end of generated block"

# Type names differ per engine for two Spark types, so contracts name them through variables
# the gate sets: Spark's TimestampType is an instant (DuckDB reads it as TIMESTAMPTZ).
ENGINE_TYPE_VARIABLES: dict[str, dict[str, str]] = {
    "duckdb": {"TIMESTAMP_TYPE": "timestamp with time zone", "STRING_ARRAY_TYPE": "varchar[]"},
    "spark": {"TIMESTAMP_TYPE": "timestamp", "STRING_ARRAY_TYPE": "array<string>"},
}
# Set by the gate for every verification: see gate_variables().
GATE_VARIABLES = ("TIMESTAMP_TYPE", "STRING_ARRAY_TYPE", "DT", "VERSION", "MANIFEST_ROWS", "NOW_UTC")

# Tables whose version column is not the staged location's version (the stream writes stream-b<batch>).
VERSION_CHECK_EXEMPT = frozenset({"stream_index"})

_REFERENCED_VIEW = re.compile(rf"\b{VIEW_SCHEMA}\.([A-Za-z_][A-Za-z0-9_]*)\b")


class GateError(ValueError):
    """The gate was called wrongly (unknown table, missing contract or reference, bad location)."""


# --- the result ------------------------------------------------------------------------


@dataclasses.dataclass
class GateResult:
    """The outcome of one verification; JSON round-trips for the Airflow side (``to_json``/``from_json``).

    ``checks_failed`` holds ``{"name", "path", "diagnostic"}`` per failed (or not evaluated)
    check; ``name`` is human-readable, ``path`` is the check's place in the contract.
    """

    table: str
    location: str
    engine: str
    passed: bool
    checks_total: int
    checks_failed: list[dict[str, str]]
    log: str = ""

    @property
    def failed_check_names(self) -> list[str]:
        return [check["name"] for check in self.checks_failed]

    def summary(self) -> str:
        if self.passed:
            return f"quality gate PASSED for {self.table} at {self.location}: {self.checks_total} checks"
        names = "; ".join(self.failed_check_names)
        return f"quality gate FAILED for {self.table} at {self.location}: {len(self.checks_failed)} of {self.checks_total} checks failed: {names}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def failure(cls, table: str, location: str, engine: str, name: str, diagnostic: str) -> GateResult:
        """A result for a version the contract could not even run on (fail closed), naming why."""
        return cls(table, location, engine, False, 1, [{"name": name, "path": "gate", "diagnostic": diagnostic}], diagnostic)

    @classmethod
    def from_json(cls, text: str) -> GateResult:
        data = json.loads(text)
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls) if field.name in data})


# --- contract generation from spark_apps/schemas.py ----------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnRule:
    """An engine-neutral validity rule for every column of a given name (nulls are not judged)."""

    name: str  # the check name shown when it fails
    valid_values: tuple[Any, ...] | None = None
    valid_min: Any = None
    valid_max: Any = None
    valid_regex: str | None = None
    invalid_regex: str | None = None  # a value matching it anywhere is invalid


def _column_rules() -> dict[str, ColumnRule]:
    """Validity rules by column name; enums come from ``spark_apps.schemas`` so they change in one place."""
    from spark_apps import schemas as s
    from spark_apps.sources import FORMATS

    def one_of(column: str, values, what: str) -> ColumnRule:
        return ColumnRule(f"{column} is a known {what}", valid_values=tuple(sorted(values)))

    rules: dict[str, ColumnRule] = {}
    enums = {
        "transaction_status": (s.TRANSACTION_STATUSES, "transaction status"),
        "channel": (s.CHANNELS, "channel"),
        "settlement_status": (s.SETTLEMENT_STATUSES, "settlement status"),
        "merchant_risk_level": (s.RISK_LEVELS, "risk level"),
        "kyc_status": (s.KYC_STATUSES, "KYC status"),
        "payout_schedule": (s.PAYOUT_SCHEDULES, "payout schedule"),
        "recommended_action": (s.RECOMMENDED_ACTIONS, "recommended action"),
        "reason_code": (s.Reason.ALL, "reason code"),
        "record_source": (s.RECORD_SOURCES, "record source"),
        "status_source": (s.CHANGE_SOURCES, "change source"),
        "score_source": (s.CHANGE_SOURCES, "change source"),
        "field": (s.AUDITED_FIELDS, "audited field"),
        "match_status": (s.MATCH_STATUSES, "match status"),
        "payout_status": (s.PAYOUT_STATUSES, "payout status"),
        "label_source": (s.ML_LABEL_SOURCES, "label source"),
        # Spelled out in schemas.py comments (no constant there yet).
        "statement_source": (("BANK", "AGGREGATOR"), "statement source"),
        "settlement_source": (("BANK", "AGGREGATOR"), "statement source"),
        # File formats the batch readers accept, plus the stream's Kafka source.
        "source_format": ((*FORMATS, "kafka"), "source format"),
    }
    for column, (values, what) in enums.items():
        rules[column] = one_of(column, values, what)
    for column in ("currency", "internal_currency", "statement_currency", "settlement_currency"):
        rules[column] = one_of(column, s.SUPPORTED_CURRENCIES, "currency")
    # audit_trail.source names who changed a value.
    rules["source"] = one_of("source", s.CHANGE_SOURCES, "change source")

    # Transaction amounts: validation quarantines non-positive ones, so none may reach an index.
    for column in ("amount", "amount_reporting", "internal_amount", "fx_rate"):
        rules[column] = ColumnRule(f"{column} > 0", valid_min="smallest_unit")
    # Totals and counts that cannot be negative (fees can: rebates).
    non_negative = [
        "gross_volume",
        "refund_amount",
        "chargeback_amount",
        "gross_amount",
        "spend_1d",
        "spend_7d",
        "spend_30d",
        "user_spend_24h",
        "transaction_count",
        "approved_count",
        "declined_count",
        "refund_count",
        "chargeback_count",
        "transaction_count_1d",
        "transaction_count_7d",
        "transaction_count_30d",
        "decline_count_1d",
        "max_declines_24h",
        "max_transactions_5min",
        "max_transactions_1h",
        "line_count",
        "run_count",
        "records_in",
        "records_out",
        "error_count",
        "quarantine_count",
        "baseline_days",
        "user_transaction_count_24h",
        "user_decline_count_24h",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "throughput_per_second",
        "kafka_partition",
        "kafka_offset",
        "average_ticket",
        "average_ticket_30d",
    ]
    for column in non_negative:
        rules[column] = ColumnRule(f"{column} >= 0", valid_min=0)
    rules["risk_score"] = ColumnRule("risk_score between 0 and 100", valid_min=0, valid_max=100)
    rules["hour_of_day"] = ColumnRule("hour_of_day between 0 and 23", valid_min=0, valid_max=23)
    rules["label"] = ColumnRule("label is 0 or 1", valid_min=0, valid_max=1)
    # PII stays masked (DESIGN decision 7): only last-4 digits and the expiry month survive.
    rules["card_last4"] = ColumnRule("card_last4 is exactly 4 digits", valid_regex=r"^[0-9]{4}$")
    rules["card_expiry_masked"] = ColumnRule("card_expiry_masked is MM/** (year hidden)", valid_regex=r"^(0[1-9]|1[0-2])/\*\*$")
    # A card number (15-19 digits, optionally grouped) not glued to an identifier: a PAN leak.
    rules["payload_masked"] = ColumnRule(
        "payload_masked holds no card number",
        invalid_regex=r"(^|[^0-9A-Za-z_-])[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{3,7}([^0-9A-Za-z_-]|$)",
    )
    return rules


def _type_rule(column: str, dtype) -> ColumnRule | None:
    """Rules implied by a column's type: ML scores and ratios are in [0, 1] (schemas.py conventions)."""
    from spark_apps import schemas as s

    if dtype in (s.SCORE_TYPE, s.RATIO_TYPE):
        return ColumnRule(f"{column} between 0 and 1", valid_min=0, valid_max=1)
    return None


def contract_type(dtype) -> dict[str, Any]:
    """The contract ``data_type`` (+ precision/scale) of a Spark type, valid for both engines."""
    from pyspark.sql import types as T

    simple = {
        T.StringType: "varchar",
        T.IntegerType: "integer",
        T.LongType: "bigint",
        T.BooleanType: "boolean",
        T.DoubleType: "double",
        T.DateType: "date",
        T.TimestampType: "${var.TIMESTAMP_TYPE}",
    }
    for spark_type, name in simple.items():
        if isinstance(dtype, spark_type):
            return {"data_type": name}
    if isinstance(dtype, T.DecimalType):
        return {"data_type": "decimal", "numeric_precision": dtype.precision, "numeric_scale": dtype.scale}
    if isinstance(dtype, T.ArrayType) and isinstance(dtype.elementType, T.StringType):
        return {"data_type": "${var.STRING_ARRAY_TYPE}"}
    raise GateError(f"no contract type for Spark type {dtype.simpleString()}: extend spark_apps.quality.contract_type")


def _rule_check(rule: ColumnRule, dtype) -> dict[str, Any]:
    body: dict[str, Any] = {"name": rule.name}
    if rule.valid_values is not None:
        body["valid_values"] = list(rule.valid_values)
    if rule.valid_min == "smallest_unit":
        # "> 0" on an exact decimal is ">= its smallest unit" (Soda's valid_min is inclusive).
        body["valid_min"] = float(Decimal(1).scaleb(-dtype.scale))
    elif rule.valid_min is not None:
        body["valid_min"] = rule.valid_min
    if rule.valid_max is not None:
        body["valid_max"] = rule.valid_max
    if rule.valid_regex is not None:
        body["valid_format"] = {"name": "pattern", "regex": rule.valid_regex}
    if rule.invalid_regex is not None:
        body["invalid_format"] = {"name": "pattern", "regex": rule.invalid_regex}
    return {"invalid": body}


def generated_block(table: str) -> str:
    """The generated part of ``<table>.yaml``: gate variables and one entry per schema column."""
    from spark_apps.schemas import TABLE_SCHEMAS

    if table not in TABLE_SCHEMAS:
        raise GateError(f"unknown table {table!r}; known: {', '.join(sorted(TABLE_SCHEMAS))}")
    rules = _column_rules()
    columns = []
    for field in TABLE_SCHEMAS[table].fields:
        column: dict[str, Any] = {"name": field.name, **contract_type(field.dataType)}
        checks = []
        if not field.nullable:
            checks.append({"missing": {"name": f"{field.name} is not null"}})
        rule = rules.get(field.name) or _type_rule(field.name, field.dataType)
        if field.name == "version" and table not in VERSION_CHECK_EXEMPT:
            rule = ColumnRule("version is the staged version", valid_values=("${var.VERSION}",))
        if rule is not None:
            checks.append(_rule_check(rule, field.dataType))
        if checks:
            column["checks"] = checks
        columns.append(column)
    variables = {name: None for name in GATE_VARIABLES}
    body = yaml.dump({"variables": variables, "columns": columns}, Dumper=_ContractDumper, sort_keys=False, width=200)
    return f"{GENERATED_BEGIN}\n{body}{GENERATED_END}\n"


class _ContractDumper(yaml.SafeDumper):
    """Block style, indented lists, ``[a, b]`` for lists of scalars and an empty value for None."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


_ContractDumper.add_representer(type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", ""))
_ContractDumper.add_representer(
    list,
    lambda dumper, items: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", items, flow_style=all(not isinstance(item, dict | list) for item in items)
    ),
)


def _default_hand_written(table: str) -> str:
    return (
        f"# Soda v4 data contract for the staged versions of {table} (see docs/quality_gate.md).\n"
        f"# Hand-written part: dataset-level checks. The column block below is generated.\n"
        f"dataset: {DATA_SOURCE_NAME}/{VIEW_SCHEMA}/{table}\n\n"
        "checks:\n"
        "  - schema:\n"
        "      name: columns and types match spark_apps/schemas.py\n"
        "  - metric:\n"
        "      qualifier: manifest_rows\n"
        "      name: row count equals the run manifest's rows\n"
        f"      query: SELECT COUNT(*) - ${{var.MANIFEST_ROWS}} FROM {VIEW_SCHEMA}.{table}\n"
        "      threshold:\n"
        "        must_be: 0\n\n"
    )


def contract_path(table: str, contracts_dir: str | Path | None = None) -> Path:
    return Path(contracts_dir or CONTRACTS_DIR) / f"{table}.yaml"


def render_contract(table: str, current: str | None) -> str:
    """``current`` with its generated block replaced (or a new contract when ``current`` is None)."""
    block = generated_block(table)
    if current is None:
        return _default_hand_written(table) + block
    begin, end = current.find(GENERATED_BEGIN), current.find(GENERATED_END)
    if begin < 0 or end < begin:
        return current.rstrip("\n") + "\n\n" + block
    return current[:begin] + block + current[end + len(GENERATED_END) :].lstrip("\n")


def _all_tables() -> list[str]:
    from spark_apps.schemas import TABLE_SCHEMAS

    return sorted(TABLE_SCHEMAS)


def stale_contracts(contracts_dir: str | Path | None = None) -> list[Path]:
    """Contracts that are missing or whose generated block differs from schemas.py."""
    stale = []
    for table in _all_tables():
        path = contract_path(table, contracts_dir)
        current = path.read_text() if path.is_file() else None
        if current is None or render_contract(table, current) != current:
            stale.append(path)
    return stale


def write_contracts(contracts_dir: str | Path | None = None) -> list[Path]:
    """Create missing contracts and rewrite stale generated blocks; returns the files written."""
    written = []
    for table in _all_tables():
        path = contract_path(table, contracts_dir)
        current = path.read_text() if path.is_file() else None
        rendered = render_contract(table, current)
        if rendered != current:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered)
            written.append(path)
    return written


# --- verification ---------------------------------------------------------------------------


def parse_versioned_location(location: str) -> tuple[str, str]:
    """(dt, version) of ``.../dt=<YYYY-MM-DD>[/hour=<h>]/version=<version>``; raises GateError for any other location."""
    try:
        parsed = parse_version_location(location)
    except ContractError:
        raise GateError(
            f"location {location!r} is not a staged version (.../<table>/dt=<YYYY-MM-DD>/version=<version>)"
        ) from None
    return parsed.dt, parsed.version


def default_contracts_dir() -> Path:
    """The repository's contracts; in the Spark image (spark_apps may be imported from a zip) under $PAYMENTS_PROJECT_ROOT."""
    root = os.environ.get("PAYMENTS_PROJECT_ROOT")
    return Path(root) / "include" / "contracts" if root else CONTRACTS_DIR


def read_contract(table: str, contracts_dir: str | None = None) -> str:
    """The contract text from a local folder or an ``s3://`` prefix (EMR reads it from the artifacts bucket)."""
    contracts_dir = contracts_dir or os.environ.get(CONTRACTS_DIR_ENV_VAR) or str(default_contracts_dir())
    uri = f"{contracts_dir.rstrip('/')}/{table}.yaml"
    try:
        if "://" in uri:
            from spark_apps.lake import read_text

            return read_text(uri)
        return Path(uri).read_text()
    except FileNotFoundError:
        raise GateError(f"no data contract for table {table!r} at {uri}") from None


def referenced_tables(contract_text: str, table: str) -> list[str]:
    """Other datasets the contract's SQL reads (``global_temp.<name>``), which the caller must provide."""
    return sorted({name for name in _REFERENCED_VIEW.findall(contract_text) if name != table})


def _read_manifest(location: str) -> tuple[dict[str, Any], int | None, str]:
    """(manifest, rows, problem): the run manifest ({} if unreadable), its row count, or None and why not."""
    from spark_apps.lake import read_manifest

    try:
        manifest = read_manifest(location)
    except FileNotFoundError:
        return {}, None, f"{MANIFEST_FILE} is missing: the job did not finish writing this version"
    except (OSError, ValueError) as exc:
        return {}, None, f"{MANIFEST_FILE} is unreadable: {exc}"
    if not isinstance(manifest, dict):
        return {}, None, f"{MANIFEST_FILE} is not a JSON object"
    rows = manifest.get(MANIFEST_ROWS_KEY)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return manifest, None, f"{MANIFEST_FILE} has no non-negative integer {MANIFEST_ROWS_KEY!r} (got {rows!r})"
    return manifest, rows, ""


def gate_variables(
    engine: str, location: str, manifest_rows: int | None, now: dt.datetime, extra: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The contract variables of one verification (see GATE_VARIABLES); ``extra`` may add or override.

    ``NOW_UTC`` is naive UTC text (``YYYY-MM-DD HH:MM:SS``): DuckDB ignores an offset when
    casting text to TIMESTAMP while Spark applies it, so the gate never passes one.
    """
    dt_value, version = parse_versioned_location(location)
    extra = dict(extra or {})
    # The Airflow side passes the partition date as ``dt``; it must be the location's.
    if "dt" in extra and str(extra.pop("dt")) != dt_value:
        raise GateError(f"dt variable does not match the location's dt={dt_value}: {location}")
    variables = {
        **ENGINE_TYPE_VARIABLES[engine],
        "DT": dt_value,
        "VERSION": version,
        # -1 can never equal a row count, so the manifest check fails instead of passing vacuously.
        "MANIFEST_ROWS": str(-1 if manifest_rows is None else manifest_rows),
        "NOW_UTC": now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    variables.update({key: str(value) for key, value in extra.items()})
    return variables


def verify_staged_version(
    table: str,
    location: str,
    engine: str = "duckdb",
    spark=None,
    variables: Mapping[str, Any] | None = None,
    references: Mapping[str, str] | None = None,
    contracts_dir: str | None = None,
    now: dt.datetime | None = None,
) -> GateResult:
    """Verify the staged Parquet version at ``location`` against ``include/contracts/<table>.yaml``.

    ``references`` maps other table names the contract queries (``global_temp.<name>``) to
    the version locations to compare with; by default they come from the manifest's
    ``inputs`` ({table: location} of the versions the job read). ``now`` fixes the
    freshness reference time (default: now).
    Caller mistakes raise :class:`GateError`; anything wrong with the data is a failed result.
    """
    if engine not in ENGINES:
        raise GateError(f"engine must be one of {ENGINES}, not {engine!r}")
    contract_text = read_contract(table, contracts_dir)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    manifest, manifest_rows, manifest_problem = _read_manifest(location)
    # The job records the versions it read as manifest "inputs"; explicit references win.
    inputs = manifest.get(MANIFEST_INPUTS_KEY)
    references = {**(inputs if isinstance(inputs, dict) else {}), **(references or {})}
    missing = [name for name in referenced_tables(contract_text, table) if not references.get(name)]
    if missing:
        raise GateError(
            f"contract {table}.yaml reads {', '.join(missing)}: pass their locations as references "
            f"or record them in the manifest's {MANIFEST_INPUTS_KEY!r}"
        )
    references = {name: references[name] for name in referenced_tables(contract_text, table)}
    contract_variables = gate_variables(engine, location, manifest_rows, now, variables)
    datasets = {table: location, **references}

    run = _run_on_duckdb if engine == "duckdb" else _run_on_spark
    result = run(table, datasets, contract_text, contract_variables, now, spark)
    if manifest_problem:
        result.passed = False
        result.checks_failed.insert(0, {"name": "run manifest is complete", "path": "gate", "diagnostic": manifest_problem})
        result.checks_total += 1
        result.log = f"{manifest_problem}\n{result.log}"
    return result


def _load_soda() -> None:
    """Import Soda Core before a data source package: it loads the data source plugins itself."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")  # no usage pings from the data platform
    import soda_core  # noqa: F401


def _run_on_duckdb(table, datasets, contract_text, variables, now, spark) -> GateResult:
    import duckdb

    _load_soda()
    from soda_duckdb import DuckDBDataSource

    connection = duckdb.connect()  # in-memory and private to this verification
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(f"CREATE SCHEMA {VIEW_SCHEMA}")
        for name, location in datasets.items():
            if "://" in location:
                return GateResult.failure(
                    table,
                    datasets[table],
                    "duckdb",
                    "staged version is readable",
                    f"the duckdb engine reads local folders only, not {location}",
                )
            glob = f"{location.rstrip('/')}/*.parquet".replace("'", "''")
            try:
                # hive_partitioning off: dt=/version= folder names are not columns of the data.
                connection.execute(
                    f"CREATE VIEW {VIEW_SCHEMA}.{name} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = false)"
                )
                connection.execute(f"SELECT * FROM {VIEW_SCHEMA}.{name} LIMIT 0")
            except duckdb.Error as exc:
                return GateResult.failure(
                    table, datasets[table], "duckdb", f"{name} version is readable Parquet", f"{location}: {exc}"
                )
        data_source = DuckDBDataSource.from_existing_cursor(connection, name=DATA_SOURCE_NAME)
        return _verify(table, datasets[table], "duckdb", data_source, contract_text, variables, now)
    finally:
        connection.close()


def _run_on_spark(table, datasets, contract_text, variables, now, spark) -> GateResult:
    from pyspark.errors import AnalysisException
    from pyspark.sql import SparkSession

    _load_soda()
    from soda_sparkdf import SparkDataFrameDataSource

    spark = spark or SparkSession.getActiveSession()
    if spark is None:
        raise GateError("the spark engine needs a SparkSession (pass spark=...)")
    registered = []
    try:
        for name, location in datasets.items():
            try:
                spark.read.parquet(location).createOrReplaceGlobalTempView(name)
            except AnalysisException as exc:
                return GateResult.failure(
                    table, datasets[table], "spark", f"{name} version is readable Parquet", f"{location}: {exc}"
                )
            registered.append(name)
        data_source = SparkDataFrameDataSource.from_existing_session(spark, name=DATA_SOURCE_NAME)
        return _verify(table, datasets[table], "spark", data_source, contract_text, variables, now)
    finally:
        for name in registered:
            spark.catalog.dropGlobalTempView(name)


def _verify(table, location, engine, data_source, contract_text, variables, now) -> GateResult:
    from soda_core.common.yaml import ContractYamlSource
    from soda_core.contracts.contract_verification import CheckCollectionStatus, ContractVerificationSession

    session_result = ContractVerificationSession.execute(
        contract_yaml_sources=[ContractYamlSource.from_str(contract_text, file_path=f"{table}.yaml")],
        data_source_impls=[data_source],
        variables=variables,
        data_timestamp=now.isoformat(),  # the reference time of freshness checks
    )
    errors = session_result.get_errors()
    checks_failed: list[dict[str, str]] = []
    lines = []
    check_results = [r for result in session_result.contract_verification_results for r in result.check_results]
    for check_result in check_results:
        check = check_result.check
        name = check.name or f"{check.type} on {check.column_name or table}"
        diagnostic = " ".join(check_result.log_table_row_diagnostics(verbose=False).split())
        if check_result.threshold_value is not None:
            diagnostic = f"measured {check_result.threshold_value}; {diagnostic}".rstrip("; ")
        outcome = check_result.outcome.name
        lines.append(f"{outcome:<13} {name} [{check.relative_path}] {diagnostic}".rstrip())
        if not (check_result.is_passed or check_result.is_warned):
            if check_result.is_not_evaluated:
                diagnostic = f"not evaluated: {'; '.join(errors) or 'see log'}"
            checks_failed.append({"name": name, "path": check.relative_path, "diagnostic": diagnostic})
    statuses = [result.status for result in session_result.contract_verification_results]
    ran_clean = bool(statuses) and all(
        status in (CheckCollectionStatus.PASSED, CheckCollectionStatus.WARNED) for status in statuses
    )
    if errors and not checks_failed:
        checks_failed.append(
            {"name": "contract verification ran without errors", "path": "contract", "diagnostic": "; ".join(errors)}
        )
    passed = ran_clean and not errors and not checks_failed and bool(check_results)
    if not passed and not checks_failed:
        checks_failed.append(
            {"name": "contract produced check results", "path": "contract", "diagnostic": "no checks were evaluated"}
        )
    header = f"{'PASSED' if passed else 'FAILED'}: {table} at {location} ({engine}), {len(check_results)} checks, {len(checks_failed)} failed"
    log = "\n".join([header, *lines, *(f"ERROR {error}" for error in errors)])
    return GateResult(table, location, engine, passed, max(len(check_results), len(checks_failed)), checks_failed, log)


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_apps.quality", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write-contracts", help="create missing contracts and rewrite their generated blocks")
    commands.add_parser("check-contracts", help="fail when a contract is missing or its generated block is stale")
    verify = commands.add_parser("verify", help="verify one staged version with DuckDB (local profile)")
    verify.add_argument("--table", required=True)
    verify.add_argument("--location", required=True)
    verify.add_argument("--reference", action="append", default=[], metavar="TABLE=LOCATION")
    args = parser.parse_args(argv)

    if args.command == "write-contracts":
        for path in write_contracts():
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    if args.command == "check-contracts":
        stale = stale_contracts()
        for path in stale:
            print(f"stale: {path.relative_to(PROJECT_ROOT)} (run: python -m spark_apps.quality write-contracts)", file=sys.stderr)
        return 1 if stale else 0
    references = dict(item.split("=", 1) for item in args.reference)
    result = verify_staged_version(args.table, args.location, engine="duckdb", references=references)
    print(result.log)
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
