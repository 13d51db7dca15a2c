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
import functools
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
#
# generate_day is the recipe; each step below makes one part of the day. Every step draws from the
# day's one random stream (``_Day.rng``) in the recipe's order: moving a step, or a draw inside one,
# changes the whole day (tests/generator pins a small day's content so such a change is noticed).

_COUNTRY_NAMES = COUNTRIES + BLOCKED_COUNTRIES  # a user's or transaction's country is an index into this
_KIND = {"normal": 0, "card_testing": 1, "geo_jump": 2, "high_amount": 3, "device_churn": 4, "geo_block": 5}
_USD = CURRENCIES.index(REPORTING_CURRENCY)
_DIGITS = np.array([CURRENCY_MINOR_UNITS[c] for c in CURRENCIES])  # decimals per currency index
_FX = np.array([BASE_FX[c] for c in CURRENCIES])  # base rate to REPORTING_CURRENCY per currency index
_AUTHORIZED, _PENDING, _REFUNDED = (STATUSES.index(s) for s in ("AUTHORIZED", "PENDING", "REFUNDED"))


def generate_day(config: WorkloadConfig) -> Workload:
    """The day of ``config``: its transaction records in produce order, side sources and ground truth."""
    day = _Day.start(config)
    people = _users_and_merchants(day)
    txns = _Transactions.joined(
        day,
        [
            _normal_traffic(day, people),
            _card_testing(day, people),
            _geo_jumps(day, people),
            _high_amounts(day, people),
            _device_churn(day, people),
            _blocked_countries(day, people),
        ],
    )
    repeats = _retries_refunds_resends_and_late(day, txns)
    cards = _cards(day, people)
    columns = _Columns(day, txns, cards)
    finals = _final_records(day, txns, repeats, columns)
    retries = _first_attempts_of_retries(day, txns, repeats, columns, finals)
    resends = _exact_resends(day, repeats, finals)
    malformed = _malformed_records(day, txns, columns)
    scores = _fraud_scores(day, txns)
    recon = _reconciliation_breaks(day, txns)
    settlements = _statement_lines(day, txns, recon)
    merchants = _merchants_table(day, people)
    users = _users_table(day, people)
    parts = _Parts(
        day,
        people,
        txns,
        repeats,
        retries,
        resends,
        malformed,
        records=pa.concat_tables([block.table() for block in (finals, retries.first, resends.copies, malformed.records)]),
        scores=scores,
        recon=recon,
        policies=_policies(day.date),
        side_raw_lines=_side_raw_lines(day, cards),
    )
    return Workload(
        config=config,
        records=parts.records,
        produce_order=_produce_order(parts.records),
        fraud_scores=scores.table,
        settlements=settlements,
        merchants=merchants,
        users=users,
        policies=parts.policies,
        fx_rates=_fx_rates(config.seed, day.date),
        truth=_ground_truth(parts),
        reconciliation_truth=_reconciliation_truth(day, recon),
        side_raw_lines=parts.side_raw_lines,
    )


# --- the day's calendar, people and unique transactions -----------------------------------------


@dataclass(frozen=True)
class _Day:
    config: WorkloadConfig
    date: dt.date
    tag: str  # YYYYMMDD, in every id of the day
    day0_ms: int  # the day's midnight, UTC
    rng: np.random.Generator  # the day's one random stream

    @classmethod
    def start(cls, config: WorkloadConfig) -> _Day:
        date = dt.date.fromisoformat(config.date)
        tag = date.strftime("%Y%m%d")
        day0_ms = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp() * 1000)
        return cls(config, date, tag, day0_ms, np.random.default_rng([config.seed, int(tag)]))

    @property
    def n(self) -> int:
        """Unique valid transactions."""
        return self.config.transactions

    def count(self, rate: float) -> int:
        return self.config.count(rate)

    def txn_ids(self, numbers: np.ndarray) -> pa.Array:
        return _ids(f"tx-{self.tag}-", numbers, 9)

    def line_ids(self, numbers: np.ndarray) -> pa.Array:
        return _ids(f"ln-{self.tag}-", numbers, 9)


@dataclass
class _People:
    """Users (normal users first, then each fraud pattern's fresh users) and merchants."""

    n_normal: int  # normal transactions
    n_normal_users: int
    n_users: int
    n_merchants: int
    pattern_users: dict[str, np.ndarray]  # user numbers of each fraud pattern, in planting order
    user_country: np.ndarray  # index into _COUNTRY_NAMES (blocked-country users get theirs when planted)
    merchant_country: np.ndarray  # index into COUNTRIES
    merchant_currency: np.ndarray  # index into CURRENCIES: the currency of the merchant's country


def _pattern_sizes(config: WorkloadConfig) -> dict[str, tuple[int, int]]:
    """Per fraud pattern, in planting order: (its fresh users, transactions per user)."""
    return {
        "card_testing": (config.count(config.card_testing_rate), config.card_testing_burst),
        "geo_jump": (config.count(config.geo_jump_rate), 2),
        "high_amount": (config.count(config.high_amount_rate), 1),
        "device_churn": (config.count(config.device_churn_rate), config.device_churn_devices),
        "geo_block": (config.count(config.geo_block_rate), 1),
    }


