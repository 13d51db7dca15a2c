"""The deterministic, seeded payments workload of one day, with its ground truth.

Everything is built column-wise with numpy and pyarrow (no per-row Python in the
hot path), so 10 million transactions take a few minutes. The same seed, date and
configuration always give byte-identical tables.

:func:`generate_day` returns a :class:`Workload`: Arrow tables per raw source plus
the ground truth. ``Workload.transactions`` holds every raw transaction record
(valid, duplicate and malformed) in **produce order**, all fields as text the way
they arrive; ``raw_text`` is set where the record's serialization is itself broken
(an unparseable line, a JSON value of the wrong type) and must be sent verbatim.
:meth:`Workload.kafka_messages` yields the records as Kafka (key, value, timestamp)
tuples in that order, for the streaming producer.

How the day is built (so the ground truth is exact):

* normal users transact ~20 times a day in fixed time slots at least ~18 minutes
  apart, always from their home country, one card and one device, amounts up to
  3,000 USD-equivalent: no fraud rule can fire on them;
* fraud patterns use their own fresh users: card-testing bursts (8 small charges on
  one card within 40 s), geo jumps (a second country within 10-50 minutes), high
  amounts (8,000-20,000 USD), device churn (5 devices in a day) and transactions
  from policy-blocked countries;
* duplicates: exact resends (half into another gateway) and retries (a PENDING
  record, then the AUTHORIZED one with a later updated_at; half of them produced out
  of order); late events carry the previous day's event time;
* malformed records (fresh ids, one defect each) of every class in schemas.Reason;
* settlement lines with injected reconciliation breaks, refunds and chargebacks;
* card data in every shape masking must catch (:data:`CARD_TEXT_STYLES`): some cards written
  with spaces or dashes, a card number typed into some users' ``device_id``, IPv6 addresses
  (compressed, IPv4-mapped), unparseable lines holding grouped card numbers and CVVs under
  other names (``CVV``, ``cvc``, ``cvv2``, ``cvv=123``, a quoted CSV value), and one
  unparseable line in the fraud-scores and settlements drops (``Workload.side_raw_lines``,
  batch drops only). Derived from the user number, not drawn: the random draws, and so every
  count of the ground truth, are the same as without them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_apps.schemas import CURRENCY_MINOR_UNITS, RAW_TRANSACTION_FIELDS, REPORTING_CURRENCY, Reason

GATEWAYS = ("gateway_a", "gateway_b", "gateway_c")
TEXT_GATEWAYS = ("gateway_a", "gateway_b")  # the ones whose format has "lines" that can be unparseable
COUNTRIES = ("US", "GB", "DE", "FR", "JP", "CA", "AU", "CH", "SE", "SG", "IN", "BR", "MX")
COUNTRY_WEIGHTS = (0.40, 0.10, 0.08, 0.07, 0.06, 0.06, 0.05, 0.03, 0.03, 0.03, 0.04, 0.03, 0.02)
COUNTRY_CURRENCY = {
    "US": "USD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "JP": "JPY",
    "CA": "CAD",
    "AU": "AUD",
    "CH": "CHF",
    "SE": "SEK",
    "SG": "SGD",
    "IN": "INR",
    "BR": "BRL",
    "MX": "MXN",
}
BLOCKED_COUNTRIES = ("KP", "IR", "SY")
# Units of REPORTING_CURRENCY per unit of currency (the day's rates wobble around these).
BASE_FX = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "JPY": 0.0067,
    "CAD": 0.73,
    "AUD": 0.66,
    "CHF": 1.13,
    "SEK": 0.095,
    "SGD": 0.75,
    "INR": 0.012,
    "BRL": 0.2,
    "MXN": 0.058,
}
CURRENCIES = tuple(CURRENCY_MINOR_UNITS)
STATUSES = ("AUTHORIZED", "DECLINED", "PENDING", "REVERSED", "REFUNDED")
NORMAL_STATUS_WEIGHTS = (0.87, 0.08, 0.03, 0.02, 0.0)
CHANNELS = ("POS", "ECOM", "MOBILE")
MCCS = ("5411", "5812", "5999", "4111", "5732", "7011", "5311", "5942")
MODEL_VERSIONS = ("fraud-gbm-2026.11.1", "fraud-gbm-2026.11.2")
EXPLANATIONS = (
    '{"top_features":["amount","merchant_risk"],"contributions":[0.12,0.05]}',
    '{"top_features":["hour_of_day","channel"],"contributions":[0.08,0.03]}',
    '{"top_features":["user_tenure","amount"],"contributions":[0.10,0.04]}',
    '{"top_features":["velocity_1m","small_amount","card_age"],"contributions":[0.41,0.22,0.10]}',
)
LATE_SETTLEMENT_AFTER_HOURS = 72
POLICY_VELOCITY_PER_MINUTE = 3  # both policy versions; a card-testing burst exceeds it, normal cards never do
MALFORMED_CLASSES = (
    Reason.UNPARSEABLE,
    Reason.MISSING_REQUIRED_FIELD,
    Reason.NON_POSITIVE_AMOUNT,
    Reason.UNKNOWN_CURRENCY,
    Reason.INVALID_TIMESTAMP,
    Reason.OVERSIZE_FIELD,
    Reason.WRONG_TYPE,
)
RECON_STATUSES = (
    "MATCHED",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
    "MISSING_IN_STATEMENT",
    "MISSING_INTERNAL",
    "DUPLICATE_SETTLEMENT",
    "LATE_SETTLEMENT",
)

_MS_PER_DAY = 86_400_000
# How a card number is written: as digits, in groups of four separated by spaces, by dashes, or both.
CARD_TEXT_STYLES = ("digits", "spaces", "dashes", "mixed")
PII_PERIOD = 20  # users u with u % PII_PERIOD in a style's slot get that style (so small days have each)
_PAN_STYLE_SLOT = {1: 1, 2: 2, 3: 3}  # u % PII_PERIOD -> CARD_TEXT_STYLES index of the pan field
_DEVICE_PAN_SLOTS = (4, 14)  # u % PII_PERIOD: device_id ends with " card <pan>"
_IPV6_SLOTS = {6: "compressed", 7: "mapped", 16: "full", 17: "link_local"}  # u % PII_PERIOD -> IPv6 form
_CVV_KEYS = ("cvv", "CVV", "cvc", "cvv2")  # JSON key of the CVV in unparseable JSON lines


@dataclass(frozen=True)
class WorkloadConfig:
    """What to generate. Rates are fractions of ``transactions``; every class with a
    positive rate gets at least one instance, so even 1,000 transactions cover them all."""

    date: str
    transactions: int = 1000  # unique valid transactions (the expected indexed count)
    seed: int = 42
    exact_resend_rate: float = 0.01
    retry_rate: float = 0.01
    out_of_order_share: float = 0.5  # of the retries, produced before their original
    late_rate: float = 0.005
    malformed_rate: float = 0.007  # split evenly across the malformed classes
    card_testing_rate: float = 0.00005  # bursts per transaction
    card_testing_burst: int = 8
    geo_jump_rate: float = 0.0001
    high_amount_rate: float = 0.0002
    device_churn_rate: float = 0.00005  # users per transaction
    device_churn_devices: int = 5
    geo_block_rate: float = 0.0001
    refund_rate: float = 0.01
    chargeback_rate: float = 0.002
    missing_in_statement_rate: float = 0.002
    missing_internal_rate: float = 0.001
    amount_mismatch_rate: float = 0.002
    currency_mismatch_rate: float = 0.001
    duplicate_settlement_rate: float = 0.001
    late_settlement_rate: float = 0.002
    missing_score_rate: float = 0.02
    rescore_rate: float = 0.05

    def count(self, rate: float) -> int:
        return 0 if rate <= 0 else max(1, round(self.transactions * rate))

    def __post_init__(self) -> None:
        dt.date.fromisoformat(self.date)
        if self.transactions < 1000:
            raise ValueError("transactions: at least 1000 (every anomaly class needs room)")


@dataclass
class Workload:
    config: WorkloadConfig
    records: pa.Table  # every raw transaction record: RAW fields + source_name, produce_ms, raw_text (unordered)
    produce_order: np.ndarray  # row indices of ``records`` in produce order
    fraud_scores: pa.Table
    settlements: pa.Table
    merchants: pa.Table
    users: pa.Table
    policies: pa.Table
    fx_rates: pa.Table
    truth: dict[str, Any]
    reconciliation_truth: pa.Table  # transaction_id, line_id, expected_status
    # Unparseable lines of side sources, written verbatim into their raw drops (not streamed).
    side_raw_lines: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    @property
    def transactions(self) -> pa.Table:
        """The raw transaction records in produce order (a sorted copy: built on each access)."""
        return self.records.take(pa.array(self.produce_order))

    def gateway_table(self, gateway: str) -> pa.Table:
        """One gateway's raw records (including its malformed ones), in produce order."""
        in_gateway = pc.equal(self.records.column("source_name"), gateway).to_numpy(zero_copy_only=False)
        order = self.produce_order[in_gateway[self.produce_order]]
        return self.records.take(pa.array(order))

    def source_table(self, source: str) -> pa.Table:
        """The raw table of any source name (see spark_apps.sources.RAW_SOURCES)."""
        if source in GATEWAYS:
            return self.gateway_table(source)
        return getattr(self, source)

    def kafka_messages(self, batch_size: int = 10_000) -> Iterator[tuple[bytes, bytes, int]]:
        """(key, value, timestamp_ms) per transaction record in produce order; values are JSON
        text (or the verbatim broken text of malformed records); key is the transaction id."""
        yield from _json_messages(self.transactions, batch_size)

    def fraud_signal_messages(self, batch_size: int = 10_000) -> Iterator[tuple[bytes, bytes, int]]:
        """(key, value, timestamp_ms) per fraud model output, ordered by inference_time."""
        order = pc.sort_indices(self.fraud_scores, [("inference_time", "ascending"), ("transaction_id", "ascending")])
        table = self.fraud_scores.take(order)
        produce = pc.cast(pc.cast(table.column("inference_time"), pa.timestamp("ms", tz="UTC")), pa.int64())
        table = table.append_column("produce_ms", produce)
        yield from _json_messages(table, batch_size)


