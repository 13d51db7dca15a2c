"""Progress output of the main job (scripts/local_run.py), drawn with ``rich``.

On a terminal: a spinner with the elapsed time while a stage runs, live bars with counts,
rates and time left while the day is streamed into Kafka and while the stream app catches
up, and a live table of the DAG run's tasks (state, tries, duration) while a DAG runs.
When stdout is not a terminal (CI logs, a test capturing the output), or with
``PAYMENTS_PROGRESS=plain``: plain lines instead, the stream figures every
``--progress-seconds`` and one line per task state change.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

STATE_STYLES = {
    "success": "green",
    "failed": "bold red",
    "upstream_failed": "red",
    "running": "cyan",
    "deferred": "magenta",
    "queued": "blue",
    "scheduled": "blue",
    "up_for_retry": "yellow",
    "skipped": "dim",
}


def make_console() -> Console:
    return Console(highlight=False)


def is_live(console: Console) -> bool:
    """Live displays only on a real terminal and unless ``PAYMENTS_PROGRESS=plain``."""
    return console.is_terminal and not console.is_dumb_terminal and os.environ.get("PAYMENTS_PROGRESS") != "plain"


def say(console: Console, text: str) -> None:
    console.print(f"[run] {text}", markup=False, highlight=False, soft_wrap=True)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


# --------------------------------------------------------------------------- a running stage


class Activity:
    """A spinner and the elapsed time while one stage runs (nothing extra in plain mode)."""

    def __init__(self, console: Console, text: str) -> None:
        self._progress = None
        if is_live(console):
            self._progress = Progress(
                SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True
            )
            self._progress.add_task(text, total=None)

    def __enter__(self) -> Activity:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


# --------------------------------------------------------------------------- streaming


@dataclass
class StreamFigures:
    """What the main job measures while it streams (all for this run's own records)."""

    sent: int = 0
    to_send: int | None = None  # the events this run sends (once sending is over: those it sent)
    consumed: int = 0
    micro_batches: int = 0
    lag: int | str = "-"
    alerts: int = 0
    latency: dict = field(default_factory=dict)

    def line(self) -> str:
        lat = self.latency
        return (
            f"micro-batches {self.micro_batches:>4} | lag {self.lag!s:>6} | alerts {self.alerts:>5,} "
            f"| stream rows {lat.get('rows', 0):>7,} | latency p50 {lat.get('p50_ms')} ms p99 {lat.get('p99_ms')} ms "
            f"(after the first batch: {lat.get('steady_p50_ms')} / {lat.get('steady_p99_ms')} ms)"
        )


class RateColumn(ProgressColumn):
    """Events per second (rich's own speed estimate over the last 30 s)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} ev/s" if speed else "- ev/s", style="progress.data.speed")


class _BarsAndFigures(Progress):
    """The bars, then a line of stream figures under them."""

    figures = ""

    def get_renderables(self):
        yield Group(self.make_tasks_table(self.tasks), Text(self.figures, style="dim"))


class StreamProgress:
    """Two bars, events sent to Kafka and events the stream app consumed, with counts, rate
    and time left, and the stream figures; in plain mode a line every ``every_s`` seconds."""

    def __init__(self, console: Console, to_send: int | None, every_s: float) -> None:
        self._console, self._every_s, self._next_line = console, every_s, time.monotonic() + every_s
        self._bars = None
        if is_live(console):
            self._bars = _BarsAndFigures(
                TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                RateColumn(), TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(), TextColumn("left"),
                console=console,
            )  # fmt: skip
            self._sent = self._bars.add_task("sent to Kafka", total=to_send)
            self._consumed = self._bars.add_task("consumed by the app", total=to_send)

    def __enter__(self) -> StreamProgress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.stop()

    def update(self, figures: StreamFigures, force_line: bool = False) -> None:
        if self._bars is not None:
            self._bars.update(self._sent, completed=figures.sent, total=figures.to_send)
            self._bars.update(self._consumed, completed=figures.consumed, total=figures.to_send)
            self._bars.figures = figures.line()
            return
        if force_line or time.monotonic() >= self._next_line:
            self._next_line = time.monotonic() + self._every_s
            say(self._console, f"  sent {figures.sent:>7,} | consumed {figures.consumed:>7,} | {figures.line()}")


# --------------------------------------------------------------------------- a DAG run


@dataclass(frozen=True)
class TaskState:
    """One task of a DAG run; a mapped task sums up its instances (``done`` of ``instances``)."""

    task_id: str
    state: str | None
    try_number: int = 0
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    instances: int = 1
    done: int = 0

    def seconds(self, now: dt.datetime) -> float | None:
        if self.start is None:
            return None
        return ((self.end or now) - self.start).total_seconds()

    def label(self) -> str:
        state = self.state or "waiting"
        return f"{state} ({self.done}/{self.instances})" if self.instances > 1 else state


class DagProgress:
    """The DAG run's tasks in DAG order: a live table on a terminal (state, try, duration),
    else a line each time a task changes state."""

    def __init__(self, console: Console, dag_id: str, task_ids: list[str]) -> None:
        self._console, self._dag_id, self._task_ids = console, dag_id, task_ids
        self._seen: dict[str, str] = {}
        self._started = time.monotonic()
        self._live = Live(self._table(None, {}), console=console, refresh_per_second=2) if is_live(console) else None

    def __enter__(self) -> DagProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, run_state: str | None, tasks: dict[str, TaskState]) -> None:
        if self._live is not None:
            self._live.update(self._table(run_state, tasks))
            return
        now = dt.datetime.now(dt.UTC)
        for task_id in self._task_ids:
            task = tasks.get(task_id)
            if task is None or task.state is None or self._seen.get(task_id) == task.label():
                continue
            self._seen[task_id] = task.label()
            took = f" after {duration(task.seconds(now))}" if task.end is not None else ""
            say(self._console, f"  {self._dag_id}.{task_id}: {task.label()}{took}")

    def _table(self, run_state: str | None, tasks: dict[str, TaskState]) -> Table:
        now = dt.datetime.now(dt.UTC)
        elapsed = duration(time.monotonic() - self._started)
        table = Table(title=f"{self._dag_id}: {run_state or 'starting'} · {elapsed}", title_justify="left", expand=False)
        for column in ("task", "state", "try", "duration"):
            table.add_column(column, justify="right" if column in ("try", "duration") else "left")
        for task_id in self._task_ids:
            task = tasks.get(task_id, TaskState(task_id, None))
            style = STATE_STYLES.get(task.state or "", "dim")
            table.add_row(task_id, Text(task.label(), style=style), str(task.try_number or ""), duration(task.seconds(now)))
        return table