def _users_and_merchants(day: _Day) -> _People:
    """How many users and merchants the day has, and the country of each."""
    n, rng = day.n, day.rng
    sizes = _pattern_sizes(day.config)
    n_normal = n - sum(users * per_user for users, per_user in sizes.values())
    if n_normal < n // 2:
        raise ValueError("fraud pattern rates leave too few normal transactions")
    n_normal_users = max(10, n_normal // 20)
    pattern_users, next_user = {}, n_normal_users
    for name, (users, _per_user) in sizes.items():
        pattern_users[name] = np.arange(next_user, next_user + users)
        next_user += users
    n_merchants = max(20, n // 500)
    user_country = rng.choice(len(COUNTRIES), size=next_user, p=COUNTRY_WEIGHTS)
    merchant_country = rng.choice(len(COUNTRIES), size=n_merchants, p=COUNTRY_WEIGHTS)
    country_currency = np.array([CURRENCIES.index(COUNTRY_CURRENCY[country]) for country in COUNTRIES])
    return _People(
        n_normal,
        n_normal_users,
        next_user,
        n_merchants,
        pattern_users,
        user_country,
        merchant_country,
        country_currency[merchant_country],
    )


@dataclass
class _Rows:
    """Unique transactions, column-wise; values are indices into the module's value tuples."""

    user: np.ndarray
    t_ms: np.ndarray  # event time
    merchant: np.ndarray
    currency: np.ndarray
    amount_minor: np.ndarray  # amount in minor units of the currency
    status: np.ndarray
    channel: np.ndarray
    country: np.ndarray
    device_no: np.ndarray  # the user's n-th device
    kind: np.ndarray  # _KIND code: normal or the fraud pattern


class _Transactions(_Rows):
    """The day's unique transactions: normal traffic, then each planted pattern; row = transaction number."""

    @classmethod
    def joined(cls, day: _Day, parts: list[_Rows]) -> _Transactions:
        txns = cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(_Rows)})
        if len(txns.user) != day.n:
            raise AssertionError("generator bookkeeping: transactions do not add up")
        return txns

    @functools.cached_property
    def numbers(self) -> np.ndarray:
        return np.arange(len(self.user), dtype=np.int64)

    @functools.cached_property
    def digits(self) -> np.ndarray:
        return _DIGITS[self.currency]

    @functools.cached_property
    def gateway(self) -> np.ndarray:
        """Index into GATEWAYS: a merchant's transactions arrive through one gateway."""
        return self.merchant % 3

    @functools.cached_property
    def normal_idx(self) -> np.ndarray:
        return np.flatnonzero(self.kind == _KIND["normal"])


