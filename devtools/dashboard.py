"""The local dashboard: the BI views of ``include/sql/views`` run with DuckDB on the
published data of the embedded catalog, drawn as one static HTML page with inline SVG.

The page needs no network and no JavaScript library: every chart is an ``<svg>`` built
here. Sections: fraud over time, merchant leaderboard, reconciliation breaks, settlement
forecast, pipeline health (ops index + deduplication effectiveness).

    python -m devtools.dashboard --catalog .local/lake/catalog.duckdb --out .local/dashboard.html

Tables without a published partition are empty typed tables (from the catalog DDL), so
every view binds and an unpublished index shows as "no data" instead of an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

from spark_apps import catalog

VIEWS_DIR = catalog.SQL_DIR / "views"
CHART_WIDTH = 640
BAR_COLOR = "#3b6fb6"
ALERT_COLOR = "#c0392b"


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


# --------------------------------------------------------------------------- SVG


def _number(value) -> float:
    return float(value) if value is not None else 0.0


def _label(value) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%H:%M")
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def hbar_chart(chart_id: str, title: str, labels: list[str], values: list, color: str = BAR_COLOR) -> str:
    """A horizontal bar chart as inline SVG (one ``<rect class="bar">`` per value)."""
    if not values:
        return f'<p class="empty" id="{chart_id}">{html.escape(title)}: no data published.</p>'
    row, left, right = 24, 220, 120
    height = row * len(values) + 10
    top = max(_number(v) for v in values) or 1.0
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{html.escape(title)}" '
        f'width="{CHART_WIDTH}" height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 5 + i * row
        width = max(1.0, (CHART_WIDTH - left - right) * _number(value) / top)
        parts.append(
            f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{html.escape(str(label))}</text>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="{color}">'
            f"<title>{html.escape(str(label))}: {html.escape(_label(value))}</title></rect>"
            f'<text x="{left + width + 6:.1f}" y="{y + 16}">{html.escape(_label(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart(chart_id: str, title: str, labels: list[str], series: dict[str, list], colors: list[str]) -> str:
    """Vertical grouped columns over ``labels`` (for example hours), one colour per series."""
    if not labels:
        return f'<p class="empty" id="{chart_id}">{html.escape(title)}: no data published.</p>'
    height, bottom, top_pad, left = 260, 40, 20, 50
    plot_w, plot_h = CHART_WIDTH - left - 10, height - bottom - top_pad
    top = max((_number(v) for values in series.values() for v in values), default=0.0) or 1.0
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.8 / len(series))
    parts = [
        f'<svg id="{chart_id}" class="chart" role="img" aria-label="{html.escape(title)}" '
        f'width="{CHART_WIDTH}" height="{height}" viewBox="0 0 {CHART_WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{CHART_WIDTH - 10}" y2="{top_pad + plot_h}" stroke="#888"/>',
        f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{top:,.0f}</text>',
    ]
    for i, label in enumerate(labels):
        x0 = left + i * slot + slot * 0.1
        for j, (name, values) in enumerate(series.items()):
            value = _number(values[i])
            bar_h = plot_h * value / top
            parts.append(
                f'<rect class="bar" x="{x0 + j * bar_w:.1f}" y="{top_pad + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
                f'height="{bar_h:.1f}" fill="{colors[j % len(colors)]}"><title>{html.escape(str(label))} {html.escape(name)}: '
                f"{html.escape(_label(values[i]))}</title></rect>"
            )
        if len(labels) <= 12 or i % max(1, len(labels) // 12) == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{html.escape(str(label))}</text>"
            )
    for j, name in enumerate(series):
        parts.append(
            f'<rect x="{left + j * 150}" y="{height - 14}" width="10" height="10" fill="{colors[j % len(colors)]}"/>'
            f'<text x="{left + j * 150 + 14}" y="{height - 5}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


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
    return _label(value)


# --------------------------------------------------------------------------- page

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } .sub { color: #666; margin-top: 0; }
section { margin: 28px 0; } svg.chart text { font-size: 12px; fill: #333; }
table { border-collapse: collapse; font-size: 12px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
.empty { color: #999; font-style: italic; }
"""


def render(data: DashboardData, title: str = "Payments platform — local dashboard", subtitle: str = "") -> str:
    fraud_hours = [row["event_hour"].strftime("%H:%M") for row in data.fraud_by_hour]
    sections = [
        (
            "fraud-over-time",
            "Fraud over time",
            column_chart(
                "chart-fraud-over-time",
                "Flagged transactions per hour",
                fraud_hours,
                {
                    "flagged": [row["flagged"] for row in data.fraud_by_hour],
                    "velocity / card testing": [row["velocity"] for row in data.fraud_by_hour],
                    "blocked": [row["blocked"] for row in data.fraud_by_hour],
                },
                [BAR_COLOR, "#e67e22", ALERT_COLOR],
            )
            + table_html(
                data.daily_fraud,
                ["dt", "flagged_transactions", "flagged_users", "block_card", "require_3ds", "manual_review"],
            ),
        ),
        (
            "merchant-leaderboard",
            "Merchant leaderboard (gross volume, last 30 days)",
            hbar_chart(
                "chart-merchant-leaderboard",
                "Merchant leaderboard",
                [f"#{row['volume_rank']} {row['merchant_name'] or row['merchant_id']}" for row in data.leaderboard],
                [row["gross_volume"] for row in data.leaderboard],
            )
            + table_html(
                data.leaderboard,
                ["volume_rank", "merchant_id", "transactions", "approval_rate", "chargeback_ratio", "anomaly_days"],
            ),
        ),
        (
            "reconciliation-breaks",
            "Reconciliation breaks by type",
            hbar_chart(
                "chart-reconciliation-breaks",
                "Reconciliation breaks",
                [row["match_status"] for row in data.breaks],
                [row["breaks"] for row in data.breaks],
                ALERT_COLOR,
            ),
        ),
        (
            "settlement-forecast",
            "Settlement forecast (net payouts per date and currency)",
            hbar_chart(
                "chart-settlement-forecast",
                "Settlement forecast",
                [f"{row['expected_payout_date']} {row['currency']}" for row in data.forecast],
                [row["net_amount"] for row in data.forecast],
            ),
        ),
        (
            "pipeline-health",
            "Pipeline health",
            hbar_chart(
                "chart-pipeline-health",
                "Records in per stage",
                [row["stage"] for row in data.ops],
                [row["records_in"] for row in data.ops],
            )
            + table_html(data.ops)
            + "<h3>Deduplication effectiveness</h3>"
            + table_html(data.dedup),
        ),
    ]
    body = "".join(
        f'<section id="{section_id}"><h2>{html.escape(heading)}</h2>{content}</section>'
        for section_id, heading, content in sections
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)}</p>{body}"
        # Marks the page as rendered; the browser test reads it.
        "<script>document.body.dataset.charts = document.querySelectorAll('svg.chart').length;</script>"
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
