"""Typed loader of ``include/config/indexes.yaml``: the thresholds of the business indexes.

Money and ratios are read as :class:`~decimal.Decimal` from strings (a YAML float is
refused), unknown keys are refused, and tests build variants with :func:`replace`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[2] / "include" / "config" / "indexes.yaml"


class IndexConfigError(ValueError):
    """A missing, unknown or mistyped setting in the index configuration."""


@dataclass(frozen=True)
class AggregateConfig:
    retention_days: int = 120


@dataclass(frozen=True)
class FraudConfig:
    risk_score_threshold: int = 70
    ml_score_threshold: Decimal = Decimal("0.8000")


@dataclass(frozen=True)
class ReconciliationConfig:
    late_settlement_days: int = 3
    statement_lag_days: int = 0
    settling_statuses: tuple[str, ...] = ("AUTHORIZED", "REFUNDED")


@dataclass(frozen=True)
class MerchantPerformanceConfig:
    baseline_days: int = 14
    volume_anomaly_factor: Decimal = Decimal("3")
    chargeback_ratio_threshold: Decimal = Decimal("0.01")
    min_baseline_days: int = 3


@dataclass(frozen=True)
class UserSpendConfig:
    repeated_decline_count: int = 3
    repeated_decline_window_hours: int = 24


@dataclass(frozen=True)
class ComplianceConfig:
    reporting_currency_threshold: Decimal = Decimal("10000.00")
    structuring_margin: Decimal = Decimal("1000.00")
    structuring_min_count: int = 2
    structuring_window_hours: int = 24
    high_risk_countries: tuple[str, ...] = ()


@dataclass(frozen=True)
class SettlementScheduleConfig:
    weekly_payout_weekday: int = 5


@dataclass(frozen=True)
class MlFeedbackConfig:
    label_maturity_days: int = 30


@dataclass(frozen=True)
class IndexConfig:
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    fraud: FraudConfig = field(default_factory=FraudConfig)
    reconciliation: ReconciliationConfig = field(default_factory=ReconciliationConfig)
    merchant_performance: MerchantPerformanceConfig = field(default_factory=MerchantPerformanceConfig)
    user_spend: UserSpendConfig = field(default_factory=UserSpendConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    settlement_schedule: SettlementScheduleConfig = field(default_factory=SettlementScheduleConfig)
    ml_feedback: MlFeedbackConfig = field(default_factory=MlFeedbackConfig)


def _coerce(where: str, value: Any, annotation: str) -> Any:
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise IndexConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation == "Decimal":
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise IndexConfigError(f'{where}: expected a decimal string such as "0.01", got {value!r}')
        try:
            return Decimal(str(value))
        except ArithmeticError:
            raise IndexConfigError(f"{where}: not a decimal: {value!r}") from None
    if annotation == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise IndexConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    raise IndexConfigError(f"{where}: unsupported setting type {annotation}")


def _section(cls: type, where: str, values: Any) -> Any:
    if not isinstance(values, dict):
        raise IndexConfigError(f"{where}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise IndexConfigError(f"{where}: unknown settings {unknown}")
    return cls(**{name: _coerce(f"{where}.{name}", value, fields[name].type) for name, value in values.items()})


def parse_index_config(document: Any) -> IndexConfig:
    """An :class:`IndexConfig` from the parsed YAML mapping; omitted settings keep their defaults."""
    if document is None:
        return IndexConfig()
    if not isinstance(document, dict):
        raise IndexConfigError(f"index config: expected a mapping, got {document!r}")
    sections = {f.name: f.default_factory for f in dataclasses.fields(IndexConfig)}
    unknown = sorted(set(document) - set(sections))
    if unknown:
        raise IndexConfigError(f"index config: unknown sections {unknown}")
    return IndexConfig(**{name: _section(sections[name], name, values) for name, values in document.items()})


def load_index_config(path: str | Path | None = None) -> IndexConfig:
    """Load ``include/config/indexes.yaml`` (or ``path``)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    return parse_index_config(yaml.safe_load(path.read_text()))


def replace(config: IndexConfig, **sections: dict[str, Any]) -> IndexConfig:
    """A copy of ``config`` with some settings changed, e.g. ``replace(cfg, fraud={"risk_score_threshold": 50})``."""
    return dataclasses.replace(
        config, **{name: dataclasses.replace(getattr(config, name), **changes) for name, changes in sections.items()}
    )