def _normal_traffic(day: _Day, people: _People) -> _Rows:
    """Normal users' transactions: in fixed time slots of the day (a user's are at least ~18 minutes
    apart for ~20 a day), from their home country with one device, at most 3,000 USD-equivalent."""
    rng, n_normal, n_users = day.rng, people.n_normal, people.n_normal_users
    position = np.arange(n_normal)
    user = rng.permutation(n_users)[position % n_users]
    width = _MS_PER_DAY // -(-n_normal // n_users)  # of a time slot
    user_offset = rng.integers(0, width // 2, size=n_users)
    t_ms = day.day0_ms + (position // n_users) * width + user_offset[user] + rng.integers(0, width // 4, size=n_normal)
    merchant = rng.integers(0, people.n_merchants, size=n_normal)
    currency = people.merchant_currency[merchant]
    usd = np.clip(rng.lognormal(np.log(40.0), 1.0, size=n_normal), 1.0, 3000.0)
    digits = _DIGITS[currency]
    amount_minor = np.maximum(1, np.round(usd / _FX[currency] * 10.0**digits)).astype(np.int64)
    status = rng.choice(len(STATUSES), size=n_normal, p=NORMAL_STATUS_WEIGHTS)
    channel = rng.integers(0, 3, size=n_normal)
    device_no, kind = np.zeros(n_normal, np.int64), np.zeros(n_normal, np.int8)
    return _Rows(user, t_ms, merchant, currency, amount_minor, status, channel, people.user_country[user], device_no, kind)


# --- fraud patterns: fresh users, authorized ECOM transactions in USD ----------------------------


def _planted(day: _Day, people: _People, pattern: str, users, times, minor, countries, devices) -> _Rows:
    """The transactions of a fraud pattern, each at a random merchant."""
    size = len(users)
    return _Rows(
        user=np.asarray(users, np.int64),
        t_ms=np.asarray(times, np.int64),
        merchant=day.rng.integers(0, people.n_merchants, size=size),
        currency=np.full(size, _USD, np.int64),
        amount_minor=np.asarray(minor, np.int64),
        status=np.full(size, _AUTHORIZED, np.int64),
        channel=np.full(size, CHANNELS.index("ECOM"), np.int64),
        country=np.asarray(countries, np.int64),
        device_no=np.asarray(devices, np.int64),
        kind=np.full(size, _KIND[pattern], np.int8),
    )


def _card_testing(day: _Day, people: _People) -> _Rows:
    """Bursts of small charges (0.50-3.00 USD) on one card, 5 s apart (+ < 1 s jitter)."""
    rng, per_burst, owners = day.rng, day.config.card_testing_burst, people.pattern_users["card_testing"]
    bursts = len(owners)
    users = np.repeat(owners, per_burst)
    start = day.day0_ms + rng.integers(0, _MS_PER_DAY - 120_000, size=bursts)
    times = np.repeat(start, per_burst) + np.tile(np.arange(per_burst) * 5000, bursts)
    times = times + rng.integers(0, 900, size=bursts * per_burst)
    minor = rng.integers(50, 301, size=bursts * per_burst)
    return _planted(day, people, "card_testing", users, times, minor, people.user_country[users], np.zeros(len(users)))


def _geo_jumps(day: _Day, people: _People) -> _Rows:
    """A transaction from the user's home country, then one from another country 10-50 minutes later."""
    rng, owners = day.rng, people.pattern_users["geo_jump"]
    jumps = len(owners)
    users = np.repeat(owners, 2)
    start = day.day0_ms + rng.integers(0, _MS_PER_DAY - 3_600_000, size=jumps)
    gap = rng.integers(10 * 60_000, 50 * 60_000, size=jumps)
    home = people.user_country[owners]
    away = (home + rng.integers(1, len(COUNTRIES), size=jumps)) % len(COUNTRIES)
    minor = rng.integers(2000, 30000, size=jumps * 2)
    times, countries = np.stack([start, start + gap], axis=1).ravel(), np.stack([home, away], axis=1).ravel()
    return _planted(day, people, "geo_jump", users, times, minor, countries, np.zeros(len(users)))


def _high_amounts(day: _Day, people: _People) -> _Rows:
    """One transaction of 8,000-20,000 USD."""
    rng, users = day.rng, people.pattern_users["high_amount"]
    times = day.day0_ms + rng.integers(0, _MS_PER_DAY, size=len(users))
    minor = rng.integers(800_000, 2_000_001, size=len(users))
    return _planted(day, people, "high_amount", users, times, minor, people.user_country[users], np.zeros(len(users)))


def _device_churn(day: _Day, people: _People) -> _Rows:
    """device_churn_devices transactions 40 minutes apart, each from a new device."""
    rng, devices, owners = day.rng, day.config.device_churn_devices, people.pattern_users["device_churn"]
    churners = len(owners)
    users = np.repeat(owners, devices)
    start = day.day0_ms + rng.integers(0, _MS_PER_DAY - devices * 2_400_000, size=churners)
    times = np.repeat(start, devices) + np.tile(np.arange(devices) * 2_400_000, churners)
    minor = rng.integers(1000, 20000, size=churners * devices)
    device_no = np.tile(np.arange(devices), churners)
    return _planted(day, people, "device_churn", users, times, minor, people.user_country[users], device_no)


def _blocked_countries(day: _Day, people: _People) -> _Rows:
    """One transaction of a user who lives in a policy-blocked country (which the user gets here)."""
    rng, users = day.rng, people.pattern_users["geo_block"]
    countries = len(COUNTRIES) + rng.integers(0, len(BLOCKED_COUNTRIES), size=len(users))
    people.user_country[users] = countries
    times = day.day0_ms + rng.integers(0, _MS_PER_DAY, size=len(users))
    minor = rng.integers(1000, 20000, size=len(users))
    return _planted(day, people, "geo_block", users, times, minor, countries, np.zeros(len(users)))


# --- retries, refunds, resends and late events ---------------------------------------------------


@dataclass(frozen=True)
class _Repeats:
    """Which normal transactions are retried, refunded, resent or late, and every record's update time."""

    retry_idx: np.ndarray  # authorized; a PENDING first attempt precedes the final record
    refund_idx: np.ndarray  # authorized, then REFUNDED
    resend_idx: np.ndarray  # sent twice (exact copies)
    late_idx: np.ndarray  # yesterday's events, in today's drop
    updated_ms: np.ndarray  # per transaction: updated_at of its final record
    first_updated_ms: np.ndarray  # per retry: updated_at of its first attempt


def _retries_refunds_resends_and_late(day: _Day, txns: _Transactions) -> _Repeats:
    """Pick them (marking the refunds REFUNDED and moving late events to yesterday); draw update times."""
    rng, config = day.rng, day.config
    normal_auth = txns.normal_idx[txns.status[txns.normal_idx] == _AUTHORIZED]
    shuffled_auth = rng.permutation(normal_auth)
    n_retry, n_refund = day.count(config.retry_rate), day.count(config.refund_rate)
    retry_idx = np.sort(shuffled_auth[:n_retry])
    refund_idx = np.sort(shuffled_auth[n_retry : n_retry + n_refund])
    txns.status[refund_idx] = _REFUNDED
    rest = rng.permutation(np.setdiff1d(txns.normal_idx, retry_idx))
    n_resend, n_late = day.count(config.exact_resend_rate), day.count(config.late_rate)
    resend_idx = np.sort(rest[:n_resend])
    late_idx = np.sort(rest[n_resend : n_resend + n_late])
    txns.t_ms[late_idx] -= _MS_PER_DAY
    updated_ms = txns.t_ms + rng.integers(100, 2000, size=day.n)
    first_updated_ms = updated_ms[retry_idx].copy()
    updated_ms[retry_idx] = first_updated_ms + rng.integers(30_000, 600_000, size=len(retry_idx))
    return _Repeats(retry_idx, refund_idx, resend_idx, late_idx, updated_ms, first_updated_ms)


# --- users' cards and the records' text columns ----------------------------------------------------


@dataclass(frozen=True)
class _Cards:
    """Each user's card and network identity, written the way their records carry them."""

    pan_digits: list[str]  # the card number
    cvv: np.ndarray
    exp_month: np.ndarray
    exp_year: np.ndarray  # two digits
    pan_text: pa.Array  # the card number in the user's CARD_TEXT_STYLES
    device_note: pa.Array  # "" or " card <number>" typed after the device id
    ip_text: pa.Array


def _cards(day: _Day, people: _People) -> _Cards:
    """Cards (Luhn-valid), CVVs, expiries and IP addresses; the users of PII_PERIOD's slots get their
    card data in the other shapes masking must catch (no random draws: the truth is unchanged)."""
    rng, n_users = day.rng, people.n_users
    pans = _luhn_pans(rng, n_users)
    cvv = rng.integers(100, 1000, size=n_users)
    exp_month = rng.integers(1, 13, size=n_users)
    exp_year = (day.date.year % 100) + rng.integers(1, 6, size=n_users)
    ip_octets = rng.integers(1, 255, size=(n_users, 4))
    ip_octets[:, 0] = rng.choice([23, 45, 62, 81, 92, 103, 151, 185, 203], size=n_users)
    pan_digits = pa.array(pans).cast(pa.string()).to_pylist()
    return _Cards(
        pan_digits,
        cvv,
        exp_month,
        exp_year,
        pan_text=pa.array(_pan_texts(pan_digits), pa.string()),
        device_note=pa.array(_device_notes(pan_digits), pa.string()),
        ip_text=pa.array(_ip_texts(ip_octets), pa.string()),
    )


def _pan_texts(pan_digits: list[str]) -> list[str]:
    texts = list(pan_digits)
    for u in np.flatnonzero(np.isin(np.arange(len(texts)) % PII_PERIOD, list(_PAN_STYLE_SLOT))).tolist():
        texts[u] = card_text(pan_digits[u], _PAN_STYLE_SLOT[u % PII_PERIOD])
    return texts


def _device_notes(pan_digits: list[str]) -> list[str]:
    notes = [""] * len(pan_digits)
    for u in np.flatnonzero(np.isin(np.arange(len(notes)) % PII_PERIOD, _DEVICE_PAN_SLOTS)).tolist():
        notes[u] = " card " + card_text(pan_digits[u], 1 + u % 3)
    return notes


@dataclass(frozen=True)
class _Columns:
    """The raw record columns (all text) of transactions ``rows``, with the given times and status."""

    day: _Day
    txns: _Transactions
    cards: _Cards

    def __call__(self, rows: np.ndarray, t: np.ndarray, upd: np.ndarray, status_idx: np.ndarray) -> dict[str, pa.Array]:
        txns, cards, u = self.txns, self.cards, self.txns.user[rows]
        device = pc.binary_join_element_wise(_ids("d-", u, 8), pa.array(txns.device_no[rows]).cast(pa.string()), "-")
        expiry_month = pc.utf8_lpad(pa.array(cards.exp_month[u]).cast(pa.string()), 2, "0")
        return {
            "transaction_id": self.day.txn_ids(txns.numbers[rows]),
            "user_id": _ids("u-", u, 8),
            "merchant_id": _ids("m-", txns.merchant[rows], 6),
            "timestamp": _iso(t),
            "amount": _money(txns.amount_minor[rows], txns.digits[rows]),
            "currency": _take(CURRENCIES, txns.currency[rows]),
            "transaction_status": _take(STATUSES, status_idx),
            "channel": _take(CHANNELS, txns.channel[rows]),
            "country": _take(_COUNTRY_NAMES, txns.country[rows]),
            "device_id": pc.binary_join_element_wise(device, cards.device_note.take(pa.array(u)), ""),
            "ip": cards.ip_text.take(pa.array(u)),
            "updated_at": _iso(upd),
            "pan": cards.pan_text.take(pa.array(u)),
            "cvv": pa.array(cards.cvv[u]).cast(pa.string()),
            "expiry": pc.binary_join_element_wise(expiry_month, pa.array(cards.exp_year[u]).cast(pa.string()), "/"),
        }


# --- the raw transaction records ------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """Raw transaction records of one kind: their columns, gateway and produce time (and broken text)."""

    columns: dict[str, pa.Array]
    gateways: np.ndarray  # index into GATEWAYS
    produce_ms: np.ndarray
    raw_text: list[str | None] | None = None

    def table(self) -> pa.Table:
        table = pa.table({name: self.columns[name] for name in RAW_TRANSACTION_FIELDS})
        table = table.append_column("source_name", _take(GATEWAYS, self.gateways))
        table = table.append_column("produce_ms", pa.array(self.produce_ms, pa.int64()))
        raw = self.raw_text if self.raw_text is not None else [None] * len(self.produce_ms)
        return table.append_column("raw_text", pa.array(raw, pa.string()))


def _final_records(day: _Day, txns: _Transactions, repeats: _Repeats, columns: _Columns) -> _Block:
    """Every transaction's final record, produced < 0.5 s after its update (late events: in the
    day's first two hours; retries: set by _first_attempts_of_retries)."""
    rng = day.rng
    produce_ms = repeats.updated_ms + rng.integers(0, 500, size=day.n)
    produce_ms[repeats.late_idx] = day.day0_ms + rng.integers(0, 2 * 3_600_000, size=len(repeats.late_idx))
    return _Block(columns(txns.numbers, txns.t_ms, repeats.updated_ms, txns.status), txns.gateway, produce_ms)


@dataclass(frozen=True)
class _Retries:
    first: _Block  # the PENDING first attempts
    out_of_order: np.ndarray  # per retry: its final record is produced before its first attempt


def _first_attempts_of_retries(day: _Day, txns: _Transactions, repeats: _Repeats, columns: _Columns, finals: _Block) -> _Retries:
    """Each retry's PENDING first attempt; its final (AUTHORIZED) record is produced after it, or
    for out_of_order_share of the retries up to 1 s before it."""
    rng, retry_idx = day.rng, repeats.retry_idx
    n_retry = len(retry_idx)
    out_of_order = np.zeros(n_retry, bool)
    out_of_order[rng.permutation(n_retry)[: int(round(n_retry * day.config.out_of_order_share))]] = True
    first_produce = repeats.first_updated_ms + rng.integers(0, 500, size=n_retry)
    finals.produce_ms[retry_idx] = np.where(
        out_of_order,
        first_produce - rng.integers(1, 1000, size=n_retry),
        repeats.updated_ms[retry_idx] + rng.integers(0, 500, size=n_retry),
    )
    first = columns(retry_idx, txns.t_ms[retry_idx], repeats.first_updated_ms, np.full(n_retry, _PENDING))
    return _Retries(_Block(first, txns.gateway[retry_idx], first_produce), out_of_order)


@dataclass(frozen=True)
class _Resends:
    copies: _Block
    moved: np.ndarray  # per resend: sent through another gateway than the original


def _exact_resends(day: _Day, repeats: _Repeats, finals: _Block) -> _Resends:
    """An exact copy of each resent final record, 1 s-10 min later; half of them into another gateway."""
    rng, resend_idx = day.rng, repeats.resend_idx
    copies = {name: finals.columns[name].take(pa.array(resend_idx)) for name in RAW_TRANSACTION_FIELDS}
    gateways = finals.gateways[resend_idx].copy()
    moved = rng.random(len(resend_idx)) < 0.5
    gateways[moved] = (gateways[moved] + 1 + rng.integers(0, 2, size=int(moved.sum()))) % 3
    produce_ms = finals.produce_ms[resend_idx] + rng.integers(1000, 600_000, size=len(resend_idx))
    return _Resends(_Block(copies, gateways, produce_ms), moved)


# --- malformed records: fresh ids, one defect each ----------------------------------------------------


@dataclass(frozen=True)
class _Malformed:
    records: _Block
    reason: np.ndarray  # per record: index into MALFORMED_CLASSES
    per_class: int


def _malformed_records(day: _Day, txns: _Transactions, columns: _Columns) -> _Malformed:
    """Copies of random normal transactions under fresh ids, each given one defect of its class
    (the same number of each class); unparseable ones alternately in gateway_a and gateway_b."""
    rng, config = day.rng, day.config
    per_class = max(1, round(day.n * config.malformed_rate / len(MALFORMED_CLASSES))) if config.malformed_rate > 0 else 0
    n_bad = per_class * len(MALFORMED_CLASSES)
    rows = rng.choice(txns.normal_idx, size=n_bad, replace=True)
    t_ms = day.day0_ms + rng.integers(0, _MS_PER_DAY, size=n_bad)
    fields = columns(rows, t_ms, t_ms + 500, txns.status[rows])
    fields["transaction_id"] = day.txn_ids(np.arange(day.n, day.n + n_bad, dtype=np.int64))
    reason = np.repeat(np.arange(len(MALFORMED_CLASSES)), per_class)
    gateways = txns.gateway[rows].copy()
    unparseable = reason == MALFORMED_CLASSES.index(Reason.UNPARSEABLE)
    gateways[unparseable] = rng.integers(0, 2, size=int(unparseable.sum()))  # text formats only
    # ... alternately JSON lines and CSV, so two lines show both shapes (the draw stays: same stream).
    gateways[unparseable] = np.arange(int(unparseable.sum())) % 2
    values = {name: fields[name].to_pylist() for name in RAW_TRANSACTION_FIELDS}
    raw_text = [_DEFECTS[MALFORMED_CLASSES[r]](i, values, GATEWAYS[gateways[i]]) for i, r in enumerate(reason)]
    broken = {name: pa.array(column, pa.string()) for name, column in values.items()}
    produce_ms = t_ms + 500 + rng.integers(0, 500, size=n_bad)
    return _Malformed(_Block(broken, gateways, produce_ms, raw_text), reason, per_class)


# Each defect edits record i of ``values`` (column -> list of texts) in place, or returns the
# record's verbatim broken serialization (None when the record is written normally).


def _record(i: int, values: dict[str, list]) -> dict[str, Any]:
    return {name: values[name][i] for name in RAW_TRANSACTION_FIELDS}


def _pan_digits_of(record: dict[str, Any]) -> str:
    return record["pan"].replace(" ", "").replace("-", "")


def _unparseable(i: int, values: dict[str, list], gateway: str) -> str:
    """A line no reader parses, holding the card grouped by spaces, dashes or both: truncated JSON
    (gateway_a) with the CVV under another name, cut 10-29 characters before the end (maybe inside
    the CVV or expiry), or a CSV line with too few columns."""
    record = _record(i, values)
    pan = card_text(_pan_digits_of(record), 1 + i % 3)
    if gateway == "gateway_a":
        renamed = {("pan" if k == "pan" else _CVV_KEYS[i % 4] if k == "cvv" else k): v for k, v in record.items()}
        renamed["pan"] = pan
        return json.dumps(renamed, separators=(",", ":"))[: -(10 + i % 20)]
    cvv_text = (f'"{record["cvv"]}"', f"cvv={record['cvv']}", record["cvv"])[i % 3]
    return ",".join([record["transaction_id"], record["user_id"], pan, cvv_text, record["expiry"], record["ip"], "<garbled>"])


def _missing_required_field(i: int, values: dict[str, list], gateway: str) -> None:
    """A required field left out; the device id carries a grouped card number."""
    pan_digits = _pan_digits_of(_record(i, values))
    values[("user_id", "merchant_id", "amount", "currency")[i % 4]][i] = None
    values["device_id"][i] = f"{values['device_id'][i].split(' ')[0]} card {card_text(pan_digits, 2 - i % 2)}"


def _non_positive_amount(i: int, values: dict[str, list], gateway: str) -> None:
    values["amount"][i] = ("0.00", "-12.50")[i % 2]
    values["pan"][i] = card_text(_pan_digits_of(_record(i, values)), 3)


def _unknown_currency(i: int, values: dict[str, list], gateway: str) -> None:
    values["currency"][i] = ("XYZ", "US$", "EURO")[i % 3]


def _invalid_timestamp(i: int, values: dict[str, list], gateway: str) -> None:
    values["timestamp"][i] = ("2026-13-45T99:00:00Z", "21/11/2026 10:00", "yesterday")[i % 3]


def _oversize_field(i: int, values: dict[str, list], gateway: str) -> None:
    values["device_id"][i] = "d-" + "x" * 400


def _wrong_type(i: int, values: dict[str, list], gateway: str) -> str | None:
    """An amount that is no number: a JSON object (every other gateway_a record), else bad text."""
    if gateway == "gateway_a" and i % 2 == 0:
        record = _record(i, values)
        record["amount"] = {"value": record["amount"]}
        return json.dumps(record, separators=(",", ":"))
    values["amount"][i] = ("twelve", "12.5.0", "1e3x")[i % 3]
    return None


_DEFECTS = {
    Reason.UNPARSEABLE: _unparseable,
    Reason.MISSING_REQUIRED_FIELD: _missing_required_field,
    Reason.NON_POSITIVE_AMOUNT: _non_positive_amount,
    Reason.UNKNOWN_CURRENCY: _unknown_currency,
    Reason.INVALID_TIMESTAMP: _invalid_timestamp,
    Reason.OVERSIZE_FIELD: _oversize_field,
    Reason.WRONG_TYPE: _wrong_type,
}


def _produce_order(records: pa.Table) -> np.ndarray:
    """Row indices by produce time (ties: in the order the records were made)."""
    return np.lexsort((np.arange(records.num_rows), records.column("produce_ms").to_numpy()))


# --- fraud model outputs --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scores:
    table: pa.Table
    scored_idx: np.ndarray
    rescored_idx: np.ndarray


def _fraud_scores(day: _Day, txns: _Transactions) -> _Scores:
    """A score for all but missing_score_rate of the transactions (planted patterns score high), and
    a newer model version's second score for rescore_rate of them an hour later."""
    rng, config, kind, n = day.rng, day.config, txns.kind, day.n
    scored = np.ones(n, bool)
    scored[rng.choice(txns.normal_idx, size=day.count(config.missing_score_rate), replace=False)] = False
    scored_idx = np.flatnonzero(scored)
    score = np.round(rng.beta(1.2, 30.0, size=n), 4)
    score[kind != 0] = np.round(rng.uniform(0.85, 0.99, size=int((kind != 0).sum())), 4)
    high = kind == _KIND["high_amount"]
    score[high] = np.round(rng.uniform(0.6, 0.9, size=int(high.sum())), 4)
    rescored_idx = np.sort(rng.choice(scored_idx, size=min(len(scored_idx), day.count(config.rescore_rate)), replace=False))
    inference = txns.t_ms + rng.integers(200, 2000, size=n)
    new_score = np.clip(np.round(score[rescored_idx] + rng.uniform(-0.02, 0.05, size=len(rescored_idx)), 4), 0, 1)
    explanation = np.where(kind == _KIND["card_testing"], 3, rng.integers(0, 3, size=n))
    table = pa.concat_tables(
        [
            _score_rows(day, scored_idx, score[scored_idx], inference[scored_idx], 0, explanation),
            _score_rows(day, rescored_idx, new_score, inference[rescored_idx] + 3_600_000, 1, explanation),
        ]
    )
    return _Scores(table, scored_idx, rescored_idx)


def _score_rows(day: _Day, rows, values, inference, version: int, explanation: np.ndarray) -> pa.Table:
    return pa.table(
        {
            "model_version": pa.array([MODEL_VERSIONS[version]] * len(rows), pa.string()),
            "transaction_id": day.txn_ids(rows),
            "fraud_score": _fixed(values, 4),
            "explanations": _take(EXPLANATIONS, explanation[rows]),
            "inference_time": _iso(inference),
        }
    )


# --- settlement lines with reconciliation breaks ----------------------------------------------------


@dataclass(frozen=True)
class _Reconciliation:
    eligible: np.ndarray  # transactions expecting a statement line (final status AUTHORIZED or REFUNDED)
    status: np.ndarray  # per transaction: index into RECON_STATUSES (0 = MATCHED)
    chargeback_idx: np.ndarray
    line_rows: np.ndarray  # the transaction of each line of ours (a duplicate settlement's twice)
    missing_internal: int  # lines of no transaction of ours, after line_rows

    def missing_internal_refs(self, day: _Day) -> pa.Array:
        return _ids(f"tx-{day.tag}-x", np.arange(self.missing_internal), 6)

    def missing_internal_line_ids(self, day: _Day) -> pa.Array:
        return day.line_ids(np.arange(len(self.line_rows), len(self.line_rows) + self.missing_internal))


def _reconciliation_breaks(day: _Day, txns: _Transactions) -> _Reconciliation:
    """Which eligible transactions get which break, which authorized ones a chargeback."""
    config = day.config
    eligible = np.flatnonzero(np.isin(txns.status, [_AUTHORIZED, _REFUNDED]))
    pool = day.rng.permutation(eligible)
    sizes = {
        "MISSING_IN_STATEMENT": day.count(config.missing_in_statement_rate),
        "AMOUNT_MISMATCH": day.count(config.amount_mismatch_rate),
        "CURRENCY_MISMATCH": day.count(config.currency_mismatch_rate),
        "DUPLICATE_SETTLEMENT": day.count(config.duplicate_settlement_rate),
        "LATE_SETTLEMENT": day.count(config.late_settlement_rate),
    }
    status = np.zeros(day.n, np.int8)
    start = 0
    for name, size in sizes.items():
        status[pool[start : start + size]] = RECON_STATUSES.index(name)
        start += size
    auth_pool = pool[start:][txns.status[pool[start:]] == _AUTHORIZED]
    chargeback_idx = np.sort(auth_pool[: day.count(config.chargeback_rate)])
    lines_idx = eligible[status[eligible] != RECON_STATUSES.index("MISSING_IN_STATEMENT")]
    dup_idx = eligible[status[eligible] == RECON_STATUSES.index("DUPLICATE_SETTLEMENT")]
    line_rows = np.concatenate([lines_idx, dup_idx])
    return _Reconciliation(eligible, status, chargeback_idx, line_rows, day.count(config.missing_internal_rate))


def _line_amounts(txns: _Transactions, recon: _Reconciliation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minor units, currency and its decimals of each line of ours: its transaction's, but for the mismatches."""
    rows = recon.line_rows
    line_break = recon.status[rows]
    minor = txns.amount_minor[rows].copy()
    minor[line_break == RECON_STATUSES.index("AMOUNT_MISMATCH")] += 100
    currency = txns.currency[rows].copy()
    mismatch = line_break == RECON_STATUSES.index("CURRENCY_MISMATCH")
    currency[mismatch] = np.where(currency[mismatch] == _USD, CURRENCIES.index("EUR"), _USD)
    digits = _DIGITS[currency]
    # Mismatched currencies keep the same number, so the line has the minor units of its own currency.
    minor = np.where(digits == txns.digits[rows], minor, np.where(digits == 0, minor // 100, minor * 100))
    return minor, currency, digits


def _statement_lines(day: _Day, txns: _Transactions, recon: _Reconciliation) -> pa.Table:
    """The bank's and aggregator's statement lines (in random order), settled a day later (late
    settlements: five), plus the lines of no transaction of ours."""
    rng, rows, n_mi = day.rng, recon.line_rows, recon.missing_internal
    minor, currency, digits = _line_amounts(txns, recon)
    late = recon.status[rows] == RECON_STATUSES.index("LATE_SETTLEMENT")
    settle_delay = np.where(late, 5 * _MS_PER_DAY, _MS_PER_DAY) + rng.integers(0, 6 * 3_600_000, size=len(rows))
    line_status = np.zeros(len(rows), np.int64)
    line_status[txns.status[rows] == _REFUNDED] = 1
    line_status[np.isin(rows, recon.chargeback_idx)] = 2
    mi_minor = rng.integers(500, 50000, size=n_mi)
    mi_t = day.day0_ms + rng.integers(0, _MS_PER_DAY, size=n_mi)
    n_lines = len(rows) + n_mi
    bank = pa.array(np.concatenate([txns.merchant[rows] % 2 == 0, np.ones(n_mi, bool)]))
    all_minor, all_digits = np.concatenate([minor, mi_minor]), np.concatenate([digits, np.full(n_mi, 2)])
    lines = pa.table(
        {
            "statement_id": pc.if_else(bank, f"STMT-BANK-{day.tag}", f"STMT-AGG-{day.tag}"),
            "line_id": day.line_ids(np.arange(n_lines, dtype=np.int64)),
            "statement_source": pc.if_else(bank, "BANK", "AGGREGATOR"),
            "transaction_ref": pa.concat_arrays([day.txn_ids(txns.numbers[rows]), recon.missing_internal_refs(day)]),
            "amount": _money(all_minor, all_digits),
            "currency": pa.concat_arrays([_take(CURRENCIES, currency), pa.array([REPORTING_CURRENCY] * n_mi, pa.string())]),
            "fee": _money(all_minor * 29 // 1000 + 30, all_digits),
            "settled_at": _iso(np.concatenate([txns.t_ms[rows] + settle_delay, mi_t + _MS_PER_DAY])),
            "settlement_status": _take(
                ("SETTLED", "REFUNDED", "CHARGEBACK"), np.concatenate([line_status, np.zeros(n_mi, np.int64)])
            ),
        }
    )
    return lines.take(pa.array(rng.permutation(n_lines)))


def _reconciliation_truth(day: _Day, recon: _Reconciliation) -> pa.Table:
    """Per eligible transaction (and line of no transaction of ours): its first line id and expected status."""
    first_rows, first_pos = np.unique(recon.line_rows, return_index=True)
    first_line_no = np.full(day.n, -1, np.int64)
    first_line_no[first_rows] = first_pos
    line_no = first_line_no[recon.eligible]
    line_id = pc.if_else(pa.array(line_no >= 0), day.line_ids(np.maximum(line_no, 0)), pa.scalar(None, pa.string()))
    expected = _take(RECON_STATUSES, recon.status[recon.eligible])
    return pa.table(
        {
            "transaction_id": pa.concat_arrays([day.txn_ids(recon.eligible), recon.missing_internal_refs(day)]),
            "line_id": pa.concat_arrays([line_id, recon.missing_internal_line_ids(day)]),
            "expected_status": pa.concat_arrays([expected, pa.array(["MISSING_INTERNAL"] * recon.missing_internal, pa.string())]),
        }
    )


# --- reference data and the side sources' unparseable lines -------------------------------------------


def _merchants_table(day: _Day, people: _People) -> pa.Table:
    rng, n_merchants = day.rng, people.n_merchants
    numbers = np.arange(n_merchants)
    return pa.table(
        {
            "merchant_id": _ids("m-", numbers, 6),
            "merchant_name": _ids("Merchant ", numbers, 6),
            "risk_level": _take(("LOW", "MEDIUM", "HIGH"), rng.choice(3, size=n_merchants, p=(0.7, 0.25, 0.05))),
            "mcc": _take(MCCS, rng.integers(0, len(MCCS), size=n_merchants)),
            "country": _take(COUNTRIES, people.merchant_country),
            "payout_schedule": _take(("DAILY", "WEEKLY", "MONTHLY"), numbers % 3),
            "payout_delay_days": pa.array(np.array([1, 7, 30])[numbers % 3] + rng.integers(0, 3, size=n_merchants)).cast(
                pa.string()
            ),
        }
    )


def _users_table(day: _Day, people: _People) -> pa.Table:
    rng, n_users = day.rng, people.n_users
    return pa.table(
        {
            "user_id": _ids("u-", np.arange(n_users), 8),
            "kyc_status": _take(
                ("VERIFIED", "PENDING", "REJECTED", "NOT_STARTED"), rng.choice(4, size=n_users, p=(0.85, 0.08, 0.02, 0.05))
            ),
            "risk_tier": _take(("LOW", "MEDIUM", "HIGH"), rng.choice(3, size=n_users, p=(0.8, 0.17, 0.03))),
            "country": _take(_COUNTRY_NAMES, people.user_country),
            "created_at": _iso(day.day0_ms - rng.integers(1, 1500, size=n_users) * _MS_PER_DAY),
        }
    )


def _policies(date: dt.date) -> pa.Table:
    """The baseline risk policy, and its tightened version effective from the day's noon."""

    def policy(per_5min: int, amount_limit: str) -> str:
        rules = {
            "velocity_per_minute": POLICY_VELOCITY_PER_MINUTE,
            "velocity_per_5min": per_5min,
            "blocked_countries": list(BLOCKED_COUNTRIES),
            "amount_limit": amount_limit,
            "amount_limit_currency": REPORTING_CURRENCY,
        }
        return json.dumps(rules, sort_keys=True)

    noon = dt.datetime(date.year, date.month, date.day, 12, tzinfo=dt.UTC)
    return pa.table(
        {
            "policy_id": ["pol-baseline-v1", "pol-baseline-v2"],
            "policy_name": ["baseline risk policy", "baseline risk policy (tightened)"],
            "policy_data": [policy(10, "5000.00"), policy(8, "4500.00")],
            "effective_date": ["2026-01-01T00:00:00Z", noon.strftime("%Y-%m-%dT%H:%M:%SZ")],
        }
    )


def _fx_rates(seed: int, date: dt.date) -> pa.Table:
    """The rates of the day and the seven before it, wobbling +-1% around BASE_FX (a stream of their own)."""
    fx_dates, fx_currencies, fx_values = [], [], []
    for back in range(7, -1, -1):
        day = date - dt.timedelta(days=back)
        wobble = np.random.default_rng([seed, int(day.strftime("%Y%m%d")), 4217]).uniform(-0.01, 0.01, size=len(CURRENCIES))
        for i, code in enumerate(CURRENCIES):
            fx_dates.append(day.isoformat())
            fx_currencies.append(code)
            fx_values.append(1.0 if code == REPORTING_CURRENCY else BASE_FX[code] * (1 + wobble[i]))
    return pa.table({"rate_date": fx_dates, "currency": fx_currencies, "rate_to_reporting": _fixed(np.array(fx_values), 8)})


def _side_raw_lines(day: _Day, cards: _Cards) -> dict[str, list[str]]:
    """One unparseable line holding a grouped card number and its CVV in the fraud-scores and the
    settlements drops (batch drops only)."""
    pan, cvv = cards.pan_digits[1], cards.cvv[1]
    score = {
        "model_version": MODEL_VERSIONS[0],
        "transaction_id": f"tx-{day.tag}-s000000",
        "fraud_score": "0.5000",
        "explanations": f"analyst note: card {card_text(pan, 1)}, cvv: {cvv}",
        "inference_time": _iso(np.array([day.day0_ms + 3_600_000])).to_pylist()[0],
    }
    return {
        "fraud_scores": [json.dumps(score, separators=(",", ":"))[:-12]],  # cut inside inference_time: not a JSON object
        "settlements": [f'STMT-BANK-{day.tag},ln-{day.tag}-s000000,BANK,"card {card_text(pan, 2)} cvv={cvv}"'],
    }


# --- the ground truth ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parts:
    """What the day is made of, for its ground truth."""

    day: _Day
    people: _People
    txns: _Transactions
    repeats: _Repeats
    retries: _Retries
    resends: _Resends
    malformed: _Malformed
    records: pa.Table
    scores: _Scores
    recon: _Reconciliation
    policies: pa.Table
    side_raw_lines: dict[str, list[str]]

    def ids(self, rows) -> list[str]:
        return self.day.txn_ids(self.txns.numbers[np.asarray(rows, np.int64)]).to_pylist()

    def user_ids(self, rows: np.ndarray) -> list[str]:
        return sorted(set(_ids("u-", self.txns.user[rows], 8).to_pylist()))

    def pattern_rows(self, pattern: str) -> np.ndarray:
        return np.flatnonzero(self.txns.kind == _KIND[pattern])


def _ground_truth(parts: _Parts) -> dict[str, Any]:
    config = parts.day.config
    return {
        "format_version": 1,
        "date": config.date,
        "config": dataclasses.asdict(config),
        "expected_counts": _expected_counts(parts),
        "card_data_variants": _card_data_variants(parts),
        "duplicates": _duplicates_truth(parts),
        "malformed": {"by_reason": _malformed_ids_by_reason(parts)},
        "fraud_patterns": _fraud_patterns_truth(parts),
        "reconciliation": _reconciliation_summary(parts),
        "fraud_scores": {
            "rows": int(parts.scores.table.num_rows),
            "unscored_ids_count": int(parts.day.n - len(parts.scores.scored_idx)),
            "rescored_ids": parts.ids(parts.scores.rescored_idx),
        },
        "policies": {"versions": parts.policies.select(["policy_id", "effective_date"]).to_pylist()},
        "reporting_currency": REPORTING_CURRENCY,
    }


def _expected_counts(parts: _Parts) -> dict[str, Any]:
    records, repeats = parts.records, parts.repeats
    counts = {
        "read": int(records.num_rows),
        "indexed": parts.day.n,
        "quarantined": len(parts.malformed.reason),
        "duplicates": len(repeats.retry_idx) + len(repeats.resend_idx),
        "quarantined_by_reason": {reason: parts.malformed.per_class for reason in MALFORMED_CLASSES},
        "read_by_source": {g: int(pc.sum(pc.equal(records.column("source_name"), g)).as_py() or 0) for g in GATEWAYS},
        # unparseable lines per side source: quarantined by the job that reads the source
        # (fraud_scores: batch index; settlements: aggregate and business indexes)
        "side_source_unparseable_lines": {source: len(lines) for source, lines in sorted(parts.side_raw_lines.items())},
    }
    if counts["duplicates"] + counts["indexed"] + counts["quarantined"] != counts["read"]:
        raise AssertionError("generator bookkeeping: records do not add up")
    return counts


def _card_data_variants(parts: _Parts) -> dict[str, Any]:
    user_slot = np.arange(parts.people.n_users) % PII_PERIOD
    unparseable = parts.malformed.reason == MALFORMED_CLASSES.index(Reason.UNPARSEABLE)
    return {
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
        "side_source_lines_with_card_numbers": {source: len(lines) for source, lines in sorted(parts.side_raw_lines.items())},
    }


def _duplicates_truth(parts: _Parts) -> dict[str, Any]:
    repeats = parts.repeats
    extra_copies: dict[str, int] = {}
    for tid in parts.ids(repeats.retry_idx) + parts.ids(repeats.resend_idx):
        extra_copies[tid] = extra_copies.get(tid, 0) + 1
    return {
        "extra_copies_by_id": dict(sorted(extra_copies.items())),
        "exact_resend_ids": parts.ids(repeats.resend_idx),
        "exact_resend_cross_source_ids": parts.ids(repeats.resend_idx[parts.resends.moved]),
        "retry_ids": parts.ids(repeats.retry_idx),
        "out_of_order_ids": parts.ids(repeats.retry_idx[parts.retries.out_of_order]),
        "late_ids": parts.ids(repeats.late_idx),
        "winner_status": "the record with the latest updated_at; retries end AUTHORIZED",
    }


def _malformed_ids_by_reason(parts: _Parts) -> dict[str, list[str]]:
    ids = parts.malformed.records.columns["transaction_id"].to_pylist()
    reason = parts.malformed.reason
    return {name: [ids[i] for i in np.flatnonzero(reason == r)] for r, name in enumerate(MALFORMED_CLASSES)}


def _fraud_patterns_truth(parts: _Parts) -> dict[str, Any]:
    """Per planted pattern: its transactions and the flags and actions the rules and policies must give them."""
    from spark_apps.fraud_rules import load_rules

    rules = load_rules()
    geo_jump, high, churn, blocked = (parts.pattern_rows(p) for p in ("geo_jump", "high_amount", "device_churn", "geo_block"))
    churn_flagged = churn[parts.txns.device_no[churn] + 1 >= rules.device_churn_min_devices]
    return {
        "card_testing": _card_testing_truth(parts, rules),
        "geo_jump": {"transaction_ids": parts.ids(geo_jump), "expected_rule_flag_ids": {"GEO_JUMP": parts.ids(geo_jump[1::2])}},
        "high_amount": {
            "transaction_ids": parts.ids(high),
            "expected_rule_flag_ids": {"HIGH_AMOUNT": parts.ids(high)},
            "expected_policy_flag_ids": {"AMOUNT_LIMIT": parts.ids(high)},
        },
        "device_churn": {
            "transaction_ids": parts.ids(churn),
            "user_ids": parts.user_ids(churn),
            "expected_rule_flag_ids": {"DEVICE_CHURN": parts.ids(churn_flagged)},
        },
        "geo_block": {"transaction_ids": parts.ids(blocked), "expected_policy_flag_ids": {"GEO_BLOCK": parts.ids(blocked)}},
        "normal_transactions_raise_no_flags": True,
    }


def _card_testing_truth(parts: _Parts, rules) -> dict[str, Any]:
    rows = parts.pattern_rows("card_testing")
    bursts = len(parts.people.pattern_users["card_testing"])
    nth = np.tile(np.arange(parts.day.config.card_testing_burst), bursts) + 1  # each charge's place in its burst
    return {
        "transaction_ids": parts.ids(rows),
        "user_ids": parts.user_ids(rows),
        "expected_rule_flag_ids": {
            "CARD_TESTING": parts.ids(rows[nth >= rules.card_testing_min_transactions]),
            "VELOCITY": parts.ids(rows[nth > rules.velocity_max_transactions]),
        },
        "expected_policy_flag_ids": {"VELOCITY": parts.ids(rows[nth > POLICY_VELOCITY_PER_MINUTE])},
        "expected_action_ids": {
            "BLOCK_CARD": parts.ids(rows[nth >= rules.block_card_min_velocity]),
            "REQUIRE_3DS": parts.ids(rows[(nth >= rules.require_3ds_min_velocity) & (nth < rules.block_card_min_velocity)]),
        },
    }


def _reconciliation_summary(parts: _Parts) -> dict[str, Any]:
    recon, day = parts.recon, parts.day
    expected = recon.status[recon.eligible]
    status_counts = {name: int((expected == i).sum()) for i, name in enumerate(RECON_STATUSES)}
    status_counts["MISSING_INTERNAL"] = recon.missing_internal
    return {
        "late_settlement_after_hours": LATE_SETTLEMENT_AFTER_HOURS,
        "eligible": "transactions whose final status is AUTHORIZED or REFUNDED; the others expect no statement line",
        "status_counts": status_counts,
        "breaks": {
            name: parts.ids(recon.eligible[expected == i])
            for i, name in enumerate(RECON_STATUSES)
            if name not in ("MATCHED", "MISSING_INTERNAL")
        },
        "missing_internal": {
            "transaction_refs": recon.missing_internal_refs(day).to_pylist(),
            "line_ids": recon.missing_internal_line_ids(day).to_pylist(),
        },
        "refund_ids": parts.ids(parts.repeats.refund_idx),
        "chargeback_ids": parts.ids(recon.chargeback_idx),
        "truth_file": "reconciliation.parquet",
    }
