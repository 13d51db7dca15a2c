"""The local dashboard: the BI views of ``include/sql/views`` run with DuckDB on the
published data of the embedded catalog, drawn as one HTML page of interactive Plotly charts.

The page works offline: plotly.js (from the pinned ``plotly`` package) is embedded in it, no
CDN, no request. Sections: fraud over time, merchant leaderboard, reconciliation breaks,
settlement forecast (one chart per currency: amounts are never compared across currencies),
pipeline health (ops index + deduplication effectiveness).

    python -m devtools.dashboard --catalog .local/lake/catalog.duckdb --out .local/dashboard.html

Tables without a published partition are empty typed tables (from the catalog DDL), so
every view binds and an unpublished index shows as "no data" instead of an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import plotly.graph_objects as go
import sqlglot
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from sqlglot import exp

from spark_apps import catalog
from spark_apps.schemas import REPORTING_CURRENCY

VIEWS_DIR = catalog.SQL_DIR / "views"
BAR_COLOR = "#3b6fb6"
ALERT_COLOR = "#c0392b"
ORANGE = "#e67e22"
# No logo link, no "edit in Chart Studio": nothing on the page reaches the network.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False}


def open_bi_connection(catalog_path: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with schema ``payments``: every catalog table (published data
    from the embedded catalog, read-only, or an empty typed table) and every BI view."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{Path(catalog_path)}' AS lake (READ_ONLY)")
    published = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake' AND table_schema = ?",
            [catalog.DATABASE],
        ).fetchall()
    }
    con.execute(f"CREATE SCHEMA {catalog.DATABASE}")
    for table in catalog.TABLE_SCHEMAS:
        if table in published:
            con.execute(f"CREATE VIEW {catalog.DATABASE}.{table} AS SELECT * FROM lake.{catalog.DATABASE}.{table}")
            continue
        columns = catalog.table_columns(table) + catalog.partition_columns(table)
        ddl = ", ".join(f'"{c["name"]}" {exp.DataType.build(c["type"], dialect="hive").sql("duckdb")}' for c in columns)
        con.execute(f"CREATE TABLE {catalog.DATABASE}.{table} ({ddl})")
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        con.execute(sqlglot.transpile(path.read_text(), read="athena", write="duckdb")[0])
    return con


def rows_of(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# --------------------------------------------------------------------------- data


@dataclass
class DashboardData:
    fraud_by_hour: list[dict]
    daily_fraud: list[dict]
    leaderboard: list[dict]
    breaks: list[dict]
    forecast: list[dict]
    ops: list[dict]
    dedup: list[dict]


def collect(con: duckdb.DuckDBPyConnection, top_merchants: int = 10) -> DashboardData:
    """Run the BI views (and the hourly fraud series from the fraud index) once each."""
    p = catalog.DATABASE
    return DashboardData(
        # Flagged transactions per hour of event time; the velocity view gives its subset.
        fraud_by_hour=rows_of(
            con,
            f"""WITH flagged AS (
                  SELECT date_trunc('hour', event_time) AS event_hour, COUNT(*) AS flagged,
                         SUM(CASE WHEN recommended_action = 'BLOCK_CARD' THEN 1 ELSE 0 END) AS blocked
                  FROM {p}.fraud_index GROUP BY 1),
                velocity AS (
                  SELECT event_hour, SUM(velocity_transactions) AS velocity
                  FROM {p}.velocity_fraud_analysis GROUP BY 1)
                SELECT flagged.event_hour, flagged.flagged, flagged.blocked, COALESCE(velocity.velocity, 0) AS velocity
                FROM flagged LEFT JOIN velocity USING (event_hour) ORDER BY flagged.event_hour""",
        ),
        daily_fraud=rows_of(con, f"SELECT * FROM {p}.daily_fraud_summary ORDER BY dt"),
        leaderboard=rows_of(
            con, f"SELECT * FROM {p}.merchant_leaderboard ORDER BY volume_rank, merchant_id LIMIT {int(top_merchants)}"
        ),
        breaks=rows_of(
            con,
            f"""SELECT match_status, SUM(breaks) AS breaks, SUM(absolute_difference) AS absolute_difference
                FROM {p}.reconciliation_breaks GROUP BY match_status ORDER BY breaks DESC, match_status""",
        ),
        forecast=rows_of(
            con,
            f"""SELECT expected_payout_date, currency, SUM(net_amount) AS net_amount, SUM(lines) AS lines,
                       COUNT(DISTINCT merchant_id) AS merchants, BOOL_OR(has_hold) AS has_hold
                FROM {p}.settlement_forecast GROUP BY 1, 2 ORDER BY 1, 2""",
        ),
        ops=rows_of(
            con,
            f"""SELECT stage, SUM(records_in) AS records_in, SUM(records_out) AS records_out,
                       SUM(error_count) AS errors, SUM(quarantine_count) AS quarantined,
                       MAX(latency_p99_ms) AS latency_p99_ms, MAX(error_rate) AS error_rate,
                       MAX(quarantine_rate) AS quarantine_rate
                FROM {p}.ops_index GROUP BY stage ORDER BY stage""",
        ),
        dedup=rows_of(con, f"SELECT * FROM {p}.deduplication_effectiveness ORDER BY dt"),
    )


# --------------------------------------------------------------------------- charts


def _numbers(values) -> list[float]:
    return [float(v) if v is not None else 0.0 for v in values]


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10}, template="plotly_white")
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def hbar_figure(labels: list[str], values: list, axis_title: str, color: str = BAR_COLOR) -> go.Figure:
    """Horizontal bars, the largest on top; ``axis_title`` names the unit (one currency at most)."""
    fig = go.Figure(go.Bar(x=_numbers(values), y=labels, orientation="h", marker_color=color, name=axis_title))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(title_text=axis_title)
    return _layout(fig, 80 + 28 * len(labels))


def fraud_figure(rows: list[dict]) -> go.Figure:
    """Flagged, velocity / card-testing and blocked transactions per event hour, grouped bars."""
    hours = [row["event_hour"] for row in rows]
    fig = go.Figure()
    for name, key, color in (
        ("flagged", "flagged", BAR_COLOR),
        ("velocity / card testing", "velocity", ORANGE),
        ("blocked", "blocked", ALERT_COLOR),
    ):
        fig.add_trace(go.Bar(x=hours, y=_numbers(row[key] for row in rows), name=name, marker_color=color))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.12})
    fig.update_xaxes(title_text="event hour (UTC)", type="date")
    fig.update_yaxes(title_text="transactions")
    return _layout(fig, 340)


def forecast_figure(rows: list[dict]) -> go.Figure:
    """Net payouts per payout date: one chart per currency, each amount axis in its own currency."""
    currencies = sorted({row["currency"] for row in rows})
    height = 60 + 260 * len(currencies)
    # About 90 px between charts (make_subplots takes a fraction of the whole height).
    fig = make_subplots(rows=len(currencies), cols=1, subplot_titles=currencies, vertical_spacing=90 / height)
    for i, currency in enumerate(currencies, start=1):
        mine = [row for row in rows if row["currency"] == currency]
        fig.add_trace(
            go.Bar(
                x=[str(row["expected_payout_date"]) for row in mine],
                y=_numbers(row["net_amount"] for row in mine),
                name=currency,
                marker_color=BAR_COLOR,
                customdata=[[row["merchants"], row["lines"]] for row in mine],
                hovertemplate="%{x}: %{y:,.2f} "
                + currency
                + "<br>%{customdata[0]} merchants, %{customdata[1]} lines<extra></extra>",
            ),
            row=i,
            col=1,
        )
        fig.update_yaxes(title_text=f"net payout ({currency})", row=i, col=1)
        fig.update_xaxes(title_text="expected payout date", type="category", row=i, col=1)
    fig.update_layout(showlegend=False)
    return _layout(fig, height)


def pipeline_figure(rows: list[dict]) -> go.Figure:
    stages = [row["stage"] for row in rows]
    fig = go.Figure()
    for name, key, color in (("records in", "records_in", BAR_COLOR), ("records out", "records_out", ORANGE)):
        fig.add_trace(go.Bar(x=_numbers(row[key] for row in rows), y=stages, orientation="h", name=name, marker_color=color))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.15})
    fig.update_yaxes(type="category")
    fig.update_xaxes(title_text="records")
    return _layout(fig, 100 + 50 * len(stages))


def chart(chart_id: str, title: str, figure: go.Figure | None) -> tuple[str, str]:
    """(the chart's ``<div>``, its ``Plotly.newPlot`` call) or a "no data" note and no call."""
    if figure is None:
        return f'<p class="empty" id="{chart_id}">{html.escape(title)}: no data published.</p>', ""
    # The figure's JSON inside a <script>: "</" must not end the script early.
    spec = figure.to_json().replace("</", "<\\/")
    return (
        f'<div id="{chart_id}" class="chart" role="img" aria-label="{html.escape(title)}"></div>',
        f"charts.push(Plotly.newPlot({json.dumps(chart_id)}, Object.assign({spec}, {{config: {json.dumps(PLOTLY_CONFIG)}}})));",
    )


def table_html(rows: list[dict], columns: list[str] | None = None) -> str:
    if not rows:
        return '<p class="empty">no rows</p>'
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(c)))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --------------------------------------------------------------------------- page

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { margin-bottom: 4px; } .sub { color: #666; margin-top: 0; }
section { margin: 28px 0; }
table { border-collapse: collapse; font-size: 12px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
.empty { color: #999; font-style: italic; }
"""

# Runs once every chart is drawn: records on <body> what the browser rendered (the browser test
# reads it): the number of charts with Plotly's SVG, and per chart its bars and axis titles.
RENDERED_SCRIPT = """
Promise.all(charts).then(function () {
  var report = {};
  document.querySelectorAll('div.chart').forEach(function (div) {
    var titles = Array.prototype.filter.call(div.querySelectorAll('text'), function (t) {
      return /^[xy][0-9]*title$/.test(t.getAttribute('class') || '');
    }).map(function (t) { return t.textContent; });
    report[div.id] = {svg: div.querySelectorAll('svg.main-svg').length,
                      bars: div.querySelectorAll('g.trace.bars g.point path').length, axes: titles};
  });
  document.body.dataset.rendered = JSON.stringify(report);
  document.body.dataset.charts = Object.keys(report).filter(function (id) { return report[id].svg > 0; }).length;
});
"""


def leaderboard_figure(rows: list[dict]) -> go.Figure:
    labels = [f"#{row['volume_rank']} {row['merchant_name'] or row['merchant_id']}" for row in rows]
    return hbar_figure(labels, [row["gross_volume"] for row in rows], f"gross volume ({REPORTING_CURRENCY})")


def breaks_figure(rows: list[dict]) -> go.Figure:
    return hbar_figure([row["match_status"] for row in rows], [row["breaks"] for row in rows], "breaks", ALERT_COLOR)


FIGURES = {
    "fraud-over-time": ("Flagged transactions per hour", "fraud_by_hour", fraud_figure),
    "merchant-leaderboard": ("Merchant leaderboard", "leaderboard", leaderboard_figure),
    "reconciliation-breaks": ("Reconciliation breaks", "breaks", breaks_figure),
    "settlement-forecast": ("Settlement forecast", "forecast", forecast_figure),
    "pipeline-health": ("Records per stage", "ops", pipeline_figure),
}
HEADINGS = {
    "fraud-over-time": "Fraud over time",
    "merchant-leaderboard": f"Merchant leaderboard (gross volume in {REPORTING_CURRENCY}, last 30 days)",
    "reconciliation-breaks": "Reconciliation breaks by type",
    "settlement-forecast": "Settlement forecast (net payouts per date, one chart per currency)",
    "pipeline-health": "Pipeline health",
}


def section_tables(data: DashboardData) -> dict[str, str]:
    return {
        "fraud-over-time": table_html(
            data.daily_fraud, ["dt", "flagged_transactions", "flagged_users", "block_card", "require_3ds", "manual_review"]
        ),
        "merchant-leaderboard": table_html(
            data.leaderboard, ["volume_rank", "merchant_id", "transactions", "approval_rate", "chargeback_ratio", "anomaly_days"]
        ),
        "reconciliation-breaks": "",
        "settlement-forecast": table_html(data.forecast),
        "pipeline-health": table_html(data.ops) + "<h3>Deduplication effectiveness</h3>" + table_html(data.dedup),
    }


def sections(data: DashboardData) -> list[tuple[str, str, tuple[str, str], str]]:
    """(section id, heading, (chart div, its plot call), tables) per section of the page."""
    tables = section_tables(data)
    result = []
    for section_id, (title, field, build) in FIGURES.items():
        rows = getattr(data, field)
        div_and_call = chart(f"chart-{section_id}", title, build(rows) if rows else None)
        result.append((section_id, HEADINGS[section_id], div_and_call, tables[section_id]))
    return result


def render(data: DashboardData, title: str = "Payments platform — local dashboard", subtitle: str = "") -> str:
    parts = sections(data)
    body = "".join(
        f'<section id="{section_id}"><h2>{html.escape(heading)}</h2>{div}{tables}</section>'
        for section_id, heading, (div, _), tables in parts
    )
    calls = "\n".join(call for _, _, (_, call), _ in parts if call)
    # plotly.js only when there is a chart to draw; embedded, so the page works offline.
    library = f'<script type="text/javascript">{get_plotlyjs()}</script>' if calls else ""
    script = f"<script>var charts = [];\n{calls}\n{RENDERED_SCRIPT}</script>" if calls else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>{library}</head><body>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>{body}{script}"
        "</body></html>"
    )


def build_dashboard(catalog_path: str | Path, out_path: str | Path, subtitle: str = "") -> Path:
    """Run the BI views on the embedded catalog and write the HTML page; returns its path."""
    con = open_bi_connection(catalog_path)
    try:
        data = collect(con)
    finally:
        con.close()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(data, subtitle=subtitle or f"catalog {catalog_path}"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True, help="the embedded catalog (profile catalog.embedded_path)")
    parser.add_argument("--out", required=True, help="HTML file to write")
    args = parser.parse_args(argv)
    print(build_dashboard(args.catalog, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
