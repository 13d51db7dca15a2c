"""The local dashboard: BI views on a small published catalog, and the page (Plotly, offline) in headless Chromium."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import subprocess
import tempfile
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs
from sqlglot import exp

from devtools import dashboard
from payments_platform.publishing import EmbeddedPublisher
from spark_apps import catalog

D = Decimal
DAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def publish_rows(publisher: EmbeddedPublisher, index_uri: Path, table: str, rows: list[dict]) -> None:
    """Write ``rows`` as one verified version of ``table`` dt=DAY and publish it."""
    location = index_uri / table / f"dt={DAY}" / "version=test"
    location.mkdir(parents=True)
    columns = catalog.table_columns(table)
    ddl = ", ".join(f'"{c["name"]}" {exp.DataType.build(c["type"], dialect="hive").sql("duckdb")}' for c in columns)
    with duckdb.connect() as con:
        con.execute(f"CREATE TABLE t ({ddl})")
        for row in rows:
            names = ", ".join(f'"{key}"' for key in row)
            con.execute(f"INSERT INTO t ({names}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
        con.execute(f"COPY t TO '{location}/part-0.parquet' (FORMAT parquet)")
    (location / "_quality.json").write_text(json.dumps({"passed": True}))
    publisher.publish(table, DAY, str(location))


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(DAY), dt.time(hour, minute))


@pytest.fixture(scope="module")
def published_catalog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    path = root / "catalog.duckdb"
    publisher = EmbeddedPublisher(str(path), catalog.DATABASE, str(root / "indexes"))
    fraud = [
        {"transaction_id": "f1", "user_id": "u1", "merchant_id": "m1", "card_token": "c1", "event_time": at(10, 1),
         "amount_reporting": D("2.00"), "rule_flags": ["CARD_TESTING", "VELOCITY"], "risk_score": 95,
         "recommended_action": "BLOCK_CARD", "fraud_score": D("0.9900")},
        {"transaction_id": "f2", "user_id": "u1", "merchant_id": "m1", "card_token": "c1", "event_time": at(10, 2),
         "amount_reporting": D("2.50"), "rule_flags": ["VELOCITY"], "risk_score": 90,
         "recommended_action": "REQUIRE_3DS", "fraud_score": D("0.9000")},
        {"transaction_id": "f3", "user_id": "u2", "merchant_id": "m2", "card_token": "c2", "event_time": at(14),
         "amount_reporting": D("9000.00"), "rule_flags": ["HIGH_AMOUNT"], "risk_score": 80,
         "recommended_action": "MANUAL_REVIEW", "fraud_score": D("0.7000")},
    ]  # fmt: skip
    publish_rows(publisher, root / "indexes", "fraud_index", fraud)
    merchants = [
        {"merchant_id": m, "merchant_name": f"Shop {m}", "business_date": dt.date.fromisoformat(DAY),
         "transaction_count": n, "approved_count": n - 1, "gross_volume": D(volume), "refund_amount": D("0.00"),
         "chargeback_count": 0, "is_anomaly": False}
        for m, n, volume in (("m1", 10, "500.00"), ("m2", 4, "9100.00"), ("m3", 2, "40.00"))
    ]  # fmt: skip
    publish_rows(publisher, root / "indexes", "merchant_performance_index", merchants)
    recon = [
        {"reconciliation_key": f"txn:{i}", "match_status": status, "event_time": at(9), "settled_at": at(20),
         "amount_difference": D("1.00"), "statement_amount": D("10.00"), "internal_amount": D("9.00")}
        for i, status in enumerate(["MATCHED"] * 5 + ["AMOUNT_MISMATCH"] * 2 + ["MISSING_IN_STATEMENT"])
    ]  # fmt: skip
    publish_rows(publisher, root / "indexes", "reconciliation_index", recon)
    payout = dt.date.today() + dt.timedelta(days=2)
    settlement = [
        {"merchant_id": m, "merchant_name": f"Shop {m}", "statement_date": dt.date.fromisoformat(DAY),
         "expected_payout_date": payout, "currency": "EUR", "line_count": 3, "gross_amount": D(net),
         "refund_amount": D("0.00"), "chargeback_amount": D("0.00"), "fee_amount": D("0.00"), "net_amount": D(net),
         "payout_status": "SCHEDULED"}
        for m, net in (("m1", "100.25"), ("m2", "50.50"))
    ] + [
        # Two more currencies, with amounts that would dwarf each other on one axis.
        {"merchant_id": "m3", "merchant_name": "Shop m3", "statement_date": dt.date.fromisoformat(DAY),
         "expected_payout_date": payout, "currency": currency, "line_count": 1, "gross_amount": D(net),
         "refund_amount": D("0.00"), "chargeback_amount": D("0.00"), "fee_amount": D("0.00"), "net_amount": D(net),
         "payout_status": "SCHEDULED"}
        for currency, net in (("JPY", "1250000.00"), ("USD", "75.00"))
    ]  # fmt: skip
    publish_rows(publisher, root / "indexes", "settlement_schedule_index", settlement)
    ops = [
        {"stage": stage, "hour_start": at(10), "run_count": 1, "records_in": n, "records_out": n - q, "error_count": 0,
         "quarantine_count": q, "latency_p99_ms": 1200, "error_rate": D("0"), "quarantine_rate": D("0.01")}
        for stage, n, q in (("batch_index", 1000, 10), ("stream_index", 800, 0))
    ]  # fmt: skip
    ops_columns = {c["name"] for c in catalog.table_columns("ops_index")}
    publish_rows(publisher, root / "indexes", "ops_index", [{k: v for k, v in r.items() if k in ops_columns} for r in ops])
    return path


def test_the_views_run_on_the_published_catalog(published_catalog):
    con = dashboard.open_bi_connection(published_catalog)
    data = dashboard.collect(con)
    con.close()
    assert [(r["event_hour"], r["flagged"], r["velocity"], r["blocked"]) for r in data.fraud_by_hour] == [
        (at(10), 2, 2, 1),
        (at(14), 1, 0, 0),
    ]
    assert [(r["dt"], r["flagged_transactions"], r["block_card"]) for r in data.daily_fraud] == [(DAY, 3, 1)]
    assert [(r["volume_rank"], r["merchant_id"], r["gross_volume"]) for r in data.leaderboard] == [
        (1, "m2", D("9100.00")),
        (2, "m1", D("500.00")),
        (3, "m3", D("40.00")),
    ]
    assert [(r["match_status"], r["breaks"]) for r in data.breaks] == [("AMOUNT_MISMATCH", 2), ("MISSING_IN_STATEMENT", 1)]
    assert [(r["currency"], r["net_amount"], r["merchants"]) for r in data.forecast] == [
        ("EUR", D("150.75"), 2),
        ("JPY", D("1250000.00"), 1),
        ("USD", D("75.00"), 1),
    ]
    assert [(r["stage"], r["records_in"], r["quarantined"]) for r in data.ops] == [
        ("batch_index", 1000, 10),
        ("stream_index", 800, 0),
    ]


def test_an_empty_catalog_builds_a_page_saying_no_data(tmp_path):
    empty = tmp_path / "catalog.duckdb"
    EmbeddedPublisher(str(empty), catalog.DATABASE, str(tmp_path / "indexes"))._connect().close()
    page = dashboard.build_dashboard(empty, tmp_path / "dashboard.html").read_text()
    assert "Plotly.newPlot" not in page and "plotly.js" not in page  # no chart, no library
    assert page.count("no data published") == 5


def plotted(page: str) -> dict[str, dict]:
    """The figures the page hands to Plotly.newPlot, by chart id."""
    calls = re.findall(r'Plotly\.newPlot\("([^"]+)", Object\.assign\((.*?), \{config: ', page)
    return {chart_id: json.loads(spec.replace("<\\/", "</")) for chart_id, spec in calls}


def test_the_page_embeds_plotly_and_plots_one_figure_per_section(published_catalog, tmp_path):
    page = dashboard.build_dashboard(published_catalog, tmp_path / "dashboard.html").read_text()
    assert get_plotlyjs() in page  # the library itself, inline: the page works offline
    assert not re.search(r"<script[^>]+src=", page)
    figures = plotted(page)
    assert sorted(figures) == sorted(
        f"chart-{s}"
        for s in ("fraud-over-time", "merchant-leaderboard", "reconciliation-breaks", "settlement-forecast", "pipeline-health")
    )
    leaderboard = figures["chart-merchant-leaderboard"]
    assert leaderboard["data"][0]["y"] == ["#1 Shop m2", "#2 Shop m1", "#3 Shop m3"]
    assert leaderboard["data"][0]["x"] == [9100.0, 500.0, 40.0]
    assert leaderboard["layout"]["xaxis"]["title"]["text"] == "gross volume (USD)"
    breaks = figures["chart-reconciliation-breaks"]["data"][0]
    assert (breaks["y"], breaks["x"]) == (["AMOUNT_MISMATCH", "MISSING_IN_STATEMENT"], [2.0, 1.0])


def test_the_settlement_forecast_draws_each_currency_on_its_own_axis(published_catalog, tmp_path):
    page = dashboard.build_dashboard(published_catalog, tmp_path / "dashboard.html").read_text()
    forecast = plotted(page)["chart-settlement-forecast"]
    traces = [(t["name"], t["xaxis"], t["yaxis"], t["y"]) for t in forecast["data"]]
    assert traces == [("EUR", "x", "y", [150.75]), ("JPY", "x2", "y2", [1250000.0]), ("USD", "x3", "y3", [75.0])]
    layout = forecast["layout"]
    assert [layout[axis]["title"]["text"] for axis in ("yaxis", "yaxis2", "yaxis3")] == [
        "net payout (EUR)",
        "net payout (JPY)",
        "net payout (USD)",
    ]


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed here when missing (the test setup owns the install)."""
    found = shutil.which("chromium")
    if found:
        return found
    if not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and apt-get is unavailable to install it")
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True)
    return shutil.which("chromium") or pytest.fail("apt-get installed chromium but it is not on PATH")


