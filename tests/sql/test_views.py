"""BI views: each parses as Athena SQL and, transpiled by sqlglot, runs on DuckDB over tables built from the DDL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from spark_apps import catalog

VIEWS_DIR = catalog.SQL_DIR / "views"
VIEWS = sorted(path.stem for path in VIEWS_DIR.glob("*.sql"))
D = Decimal


def view_sql(name: str) -> str:
    return (VIEWS_DIR / f"{name}.sql").read_text()


def test_the_dashboard_views_exist():
    assert (
        sorted(
            [
                "active_high_risk_accounts",
                "daily_fraud_summary",
                "deduplication_effectiveness",
                "merchant_leaderboard",
                "reconciliation_breaks",
                "settlement_forecast",
                "velocity_fraud_analysis",
            ]
        )
        == VIEWS
    )


@pytest.mark.parametrize("name", VIEWS)
def test_view_parses_as_one_athena_create_view(name):
    statements = sqlglot.parse(view_sql(name), read="athena")
    assert len(statements) == 1
    statement = statements[0]
    assert isinstance(statement, exp.Create) and statement.kind == "VIEW"
    assert (statement.this.db, statement.this.name) == ("payments", name)
    tables = {table.name for table in statement.find_all(exp.Table) if table.db == "payments"} - {name}
    assert tables <= set(catalog.TABLE_SCHEMAS), f"{name} reads unknown tables {tables - set(catalog.TABLE_SCHEMAS)}"


class Lake:
    """An in-memory DuckDB holding the catalog tables (DDL columns + partition keys) and the transpiled views."""

    def __init__(self):
        self.db = duckdb.connect()
        self.db.execute("SET TimeZone = 'UTC'")
        self.db.execute("CREATE SCHEMA payments")
        for table in catalog.TABLE_SCHEMAS:
            columns = catalog.table_columns(table) + catalog.partition_columns(table)
            ddl = ", ".join(f'"{c["name"]}" {exp.DataType.build(c["type"], dialect="hive").sql("duckdb")}' for c in columns)
            self.db.execute(f"CREATE TABLE payments.{table} ({ddl})")
        for name in VIEWS:
            self.db.execute(sqlglot.transpile(view_sql(name), read="athena", write="duckdb")[0])

    def insert(self, table: str, rows: list[dict]) -> None:
        for row in rows:
            names = ", ".join(f'"{key}"' for key in row)
            self.db.execute(f"INSERT INTO payments.{table} ({names}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def query(self, sql: str) -> list[tuple]:
        return self.db.execute(sql).fetchall()


@pytest.fixture
def lake():
    lake = Lake()
    yield lake
    lake.db.close()


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def fraud(tid, user, when, dt_, action="MANUAL_REVIEW", risk=75, flags=(), amount="10.00", card=None, score="0.9000"):
    return {"transaction_id": tid, "user_id": user, "merchant_id": "m1", "card_token": card or f"card-{user}", "event_time": ts(when),
            "amount_reporting": D(amount), "rule_flags": list(flags), "risk_score": risk, "recommended_action": action,
            "fraud_score": D(score), "dt": dt_}  # fmt: skip


def test_daily_fraud_summary(lake):
    lake.insert("fraud_index", [
        fraud("t1", "u1", "2026-11-20 10:00", "2026-11-20", action="BLOCK_CARD", risk=90, flags=["VELOCITY"], amount="5.00"),
        fraud("t2", "u1", "2026-11-20 10:01", "2026-11-20", action="REQUIRE_3DS", risk=70, flags=["VELOCITY"], amount="5.00"),
        fraud("t3", "u2", "2026-11-20 11:00", "2026-11-20", action="MANUAL_REVIEW", risk=71, amount="100.50", score="0.9500"),
        fraud("t4", "u3", "2026-11-21 09:00", "2026-11-21", action="MANUAL_REVIEW", risk=80, amount="1.00"),
    ])  # fmt: skip
    assert lake.query("SELECT * FROM payments.daily_fraud_summary ORDER BY dt") == [
        ("2026-11-20", 3, 2, 2, 1, 1, 1, 2, D("110.50"), D("77.00"), D("0.9500")),
        ("2026-11-21", 1, 1, 1, 0, 0, 1, 0, D("1.00"), D("80.00"), D("0.9000")),
    ]


def test_active_high_risk_accounts(lake):
    lake.insert("fraud_index", [
        fraud("a1", "two_flags", "2026-11-19 10:00", "2026-11-19", risk=60),
        fraud("a2", "two_flags", "2026-11-20 10:00", "2026-11-20", risk=65, action="BLOCK_CARD"),
        fraud("b1", "high_risk", "2026-11-20 12:00", "2026-11-20", risk=85),
        fraud("c1", "low_single", "2026-11-20 13:00", "2026-11-20", risk=50),
        fraud("d1", "stale", "2026-11-10 10:00", "2026-11-10", risk=99),
        fraud("d2", "stale", "2026-11-11 10:00", "2026-11-11", risk=99),
    ])  # fmt: skip
    result = lake.query(
        "SELECT user_id, flagged_transactions, max_risk_score, block_card_actions, last_flagged_at FROM payments.active_high_risk_accounts ORDER BY user_id"
    )
    assert result == [("high_risk", 1, 85, 0, ts("2026-11-20 12:00")), ("two_flags", 2, 65, 1, ts("2026-11-20 10:00"))]


def test_velocity_fraud_analysis(lake):
    lake.insert("fraud_index", [
        fraud("v1", "u1", "2026-11-20 10:00:00", "2026-11-20", flags=["VELOCITY"], card="c1"),
        fraud("v2", "u1", "2026-11-20 10:00:20", "2026-11-20", flags=["VELOCITY", "CARD_TESTING"], card="c1", action="BLOCK_CARD"),
        fraud("v3", "u2", "2026-11-20 10:30:00", "2026-11-20", flags=["CARD_TESTING"], card="c2"),
        fraud("v4", "u3", "2026-11-20 11:00:00", "2026-11-20", flags=["VELOCITY"], card="c3", amount="7.25"),
        fraud("g1", "u4", "2026-11-20 10:00:00", "2026-11-20", flags=["GEO_JUMP"]),
    ])  # fmt: skip
    assert lake.query("SELECT * FROM payments.velocity_fraud_analysis ORDER BY event_hour") == [
        ("2026-11-20", ts("2026-11-20 10:00"), 3, 2, 2, 2, D("30.00"), 1),
        ("2026-11-20", ts("2026-11-20 11:00"), 1, 0, 1, 1, D("7.25"), 0),
    ]


def test_merchant_leaderboard(lake):
    def day(merchant, date, count, approved, volume, chargebacks=0, anomaly=False):
        return {"merchant_id": merchant, "merchant_name": f"Merchant {merchant}", "business_date": dt.date.fromisoformat(date),
                "transaction_count": count, "approved_count": approved, "gross_volume": D(volume), "refund_amount": D("0.00"),
                "chargeback_count": chargebacks, "is_anomaly": anomaly, "dt": date}  # fmt: skip

    lake.insert("merchant_performance_index", [
        day("m1", "2026-11-19", 10, 8, "800.00", chargebacks=1),
        day("m1", "2026-11-20", 10, 10, "1000.00", anomaly=True),
        day("m1", "2026-10-01", 100, 100, "99999.00"),  # outside the 30 days
        day("m2", "2026-11-20", 4, 3, "3000.00"),
    ])  # fmt: skip
    assert lake.query(
        "SELECT merchant_id, active_days, transactions, gross_volume, approval_rate, chargeback_ratio, anomaly_days, volume_rank FROM payments.merchant_leaderboard ORDER BY volume_rank"
    ) == [
        ("m2", 1, 4, D("3000.00"), D("0.750000"), D("0.000000"), 0, 1),
        ("m1", 2, 20, D("1800.00"), D("0.900000"), D("0.055556"), 1, 2),
    ]


def test_reconciliation_breaks_by_type_and_age(lake):
    def row(key, status, event_time, settled_at, difference=None, statement="100.00", internal="100.00"):
        return {"reconciliation_key": key, "match_status": status, "event_time": event_time and ts(event_time), "settled_at": settled_at and ts(settled_at),
                "amount_difference": difference and D(difference), "statement_amount": statement and D(statement),
                "internal_amount": internal and D(internal), "dt": "2026-11-20", "version": "r", "reconciled_at": ts("2026-11-21 01:00")}  # fmt: skip

    lake.insert("reconciliation_index", [
        row("txn:m", "MATCHED", "2026-11-20 10:00", "2026-11-21 10:00", "0.00"),
        row("txn:a1", "AMOUNT_MISMATCH", "2026-11-20 10:00", "2026-11-21 10:00", "1.00", statement="101.00"),
        row("txn:a2", "AMOUNT_MISMATCH", "2026-11-19 10:00", "2026-11-21 10:00", "-2.50", statement="97.50"),
        row("txn:l", "LATE_SETTLEMENT", "2026-11-15 10:00", "2026-11-20 10:00", "0.00"),
        row("txn:x", "MISSING_IN_STATEMENT", "2026-11-10 10:00", None, statement=None),
        row("line:s/1", "MISSING_INTERNAL", None, "2026-11-20 09:00", internal=None),
    ])  # fmt: skip
    assert lake.query("SELECT * FROM payments.reconciliation_breaks ORDER BY match_status, age_bucket") == [
        ("2026-11-20", "AMOUNT_MISMATCH", "0-1d", 2, D("3.50"), D("198.50"), D("200.00")),
        ("2026-11-20", "LATE_SETTLEMENT", "4-7d", 1, D("0.00"), D("100.00"), D("100.00")),
        ("2026-11-20", "MISSING_INTERNAL", "0-1d", 1, None, D("100.00"), None),
        ("2026-11-20", "MISSING_IN_STATEMENT", "8d+", 1, None, None, D("100.00")),
    ]


def test_deduplication_effectiveness(lake):
    lake.insert(
        "stream_index", [{"transaction_id": tid, "dt": "2026-11-20", "hour": 10} for tid in ("t1", "t1", "t2", "t2", "t3")]
    )
    lake.insert("aggregate_index", [
        {"transaction_id": "t1", "record_source": "STREAM_AND_BATCH", "first_seen_date": dt.date(2026, 11, 20), "dt": "2026-11-20"},
        {"transaction_id": "t2", "record_source": "STREAM", "first_seen_date": dt.date(2026, 11, 20), "dt": "2026-11-20"},
        {"transaction_id": "t4", "record_source": "BATCH", "first_seen_date": dt.date(2026, 11, 20), "dt": "2026-11-20"},
        {"transaction_id": "old", "record_source": "BATCH", "first_seen_date": dt.date(2026, 11, 19), "dt": "2026-11-20"},
    ])  # fmt: skip
    lake.insert(
        "quarantine",
        [
            {"reason_code": "unparseable", "dt": "2026-11-20"},
            {"reason_code": "late", "dt": "2026-11-20"},
            {"reason_code": "late", "dt": "2026-11-19"},
        ],
    )
    assert lake.query("SELECT * FROM payments.deduplication_effectiveness") == [
        ("2026-11-20", 3, 1, 1, 1, 5, 3, 2, D("0.400000"), 2)
    ]


def test_settlement_forecast_sums_statement_days_of_upcoming_payouts(lake):
    today = dt.date.today()
    soon, later, past = today + dt.timedelta(days=2), today + dt.timedelta(days=9), today - dt.timedelta(days=1)

    def payout(merchant, payout_date, statement_date, gross, fee, status="SCHEDULED", currency="USD", refunds="0.00"):
        net = D(gross) - D(refunds) - D(fee)
        return {"merchant_id": merchant, "merchant_name": f"Merchant {merchant}", "expected_payout_date": payout_date, "statement_date": statement_date,
                "currency": currency, "line_count": 1, "gross_amount": D(gross), "refund_amount": D(refunds), "chargeback_amount": D("0.00"),
                "fee_amount": D(fee), "net_amount": net, "payout_status": status, "dt": statement_date.isoformat()}  # fmt: skip

    lake.insert("settlement_schedule_index", [
        payout("m1", later, today - dt.timedelta(days=2), "100.00", "2.90"),
        payout("m1", later, today - dt.timedelta(days=1), "50.00", "1.45", refunds="10.00"),
        payout("m1", soon, today, "20.00", "0.58", currency="EUR", status="ON_HOLD"),
        payout("m2", past, today - dt.timedelta(days=3), "70.00", "2.03"),
    ])  # fmt: skip
    assert lake.query(
        "SELECT merchant_id, expected_payout_date, currency, lines, gross_amount, refund_amount, fee_amount, net_amount, has_hold, statement_days FROM payments.settlement_forecast ORDER BY expected_payout_date"
    ) == [
        ("m1", soon, "EUR", 1, D("20.00"), D("0.00"), D("0.58"), D("19.42"), True, 1),
        ("m1", later, "USD", 2, D("150.00"), D("10.00"), D("4.35"), D("135.65"), False, 2),
    ]