def _json_messages(table: pa.Table, batch_size: int) -> Iterator[tuple[bytes, bytes, int]]:
    fields = [name for name in table.column_names if name not in ("source_name", "produce_ms", "raw_text")]
    for batch in table.to_batches(max_chunksize=batch_size):
        columns = batch.to_pydict()
        raw = columns.get("raw_text") or [None] * batch.num_rows
        for i in range(batch.num_rows):
            key = columns["transaction_id"][i]
            value = (
                raw[i] if raw[i] is not None else json.dumps({name: columns[name][i] for name in fields}, separators=(",", ":"))
            )
            yield (key or "").encode(), value.encode(), int(columns["produce_ms"][i])


# --- small vectorized string helpers ---------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width, "0"), "")


def _iso(ms: np.ndarray) -> pa.Array:
    # Arrow's cast prints "YYYY-MM-DD hh:mm:ss.fff" ~15x faster than strftime; make it ISO-8601 UTC.
    text = pa.array(ms, pa.timestamp("ms")).cast(pa.string())
    return pc.binary_join_element_wise(pc.utf8_replace_slice(text, start=10, stop=11, replacement="T"), "Z", "")


def _take(values: tuple[str, ...] | list[str], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index, pa.int64()))


def _money(minor: np.ndarray, digits: np.ndarray) -> pa.Array:
    """Exact decimal text of integer minor units with 0 or 2 decimals ("12.05", "1500")."""
    minor = np.asarray(minor, np.int64)
    sign = np.where(minor < 0, "-", "")
    absolute = np.abs(minor)
    whole2 = (absolute // 100).astype(np.int64)
    frac2 = pc.utf8_lpad(pa.array(absolute % 100, pa.int64()).cast(pa.string()), 2, "0")
    two = pc.binary_join_element_wise(pa.array(sign), pa.array(whole2).cast(pa.string()), ".", frac2, "")
    zero = pc.binary_join_element_wise(pa.array(sign), pa.array(absolute).cast(pa.string()), "")
    return pc.if_else(pa.array(np.asarray(digits) == 0), zero, two)


def _luhn_pans(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` Luhn-valid 16-digit card numbers starting with 4 (int64)."""
    digits = rng.integers(0, 10, size=(count, 15), dtype=np.int64)
    digits[:, 0] = 4
    doubled = np.arange(15) % 2 == 0  # positions 1, 3, ... from the right once the check digit is appended
    contrib = np.where(doubled, digits * 2, digits)
    contrib = np.where(contrib > 9, contrib - 9, contrib)
    check = (10 - contrib.sum(axis=1) % 10) % 10
    powers = 10 ** np.arange(15, 0, -1, dtype=np.int64)
    return (digits * powers).sum(axis=1) + check


def card_text(pan: str, style: int) -> str:
    """``pan`` written in CARD_TEXT_STYLES[style]: "4111111111111111", "4111 1111 1111 1111",
    "4111-1111-1111-1111" or "4111 1111-1111 1111"."""
    if style == 0:
        return pan
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    if style == 1:
        return " ".join(groups)
    if style == 2:
        return "-".join(groups)
    return "".join(g + ("" if i == len(groups) - 1 else ("-" if i % 2 else " ")) for i, g in enumerate(groups))


def _ip_texts(ip_octets: np.ndarray) -> list[str]:
    """Per user: its IPv4 address, or for the users of _IPV6_SLOTS an IPv6 address built from it."""
    texts = []
    for u, (a, b, c, d) in enumerate(ip_octets.tolist()):
        form = _IPV6_SLOTS.get(u % PII_PERIOD)
        if form == "compressed":
            texts.append(f"2001:db8:{a:x}{b:02x}::{c:x}{d:02x}")
        elif form == "mapped":
            texts.append(f"::ffff:{a}.{b}.{c}.{d}")
        elif form == "full":
            texts.append(f"2001:0DB8:{a:04X}:{b:04x}:0000:0000:{c:04x}:{d:04x}")
        elif form == "link_local":
            texts.append(f"fe80::{a:x}:{d:x}")
        else:
            texts.append(f"{a}.{b}.{c}.{d}")
    return texts


def _fixed(values: np.ndarray, decimals: int) -> pa.Array:
    scaled = np.round(values * 10**decimals).astype(np.int64)
    whole = pa.array(scaled // 10**decimals).cast(pa.string())
    frac = pc.utf8_lpad(pa.array(scaled % 10**decimals).cast(pa.string()), decimals, "0")
    return pc.binary_join_element_wise(whole, frac, ".")


# --- the day ------------------------------------------------------------------------------


def generate_day(config: WorkloadConfig) -> Workload:
    date = dt.date.fromisoformat(config.date)
    day_tag = date.strftime("%Y%m%d")
    day0_ms = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp() * 1000)
    rng = np.random.default_rng([config.seed, int(day_tag)])
    n = config.transactions

    # -- pattern sizes and users ------------------------------------------------------------
    bursts = config.count(config.card_testing_rate)
    geo_jumps = config.count(config.geo_jump_rate)
    highs = config.count(config.high_amount_rate)
    churners = config.count(config.device_churn_rate)
    blocked = config.count(config.geo_block_rate)
    pattern_txns = bursts * config.card_testing_burst + geo_jumps * 2 + highs + churners * config.device_churn_devices + blocked
    n_normal = n - pattern_txns
    if n_normal < n // 2:
        raise ValueError("fraud pattern rates leave too few normal transactions")
    n_normal_users = max(10, n_normal // 20)
    n_pattern_users = bursts + geo_jumps + highs + churners + blocked
    n_users = n_normal_users + n_pattern_users
    n_merchants = max(20, n // 500)

    user_country = rng.choice(len(COUNTRIES), size=n_users, p=COUNTRY_WEIGHTS)
    merchant_country = rng.choice(len(COUNTRIES), size=n_merchants, p=COUNTRY_WEIGHTS)
    merchant_currency = np.array([CURRENCIES.index(COUNTRY_CURRENCY[COUNTRIES[c]]) for c in range(len(COUNTRIES))])[
        merchant_country
    ]
    country_names = COUNTRIES + BLOCKED_COUNTRIES

    # -- normal transactions: per-user time slots ---------------------------------------------
    idx = np.arange(n_normal)
    user = rng.permutation(n_normal_users)[idx % n_normal_users]
    slot = idx // n_normal_users
    slots = -(-n_normal // n_normal_users)
    width = _MS_PER_DAY // slots
    user_offset = rng.integers(0, width // 2, size=n_normal_users)
    t_ms = day0_ms + slot * width + user_offset[user] + rng.integers(0, width // 4, size=n_normal)
    merchant = rng.integers(0, n_merchants, size=n_normal)
    currency = merchant_currency[merchant]
    usd = np.clip(rng.lognormal(np.log(40.0), 1.0, size=n_normal), 1.0, 3000.0)
    fx = np.array([BASE_FX[c] for c in CURRENCIES])[currency]
    digits = np.array([CURRENCY_MINOR_UNITS[c] for c in CURRENCIES])[currency]
    amount_minor = np.maximum(1, np.round(usd / fx * 10.0**digits)).astype(np.int64)
    status = rng.choice(len(STATUSES), size=n_normal, p=NORMAL_STATUS_WEIGHTS)
    channel = rng.integers(0, 3, size=n_normal)
    country = user_country[user]
    device_no = np.zeros(n_normal, np.int64)
    kind = np.zeros(n_normal, np.int8)  # 0 normal; pattern kinds below

    # -- fraud patterns (fresh users) ------------------------------------------------------------
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("user", "t", "merchant", "currency", "minor", "status", "channel", "country", "device", "kind")
    }

    def add(users, times, minor, currency_idx, country_idx, devices, kind_code, channel_idx=None):
        size = len(users)
        parts["user"].append(np.asarray(users, np.int64))
        parts["t"].append(np.asarray(times, np.int64))
        parts["merchant"].append(rng.integers(0, n_merchants, size=size))
        parts["currency"].append(
            np.full(size, currency_idx, np.int64) if np.isscalar(currency_idx) else np.asarray(currency_idx, np.int64)
        )
        parts["minor"].append(np.asarray(minor, np.int64))
        parts["status"].append(np.zeros(size, np.int64))
        parts["channel"].append(np.full(size, 1, np.int64) if channel_idx is None else np.asarray(channel_idx, np.int64))
        parts["country"].append(np.asarray(country_idx, np.int64))
        parts["device"].append(np.asarray(devices, np.int64))
        parts["kind"].append(np.full(size, kind_code, np.int8))

    usd_idx = CURRENCIES.index(REPORTING_CURRENCY)
    next_user = n_normal_users
    # card testing: B charges 5 s apart (+ < 1 s jitter), 0.50-3.00 USD, one card
    k = config.card_testing_burst
    ct_users = np.repeat(np.arange(next_user, next_user + bursts), k)
    ct_start = day0_ms + rng.integers(0, _MS_PER_DAY - 120_000, size=bursts)
    ct_times = np.repeat(ct_start, k) + np.tile(np.arange(k) * 5000, bursts) + rng.integers(0, 900, size=bursts * k)
    add(ct_users, ct_times, rng.integers(50, 301, size=bursts * k), usd_idx, user_country[ct_users], np.zeros(bursts * k), 1)
    next_user += bursts
    # geo jumps: home country, then another country 10-50 minutes later
    gj_users = np.repeat(np.arange(next_user, next_user + geo_jumps), 2)
    gj_start = day0_ms + rng.integers(0, _MS_PER_DAY - 3_600_000, size=geo_jumps)
    gj_gap = rng.integers(10 * 60_000, 50 * 60_000, size=geo_jumps)
    gj_times = np.stack([gj_start, gj_start + gj_gap], axis=1).ravel()
    home = user_country[gj_users[::2]]
    away = (home + rng.integers(1, len(COUNTRIES), size=geo_jumps)) % len(COUNTRIES)
    gj_countries = np.stack([home, away], axis=1).ravel()
    add(gj_users, gj_times, rng.integers(2000, 30000, size=geo_jumps * 2), usd_idx, gj_countries, np.zeros(geo_jumps * 2), 2)
    next_user += geo_jumps
    # high amounts: 8,000-20,000 USD
    ha_users = np.arange(next_user, next_user + highs)
    add(
        ha_users,
        day0_ms + rng.integers(0, _MS_PER_DAY, size=highs),
        rng.integers(800_000, 2_000_001, size=highs),
        usd_idx,
        user_country[ha_users],
        np.zeros(highs),
        3,
    )
    next_user += highs
    # device churn: D transactions 40 minutes apart, each from a new device
    dcount = config.device_churn_devices
    dc_users = np.repeat(np.arange(next_user, next_user + churners), dcount)
    dc_start = day0_ms + rng.integers(0, _MS_PER_DAY - dcount * 2_400_000, size=churners)
    dc_times = np.repeat(dc_start, dcount) + np.tile(np.arange(dcount) * 2_400_000, churners)
    add(
        dc_users,
        dc_times,
        rng.integers(1000, 20000, size=churners * dcount),
        usd_idx,
        user_country[dc_users],
        np.tile(np.arange(dcount), churners),
        4,
    )
    next_user += churners
    # policy-blocked countries: users who live there
    gb_users = np.arange(next_user, next_user + blocked)
    gb_country = len(COUNTRIES) + rng.integers(0, len(BLOCKED_COUNTRIES), size=blocked)
    user_country[gb_users] = gb_country
    add(
        gb_users,
        day0_ms + rng.integers(0, _MS_PER_DAY, size=blocked),
        rng.integers(1000, 20000, size=blocked),
        usd_idx,
        gb_country,
        np.zeros(blocked),
        5,
    )
    next_user += blocked

    user = np.concatenate([user, *parts["user"]])
    t_ms = np.concatenate([t_ms, *parts["t"]])
    merchant = np.concatenate([merchant, *parts["merchant"]])
    currency = np.concatenate([currency, *parts["currency"]])
    amount_minor = np.concatenate([amount_minor, *parts["minor"]])
    status = np.concatenate([status, *parts["status"]])
    channel = np.concatenate([channel, *parts["channel"]])
    country = np.concatenate([country, *parts["country"]])
    device_no = np.concatenate([device_no, *parts["device"]])
    kind = np.concatenate([kind, *parts["kind"]])
    assert len(user) == n

    txn_no = np.arange(n, dtype=np.int64)
    normal_idx = np.flatnonzero(kind == 0)
    normal_auth = normal_idx[status[normal_idx] == 0]
    shuffled_auth = rng.permutation(normal_auth)
    n_retry, n_refund = config.count(config.retry_rate), config.count(config.refund_rate)
    n_chargeback = config.count(config.chargeback_rate)
    retry_idx = np.sort(shuffled_auth[:n_retry])
    refund_idx = np.sort(shuffled_auth[n_retry : n_retry + n_refund])
    status[refund_idx] = STATUSES.index("REFUNDED")
    rest = np.setdiff1d(normal_idx, retry_idx)
    rest = rng.permutation(rest)
    n_resend, n_late = config.count(config.exact_resend_rate), config.count(config.late_rate)
    resend_idx = np.sort(rest[:n_resend])
    late_idx = np.sort(rest[n_resend : n_resend + n_late])
    t_ms[late_idx] -= _MS_PER_DAY  # yesterday's events, arriving in today's drop
    upd_ms = t_ms + rng.integers(100, 2000, size=n)
    first_upd = upd_ms[retry_idx].copy()
    final_upd = first_upd + rng.integers(30_000, 600_000, size=n_retry)
    upd_ms[retry_idx] = final_upd  # the final (AUTHORIZED) record of a retried transaction
    digits = np.array([CURRENCY_MINOR_UNITS[c] for c in CURRENCIES])[currency]

    # -- users and cards ------------------------------------------------------------------------
    pans = _luhn_pans(rng, n_users)
    cvv = rng.integers(100, 1000, size=n_users)
    exp_month = rng.integers(1, 13, size=n_users)
    exp_year = (date.year % 100) + rng.integers(1, 6, size=n_users)
    ip_octets = rng.integers(1, 255, size=(n_users, 4))
    ip_octets[:, 0] = rng.choice([23, 45, 62, 81, 92, 103, 151, 185, 203], size=n_users)
    # Card data in the shapes gateways really send (no random draws: the truth is unchanged).
    pan_digits = pa.array(pans).cast(pa.string()).to_pylist()
    user_slot = np.arange(n_users) % PII_PERIOD
    pan_text = list(pan_digits)
    for u in np.flatnonzero(np.isin(user_slot, list(_PAN_STYLE_SLOT))).tolist():
        pan_text[u] = card_text(pan_digits[u], _PAN_STYLE_SLOT[u % PII_PERIOD])
    device_note = [""] * n_users
    for u in np.flatnonzero(np.isin(user_slot, _DEVICE_PAN_SLOTS)).tolist():
        device_note[u] = " card " + card_text(pan_digits[u], 1 + u % 3)
    ip_text = pa.array(_ip_texts(ip_octets), pa.string())
    pan_text_array, device_note_array = pa.array(pan_text, pa.string()), pa.array(device_note, pa.string())

    def txn_columns(rows: np.ndarray, t: np.ndarray, upd: np.ndarray, status_idx: np.ndarray) -> dict[str, pa.Array]:
        u = user[rows]
        return {
            "transaction_id": _ids(f"tx-{day_tag}-", txn_no[rows], 9),
            "user_id": _ids("u-", u, 8),
            "merchant_id": _ids("m-", merchant[rows], 6),
            "timestamp": _iso(t),
            "amount": _money(amount_minor[rows], digits[rows]),
            "currency": _take(CURRENCIES, currency[rows]),
            "transaction_status": _take(STATUSES, status_idx),
            "channel": _take(CHANNELS, channel[rows]),
            "country": _take(country_names, country[rows]),
            "device_id": pc.binary_join_element_wise(
                pc.binary_join_element_wise(_ids("d-", u, 8), pa.array(device_no[rows]).cast(pa.string()), "-"),
                device_note_array.take(pa.array(u)),
                "",
            ),
            "ip": ip_text.take(pa.array(u)),
            "updated_at": _iso(upd),
            "pan": pan_text_array.take(pa.array(u)),
            "cvv": pa.array(cvv[u]).cast(pa.string()),
            "expiry": pc.binary_join_element_wise(
                pc.utf8_lpad(pa.array(exp_month[u]).cast(pa.string()), 2, "0"), pa.array(exp_year[u]).cast(pa.string()), "/"
            ),
        }

    # -- records: finals, retries' first attempts, resends ----------------------------------------
    produce = upd_ms + rng.integers(0, 500, size=n)
    produce[late_idx] = day0_ms + rng.integers(0, 2 * 3_600_000, size=len(late_idx))
    gateway = merchant % 3
    base = txn_columns(txn_no, t_ms, upd_ms, status)

    n_out_of_order = int(round(n_retry * config.out_of_order_share))
    out_of_order = np.zeros(n_retry, bool)
    out_of_order[rng.permutation(n_retry)[:n_out_of_order]] = True
    first_produce = first_upd + rng.integers(0, 500, size=n_retry)
    final_produce = np.where(
        out_of_order, first_produce - rng.integers(1, 1000, size=n_retry), final_upd + rng.integers(0, 500, size=n_retry)
    )
    produce[retry_idx] = final_produce
    first = txn_columns(retry_idx, t_ms[retry_idx], first_upd, np.full(n_retry, STATUSES.index("PENDING")))

    resend_cols = {name: base[name].take(pa.array(resend_idx)) for name in RAW_TRANSACTION_FIELDS}
    resend_gateway = gateway[resend_idx].copy()
    moved = rng.random(n_resend) < 0.5
    resend_gateway[moved] = (resend_gateway[moved] + 1 + rng.integers(0, 2, size=int(moved.sum()))) % 3
    resend_produce = produce[resend_idx] + rng.integers(1000, 600_000, size=n_resend)

    # -- malformed records: fresh ids, one defect each ------------------------------------------
    per_class = max(1, round(n * config.malformed_rate / len(MALFORMED_CLASSES))) if config.malformed_rate > 0 else 0
    n_bad = per_class * len(MALFORMED_CLASSES)
    bad_rows = rng.choice(normal_idx, size=n_bad, replace=True)
    bad_no = np.arange(n, n + n_bad, dtype=np.int64)
    bad_t = day0_ms + rng.integers(0, _MS_PER_DAY, size=n_bad)
    bad = txn_columns(bad_rows, bad_t, bad_t + 500, status[bad_rows])
    bad["transaction_id"] = _ids(f"tx-{day_tag}-", bad_no, 9)
    bad_reason = np.repeat(np.arange(len(MALFORMED_CLASSES)), per_class)
    bad_gateway = gateway[bad_rows].copy()
    unparseable = bad_reason == MALFORMED_CLASSES.index(Reason.UNPARSEABLE)
    bad_gateway[unparseable] = rng.integers(0, 2, size=int(unparseable.sum()))  # text formats only
    # ... alternately JSON lines and CSV, so two lines show both shapes (the draw stays: same stream).
    bad_gateway[unparseable] = np.arange(int(unparseable.sum())) % 2
    bad_py = {name: bad[name].to_pylist() for name in RAW_TRANSACTION_FIELDS}
    raw_text: list[str | None] = [None] * n_bad
    for i, reason_no in enumerate(bad_reason):  # a few thousand at most: plain Python is fine here
        reason = MALFORMED_CLASSES[reason_no]
        record = {name: bad_py[name][i] for name in RAW_TRANSACTION_FIELDS}
        digits_only = record["pan"].replace(" ", "").replace("-", "")
        if reason == Reason.UNPARSEABLE:
            pan = card_text(digits_only, 1 + i % 3)  # grouped by spaces, dashes or both
            if GATEWAYS[bad_gateway[i]] == "gateway_a":
                # the CVV under another name; the cut (10-29 characters) may fall inside the CVV or expiry
                renamed = {("pan" if k == "pan" else _CVV_KEYS[i % 4] if k == "cvv" else k): v for k, v in record.items()}
                renamed["pan"] = pan
                raw_text[i] = json.dumps(renamed, separators=(",", ":"))[: -(10 + i % 20)]  # truncated JSON
            else:
                cvv_text = (f'"{record["cvv"]}"', f"cvv={record['cvv']}", record["cvv"])[i % 3]
                raw_text[i] = ",".join(
                    [record["transaction_id"], record["user_id"], pan, cvv_text, record["expiry"], record["ip"], "<garbled>"]
                )  # too few columns
        elif reason == Reason.MISSING_REQUIRED_FIELD:
            bad_py[("user_id", "merchant_id", "amount", "currency")[i % 4]][i] = None
            bad_py["device_id"][i] = f"{bad_py['device_id'][i].split(' ')[0]} card {card_text(digits_only, 2 - i % 2)}"
        elif reason == Reason.NON_POSITIVE_AMOUNT:
            bad_py["amount"][i] = ("0.00", "-12.50")[i % 2]
            bad_py["pan"][i] = card_text(digits_only, 3)
        elif reason == Reason.UNKNOWN_CURRENCY:
            bad_py["currency"][i] = ("XYZ", "US$", "EURO")[i % 3]
        elif reason == Reason.INVALID_TIMESTAMP:
            bad_py["timestamp"][i] = ("2026-13-45T99:00:00Z", "21/11/2026 10:00", "yesterday")[i % 3]
        elif reason == Reason.OVERSIZE_FIELD:
            bad_py["device_id"][i] = "d-" + "x" * 400
        elif reason == Reason.WRONG_TYPE:
            if GATEWAYS[bad_gateway[i]] == "gateway_a" and i % 2 == 0:
                record["amount"] = {"value": record["amount"]}  # an object where a number is expected
                raw_text[i] = json.dumps(record, separators=(",", ":"))
            else:
                bad_py["amount"][i] = ("twelve", "12.5.0", "1e3x")[i % 3]
    bad = {name: pa.array(values, pa.string()) for name, values in bad_py.items()}
    bad_produce = bad_t + 500 + rng.integers(0, 500, size=n_bad)

    # -- assemble in produce order ---------------------------------------------------------------
    def block(cols, gateways, produce_ms, raw=None):
        size = len(produce_ms)
        table = pa.table({name: cols[name] for name in RAW_TRANSACTION_FIELDS})
        table = table.append_column("source_name", _take(GATEWAYS, gateways))
        table = table.append_column("produce_ms", pa.array(produce_ms, pa.int64()))
        return table.append_column("raw_text", pa.array(raw if raw is not None else [None] * size, pa.string()))

    records = pa.concat_tables(
        [
            block(base, gateway, produce),
            block(first, gateway[retry_idx], first_produce),
            block(resend_cols, resend_gateway, resend_produce),
            block(bad, bad_gateway, bad_produce, raw_text),
        ]
    )
    order = np.lexsort((np.arange(records.num_rows), records.column("produce_ms").to_numpy()))

    # -- fraud model outputs ----------------------------------------------------------------------
    scored = np.ones(n, bool)
    scored[rng.choice(normal_idx, size=config.count(config.missing_score_rate), replace=False)] = False
    scored_idx = np.flatnonzero(scored)
    score = np.round(rng.beta(1.2, 30.0, size=n), 4)
    score[kind != 0] = np.round(rng.uniform(0.85, 0.99, size=int((kind != 0).sum())), 4)
    score[kind == 3] = np.round(rng.uniform(0.6, 0.9, size=int((kind == 3).sum())), 4)
    rescored_idx = np.sort(rng.choice(scored_idx, size=min(len(scored_idx), config.count(config.rescore_rate)), replace=False))
    inference1 = t_ms + rng.integers(200, 2000, size=n)
    new_score = np.clip(np.round(score[rescored_idx] + rng.uniform(-0.02, 0.05, size=len(rescored_idx)), 4), 0, 1)
    explanation = np.where(kind == 1, 3, rng.integers(0, 3, size=n))

    def score_rows(rows, values, inference, version):
        return pa.table(
            {
                "model_version": pa.array([MODEL_VERSIONS[version]] * len(rows), pa.string()),
                "transaction_id": _ids(f"tx-{day_tag}-", txn_no[rows], 9),
                "fraud_score": _fixed(values, 4),
                "explanations": _take(EXPLANATIONS, explanation[rows]),
                "inference_time": _iso(inference),
            }
        )

    fraud_scores = pa.concat_tables(
        [
            score_rows(scored_idx, score[scored_idx], inference1[scored_idx], 0),
            score_rows(rescored_idx, new_score, inference1[rescored_idx] + 3_600_000, 1),
        ]
    )

    # -- settlement lines with reconciliation breaks -------------------------------------------
    eligible = np.flatnonzero(np.isin(status, [STATUSES.index("AUTHORIZED"), STATUSES.index("REFUNDED")]))
    pool = rng.permutation(eligible)
    sizes = {
        "MISSING_IN_STATEMENT": config.count(config.missing_in_statement_rate),
        "AMOUNT_MISMATCH": config.count(config.amount_mismatch_rate),
        "CURRENCY_MISMATCH": config.count(config.currency_mismatch_rate),
        "DUPLICATE_SETTLEMENT": config.count(config.duplicate_settlement_rate),
        "LATE_SETTLEMENT": config.count(config.late_settlement_rate),
    }
    recon_status = np.zeros(n, np.int8)  # index into RECON_STATUSES; 0 = MATCHED
    start = 0
    for name, size in sizes.items():
        recon_status[pool[start : start + size]] = RECON_STATUSES.index(name)
        start += size
    auth_pool = pool[start:][status[pool[start:]] == 0]
    chargeback_idx = np.sort(auth_pool[:n_chargeback])
    lines_idx = eligible[recon_status[eligible] != RECON_STATUSES.index("MISSING_IN_STATEMENT")]
    dup_idx = eligible[recon_status[eligible] == RECON_STATUSES.index("DUPLICATE_SETTLEMENT")]
    line_rows = np.concatenate([lines_idx, dup_idx])
    line_minor = amount_minor[line_rows].copy()
    line_minor[recon_status[line_rows] == RECON_STATUSES.index("AMOUNT_MISMATCH")] += 100
    line_currency = currency[line_rows].copy()
    cur_mis = recon_status[line_rows] == RECON_STATUSES.index("CURRENCY_MISMATCH")
    line_currency[cur_mis] = np.where(line_currency[cur_mis] == usd_idx, CURRENCIES.index("EUR"), usd_idx)
    line_digits = np.array([CURRENCY_MINOR_UNITS[c] for c in CURRENCIES])[line_currency]
    # Mismatched currencies keep the same number, so the line has the minor units of its own currency.
    line_minor = np.where(
        line_digits == digits[line_rows], line_minor, np.where(line_digits == 0, line_minor // 100, line_minor * 100)
    )
    settle_delay = np.where(
        recon_status[line_rows] == RECON_STATUSES.index("LATE_SETTLEMENT"), 5 * _MS_PER_DAY, _MS_PER_DAY
    ) + rng.integers(0, 6 * 3_600_000, size=len(line_rows))
    line_status = np.zeros(len(line_rows), np.int64)
    line_status[status[line_rows] == STATUSES.index("REFUNDED")] = 1
    line_status[np.isin(line_rows, chargeback_idx)] = 2
    n_missing_internal = config.count(config.missing_internal_rate)
    mi_minor = rng.integers(500, 50000, size=n_missing_internal)
    mi_t = day0_ms + rng.integers(0, _MS_PER_DAY, size=n_missing_internal)
    n_lines = len(line_rows) + n_missing_internal
    line_no = np.arange(n_lines, dtype=np.int64)
    source_is_bank = np.concatenate([merchant[line_rows] % 2 == 0, np.ones(n_missing_internal, bool)])
    all_minor = np.concatenate([line_minor, mi_minor])
    all_digits = np.concatenate([line_digits, np.full(n_missing_internal, 2)])
    fee_minor = all_minor * 29 // 1000 + 30
    missing_internal_refs = _ids(f"tx-{day_tag}-x", np.arange(n_missing_internal), 6)
    settlements = pa.table(
        {
            "statement_id": pc.if_else(pa.array(source_is_bank), f"STMT-BANK-{day_tag}", f"STMT-AGG-{day_tag}"),
            "line_id": _ids(f"ln-{day_tag}-", line_no, 9),
            "statement_source": pc.if_else(pa.array(source_is_bank), "BANK", "AGGREGATOR"),
            "transaction_ref": pa.concat_arrays([_ids(f"tx-{day_tag}-", txn_no[line_rows], 9), missing_internal_refs]),
            "amount": _money(all_minor, all_digits),
            "currency": pa.concat_arrays(
                [_take(CURRENCIES, line_currency), pa.array([REPORTING_CURRENCY] * n_missing_internal, pa.string())]
            ),
            "fee": _money(fee_minor, all_digits),
            "settled_at": _iso(np.concatenate([t_ms[line_rows] + settle_delay, mi_t + _MS_PER_DAY])),
            "settlement_status": _take(
                ("SETTLED", "REFUNDED", "CHARGEBACK"), np.concatenate([line_status, np.zeros(n_missing_internal, np.int64)])
            ),
        }
    )
    settlements = settlements.take(pa.array(rng.permutation(n_lines)))

    # Each settled transaction's first line id (duplicate settlements have a second one).
    first_rows, first_pos = np.unique(line_rows, return_index=True)
    first_line_no = np.full(n, -1, np.int64)
    first_line_no[first_rows] = first_pos
    elig_line = first_line_no[eligible]
    line_id_of = _ids(f"ln-{day_tag}-", np.maximum(elig_line, 0), 9)
    mi_line_ids = _ids(f"ln-{day_tag}-", np.arange(len(line_rows), n_lines), 9)
    reconciliation_truth = pa.table(
        {
            "transaction_id": pa.concat_arrays([_ids(f"tx-{day_tag}-", txn_no[eligible], 9), missing_internal_refs]),
            "line_id": pa.concat_arrays(
                [pc.if_else(pa.array(elig_line >= 0), line_id_of, pa.scalar(None, pa.string())), mi_line_ids]
            ),
            "expected_status": pa.concat_arrays(
                [_take(RECON_STATUSES, recon_status[eligible]), pa.array(["MISSING_INTERNAL"] * n_missing_internal, pa.string())]
            ),
        }
    )

    # -- reference data -----------------------------------------------------------------------------
    merchants = pa.table(
        {
            "merchant_id": _ids("m-", np.arange(n_merchants), 6),
            "merchant_name": _ids("Merchant ", np.arange(n_merchants), 6),
            "risk_level": _take(("LOW", "MEDIUM", "HIGH"), rng.choice(3, size=n_merchants, p=(0.7, 0.25, 0.05))),
            "mcc": _take(MCCS, rng.integers(0, len(MCCS), size=n_merchants)),
            "country": _take(COUNTRIES, merchant_country),
            "payout_schedule": _take(("DAILY", "WEEKLY", "MONTHLY"), np.arange(n_merchants) % 3),
            "payout_delay_days": pa.array(
                np.array([1, 7, 30])[np.arange(n_merchants) % 3] + rng.integers(0, 3, size=n_merchants)
            ).cast(pa.string()),
        }
    )
    users = pa.table(
        {
            "user_id": _ids("u-", np.arange(n_users), 8),
            "kyc_status": _take(
                ("VERIFIED", "PENDING", "REJECTED", "NOT_STARTED"), rng.choice(4, size=n_users, p=(0.85, 0.08, 0.02, 0.05))
            ),
            "risk_tier": _take(("LOW", "MEDIUM", "HIGH"), rng.choice(3, size=n_users, p=(0.8, 0.17, 0.03))),
            "country": _take(country_names, user_country),
            "created_at": _iso(day0_ms - rng.integers(1, 1500, size=n_users) * _MS_PER_DAY),
        }
    )
    noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=dt.UTC)
    policy_rows = [
        (
            "pol-baseline-v1",
            "baseline risk policy",
            {
                "velocity_per_minute": POLICY_VELOCITY_PER_MINUTE,
                "velocity_per_5min": 10,
                "blocked_countries": list(BLOCKED_COUNTRIES),
                "amount_limit": "5000.00",
                "amount_limit_currency": REPORTING_CURRENCY,
            },
            "2026-01-01T00:00:00Z",
        ),
        (
            "pol-baseline-v2",
            "baseline risk policy (tightened)",
            {
                "velocity_per_minute": POLICY_VELOCITY_PER_MINUTE,
                "velocity_per_5min": 8,
                "blocked_countries": list(BLOCKED_COUNTRIES),
                "amount_limit": "4500.00",
                "amount_limit_currency": REPORTING_CURRENCY,
            },
            noon.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
    ]
    policies = pa.table(
        {
            "policy_id": [r[0] for r in policy_rows],
            "policy_name": [r[1] for r in policy_rows],
            "policy_data": [json.dumps(r[2], sort_keys=True) for r in policy_rows],
            "effective_date": [r[3] for r in policy_rows],
        }
    )
    fx_dates, fx_currencies, fx_values = [], [], []
    fx_rng = np.random.default_rng([config.seed, 4217])
    for back in range(7, -1, -1):
        day = date - dt.timedelta(days=back)
        wobble = np.random.default_rng([config.seed, int(day.strftime("%Y%m%d")), 4217]).uniform(
            -0.01, 0.01, size=len(CURRENCIES)
        )
        for i, code in enumerate(CURRENCIES):
            fx_dates.append(day.isoformat())
            fx_currencies.append(code)
            fx_values.append(1.0 if code == REPORTING_CURRENCY else BASE_FX[code] * (1 + wobble[i]))
    del fx_rng
    fx_rates = pa.table({"rate_date": fx_dates, "currency": fx_currencies, "rate_to_reporting": _fixed(np.array(fx_values), 8)})

    # -- unparseable side-source lines holding card data (batch drops only) -------------------------
    side_pan = pan_digits[1]
    side_raw_lines = {
        "fraud_scores": [
            json.dumps(
                {
                    "model_version": MODEL_VERSIONS[0],
                    "transaction_id": f"tx-{day_tag}-s000000",
                    "fraud_score": "0.5000",
                    "explanations": f"analyst note: card {card_text(side_pan, 1)}, cvv: {cvv[1]}",
                    "inference_time": _iso(np.array([day0_ms + 3_600_000])).to_pylist()[0],
                },
                separators=(",", ":"),
            )[:-12]  # cut inside inference_time: not a JSON object
        ],
        "settlements": [f'STMT-BANK-{day_tag},ln-{day_tag}-s000000,BANK,"card {card_text(side_pan, 2)} cvv={cvv[1]}"'],
    }

    # -- ground truth ------------------------------------------------------------------------------
    def ids(rows) -> list[str]:
        return _ids(f"tx-{day_tag}-", txn_no[np.asarray(rows, np.int64)], 9).to_pylist()

    from spark_apps.fraud_rules import load_rules

    rules = load_rules()
    burst_pos = np.tile(np.arange(k), bursts)
    kind_rows = {code: np.flatnonzero(kind == code) for code in range(1, 6)}
    ct_rows = kind_rows[1]
    dc_rows = kind_rows[4]
    gj_rows = kind_rows[2]
    extra_copies: dict[str, int] = {}
    for tid in ids(retry_idx) + ids(resend_idx):
        extra_copies[tid] = extra_copies.get(tid, 0) + 1
    bad_ids = bad["transaction_id"].to_pylist()
    quarantined_by_reason = {reason: per_class for reason in MALFORMED_CLASSES}
    records_by_source = {g: int(pc.sum(pc.equal(records.column("source_name"), g)).as_py() or 0) for g in GATEWAYS}
    duplicates = n_retry + n_resend
    recon_counts = {name: int((recon_status[eligible] == i).sum()) for i, name in enumerate(RECON_STATUSES)}
    recon_counts["MISSING_INTERNAL"] = n_missing_internal
    truth = {
        "format_version": 1,
        "date": config.date,
        "config": dataclasses.asdict(config),
        "expected_counts": {
            "read": int(records.num_rows),
            "indexed": n,
            "quarantined": n_bad,
            "duplicates": duplicates,
            "quarantined_by_reason": quarantined_by_reason,
            "read_by_source": records_by_source,
            # unparseable lines per side source: quarantined by the job that reads the source
            # (fraud_scores: batch index; settlements: aggregate and business indexes)
            "side_source_unparseable_lines": {source: len(lines) for source, lines in sorted(side_raw_lines.items())},
        },
        "card_data_variants": {
            "users_by_pan_style": {
                CARD_TEXT_STYLES[s]: int(np.isin(user_slot, [k for k, v in _PAN_STYLE_SLOT.items() if v == s]).sum())
                for s in sorted(set(_PAN_STYLE_SLOT.values()))
            },
            "users_with_a_card_number_in_device_id": int(np.isin(user_slot, _DEVICE_PAN_SLOTS).sum()),
            "users_by_ipv6_form": {
                form: int(np.isin(user_slot, [k for k, v in _IPV6_SLOTS.items() if v == form]).sum())
                for form in sorted(set(_IPV6_SLOTS.values()))
            },
            "unparseable_lines_with_grouped_card_numbers": int(unparseable.sum()),
            "side_source_lines_with_card_numbers": {source: len(lines) for source, lines in sorted(side_raw_lines.items())},
        },
        "duplicates": {
            "extra_copies_by_id": dict(sorted(extra_copies.items())),
            "exact_resend_ids": ids(resend_idx),
            "exact_resend_cross_source_ids": ids(resend_idx[moved]),
            "retry_ids": ids(retry_idx),
            "out_of_order_ids": ids(retry_idx[out_of_order]),
            "late_ids": ids(late_idx),
            "winner_status": "the record with the latest updated_at; retries end AUTHORIZED",
        },
        "malformed": {
            "by_reason": {
                reason: [bad_ids[i] for i in np.flatnonzero(bad_reason == r)] for r, reason in enumerate(MALFORMED_CLASSES)
            }
        },
        "fraud_patterns": {
            "card_testing": {
                "transaction_ids": ids(ct_rows),
                "user_ids": sorted(set(_ids("u-", user[ct_rows], 8).to_pylist())),
                "expected_rule_flag_ids": {
                    "CARD_TESTING": ids(ct_rows[burst_pos + 1 >= rules.card_testing_min_transactions]),
                    "VELOCITY": ids(ct_rows[burst_pos + 1 > rules.velocity_max_transactions]),
                },
                "expected_policy_flag_ids": {"VELOCITY": ids(ct_rows[burst_pos + 1 > POLICY_VELOCITY_PER_MINUTE])},
                "expected_action_ids": {
                    "BLOCK_CARD": ids(ct_rows[burst_pos + 1 >= rules.block_card_min_velocity]),
                    "REQUIRE_3DS": ids(
                        ct_rows[
                            (burst_pos + 1 >= rules.require_3ds_min_velocity) & (burst_pos + 1 < rules.block_card_min_velocity)
                        ]
                    ),
                },
            },
            "geo_jump": {"transaction_ids": ids(gj_rows), "expected_rule_flag_ids": {"GEO_JUMP": ids(gj_rows[1::2])}},
            "high_amount": {
                "transaction_ids": ids(kind_rows[3]),
                "expected_rule_flag_ids": {"HIGH_AMOUNT": ids(kind_rows[3])},
                "expected_policy_flag_ids": {"AMOUNT_LIMIT": ids(kind_rows[3])},
            },
            "device_churn": {
                "transaction_ids": ids(dc_rows),
                "user_ids": sorted(set(_ids("u-", user[dc_rows], 8).to_pylist())),
                "expected_rule_flag_ids": {
                    "DEVICE_CHURN": ids(dc_rows[device_no[dc_rows] + 1 >= rules.device_churn_min_devices])
                },
            },
            "geo_block": {"transaction_ids": ids(kind_rows[5]), "expected_policy_flag_ids": {"GEO_BLOCK": ids(kind_rows[5])}},
            "normal_transactions_raise_no_flags": True,
        },
        "reconciliation": {
            "late_settlement_after_hours": LATE_SETTLEMENT_AFTER_HOURS,
            "eligible": "transactions whose final status is AUTHORIZED or REFUNDED; the others expect no statement line",
            "status_counts": recon_counts,
            "breaks": {
                name: ids(eligible[recon_status[eligible] == i])
                for i, name in enumerate(RECON_STATUSES)
                if name not in ("MATCHED", "MISSING_INTERNAL")
            },
            "missing_internal": {
                "transaction_refs": missing_internal_refs.to_pylist(),
                "line_ids": mi_line_ids.to_pylist(),
            },
            "refund_ids": ids(refund_idx),
            "chargeback_ids": ids(chargeback_idx),
            "truth_file": "reconciliation.parquet",
        },
        "fraud_scores": {
            "rows": int(fraud_scores.num_rows),
            "unscored_ids_count": int(n - len(scored_idx)),
            "rescored_ids": ids(rescored_idx),
        },
        "policies": {"versions": [{"policy_id": r[0], "effective_date": r[3]} for r in policy_rows]},
        "reporting_currency": REPORTING_CURRENCY,
    }
    if duplicates + n + n_bad != records.num_rows:
        raise AssertionError("generator bookkeeping: records do not add up")
    return Workload(
        config,
        records,
        order,
        fraud_scores,
        settlements,
        merchants,
        users,
        policies,
        fx_rates,
        truth,
        reconciliation_truth,
        side_raw_lines,
    )
