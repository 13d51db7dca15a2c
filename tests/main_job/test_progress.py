"""devtools.progress: the main job's live displays on a terminal and plain lines otherwise."""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from devtools.progress import DagProgress, StreamFigures, StreamProgress, TaskState, is_live

T0 = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200, color_system=None), out


def figures(sent: int, consumed: int) -> StreamFigures:
    latency = {"rows": consumed, "p50_ms": 900, "p99_ms": 2100, "steady_p50_ms": 800, "steady_p99_ms": 1500}
    return StreamFigures(sent=sent, to_send=1000, consumed=consumed, micro_batches=3, lag=12, alerts=4, latency=latency)


def test_live_only_on_a_terminal_and_unless_plain_is_asked_for(monkeypatch):
    monkeypatch.delenv("PAYMENTS_PROGRESS", raising=False)
    assert is_live(console(True)[0]) and not is_live(console(False)[0])
    monkeypatch.setenv("PAYMENTS_PROGRESS", "plain")
    assert not is_live(console(True)[0])


def test_stream_progress_on_a_terminal_draws_bars_with_counts_and_the_figures(monkeypatch):
    monkeypatch.delenv("PAYMENTS_PROGRESS", raising=False)
    term, out = console(True)
    with StreamProgress(term, to_send=1000, every_s=15) as view:
        view.update(figures(sent=500, consumed=250))
    text = out.getvalue()
    assert "sent to Kafka" in text and "500/1000" in text
    assert "consumed by the app" in text and "250/1000" in text
    assert "ev/s" in text and "━" in text  # a rate column and a bar
    assert "micro-batches    3 | lag     12 | alerts     4" in text and "latency p50 900 ms p99 2100 ms" in text


def test_stream_progress_without_a_terminal_prints_a_line_every_interval(monkeypatch):
    plain, out = console(False)
    clock = iter([0.0, 1.0, 16.0, 17.0, 18.0, 100.0]).__next__
    monkeypatch.setattr("devtools.progress.time.monotonic", clock)
    view = StreamProgress(plain, to_send=1000, every_s=15)  # reads 0.0: first line due at 15
    with view:
        view.update(figures(100, 0))  # 1.0: not yet
        view.update(figures(600, 300))  # 16.0: a line, next due at 32
        view.update(figures(700, 400))  # 18.0 is read after 17.0: not yet
        view.update(figures(1000, 1000), force_line=True)
    lines = out.getvalue().splitlines()
    assert [line.split(" | ")[:2] for line in lines] == [
        ["[run]   sent     600", "consumed     300"],
        ["[run]   sent   1,000", "consumed   1,000"],
    ]
    assert "\x1b" not in out.getvalue()  # no terminal codes in CI logs


def task(task_id: str, state: str | None, seconds: float | None = None, instances: int = 1, done: int = 0) -> TaskState:
    end = T0 + dt.timedelta(seconds=seconds) if seconds is not None else None
    return TaskState(task_id, state, 1, T0 if state else None, end, instances, done)


def test_dag_progress_without_a_terminal_prints_each_state_change_once_in_dag_order():
    plain, out = console(False)
    order = ["plan_run", "batch.build", "business.build"]
    with DagProgress(plain, "payments_daily_index", order) as view:
        view.update("running", {"plan_run": task("plan_run", "running"), "batch.build": task("batch.build", None)})
        view.update("running", {"plan_run": task("plan_run", "running"), "batch.build": task("batch.build", None)})
        view.update(
            "running",
            {
                "business.build": task("business.build", "running", instances=3, done=1),
                "plan_run": task("plan_run", "success", 2),
                "batch.build": task("batch.build", "running"),
            },
        )
        view.update("success", {"business.build": task("business.build", "success", 95, instances=3, done=3)})
    assert out.getvalue().splitlines() == [
        "[run]   payments_daily_index.plan_run: running",
        "[run]   payments_daily_index.plan_run: success after 2s",
        "[run]   payments_daily_index.batch.build: running",
        "[run]   payments_daily_index.business.build: running (1/3)",
        "[run]   payments_daily_index.business.build: success (3/3) after 1m35s",
    ]


def test_dag_progress_on_a_terminal_is_a_table_of_every_task_with_state_and_duration(monkeypatch):
    monkeypatch.delenv("PAYMENTS_PROGRESS", raising=False)
    term, out = console(True)
    order = ["plan_run", "batch.build", "batch.publish"]
    with DagProgress(term, "payments_daily_index", order) as view:
        view.update("running", {"plan_run": task("plan_run", "success", 3), "batch.build": task("batch.build", "failed", 75)})
    rows = [line for line in out.getvalue().splitlines() if "│" in line]
    cells = [[cell.strip() for cell in row.strip()[1:-1].split("│")] for row in rows]
    assert ["plan_run", "success", "1", "3s"] in cells
    assert ["batch.build", "failed", "1", "1m15s"] in cells
    assert ["batch.publish", "waiting", "", ""] in cells  # known from the DAG before it has an instance
    assert "payments_daily_index: running" in out.getvalue()