def headless(chromium: str, url: str, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1400,2000", *extra, url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line and ("ERROR" in line or "Uncaught" in line)]


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for, from Chromium's net log: requests with a page origin as
    initiator (``null`` for a file:// page); the browser's own background calls have none."""
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job and "url" in event.get("params", {}) and event["params"].get("initiator") != "not an origin"
    ]


def test_console_errors_and_network_requests_are_detected_on_a_broken_page(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<html><body><img src="http://127.0.0.1:9/x.png">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    net_log = tmp_path / "net.json"
    result = headless(chromium, page.as_uri(), f"--log-net-log={net_log}", "--dump-dom")
    assert console_errors(result.stderr), result.stderr[-2000:]
    assert page_requests(net_log) == ["http://127.0.0.1:9/x.png"]


def rendered(dom: str) -> dict:
    """What the page's script recorded once Plotly drew every chart (see dashboard.RENDERED_SCRIPT)."""
    match = re.search(r'data-rendered="([^"]*)"', dom)
    assert match, "the charts did not finish rendering"
    return json.loads(html.unescape(match.group(1)))


CURRENCY = re.compile(r"\b(USD|EUR|JPY|GBP|CHF|CAD|AUD)\b")


def test_the_dashboard_renders_its_charts_in_chromium_offline_without_errors(chromium, published_catalog, tmp_path):
    page = dashboard.build_dashboard(published_catalog, tmp_path / "dashboard.html")
    net_log = tmp_path / "net.json"
    dom = headless(chromium, page.as_uri(), f"--log-net-log={net_log}", "--virtual-time-budget=10000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_errors(dom.stderr) == []
    assert page_requests(net_log) == []  # plotly.js is inline: nothing is fetched
    assert 'data-charts="5"' in dom.stdout  # five charts with Plotly's SVG after the inline script ran
    charts = rendered(dom.stdout)
    bars = {chart_id: figures["bars"] for chart_id, figures in charts.items()}
    assert bars == {
        "chart-fraud-over-time": 6,  # 2 hours x (flagged, velocity, blocked)
        "chart-merchant-leaderboard": 3,
        "chart-reconciliation-breaks": 2,
        "chart-settlement-forecast": 3,  # one bar in each currency's chart
        "chart-pipeline-health": 4,
    }
    forecast_axes = [title for title in charts["chart-settlement-forecast"]["axes"] if "net payout" in title]
    assert forecast_axes == ["net payout (EUR)", "net payout (JPY)", "net payout (USD)"]
    for chart_id, figures in charts.items():  # every drawn axis title names one currency at most
        for title in figures["axes"]:
            assert len(CURRENCY.findall(title)) <= 1, (chart_id, title)
    assert charts["chart-merchant-leaderboard"]["axes"] == ["gross volume (USD)"]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    result = headless(chromium, page.as_uri(), "--virtual-time-budget=10000", f"--screenshot={shot}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.stat().st_size > 10_000
