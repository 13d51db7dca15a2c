"""Per-micro-batch operational metrics of the stream, from a ``StreamingQueryListener``.

Written under ``<lake.metrics_uri>/stream/<query_name>/``:

* ``batches/dt=<YYYY-MM-DD>/hour=<HH>/batch-<batchId:012d>.json`` -- one JSON object
  (one line) per completed micro-batch; the ops index reads these;
* ``latest.json`` -- the same object for the newest batch, overwritten each time; the
  Airflow stream supervisor reads it to check liveness (``committed_at``) and lag;
* ``heartbeat.json`` -- written on Spark's idle events (about every 10 s while no new
  record arrives): ``{query_name, query_id, heartbeat_at, lag (empty), lag_total (0),
  newest_produced_at}``, so the supervisor tells a running app on silent topics from a
  dead one (it judges liveness by the newer of ``committed_at`` and ``heartbeat_at``).

Fields of one record (format_version 1)::

    format_version, query_name, query_id, run_id, batch_id,
    committed_at            ISO-8601 UTC, when the batch finished (progress timestamp + duration)
    input_rows, input_rows_per_second, processed_rows_per_second, batch_duration_ms,
    duration_ms             {addBatch, getBatch, latestOffset, queryPlanning, triggerExecution, walCommit}
    watermark               ISO-8601 event-time watermark (produce time of the stream)
    state_rows_total, state_memory_bytes, state_rows_dropped_by_watermark,
    duplicates_dropped      transaction duplicates removed (rows the dedup pass marked, counted by the writer; null if unknown)
    index_rows              transactions the batch indexed (null if unknown)
    signals_unmatched       ML outputs whose transaction did not arrive within the signal window
    state_operators         [{name, rows_total, memory_bytes, rows_dropped_by_watermark, rows_removed,
                            updates_ms, removals_ms, commit_ms}] (the times summed over the operator's
                            tasks; removals include the watermark eviction's scan of the state)
    sources                 [{description, start_offset, end_offset, input_rows}]
    lag                     {"<topic>": {max, avg, partitions, total}}: records behind the broker's end, from
                            the Kafka source's own progress metrics (avg/maxOffsetsBehindLatest)
    lag_total               sum of the topics' totals
    newest_produced_at      ISO-8601 Kafka produce time of the newest record the query has consumed
                            (max of this batch's produce times, else the previous record's value)
    records_read            Kafka records the batch consumed (from the offset ranges; input_rows counts
                            a record once per scan of its source in the plan)
    dead_letters            records of the batch sent to the dead-letter topic (null if unknown)
    quarantine_rate         dead_letters / records_read (null for an empty batch)
    conservation            the batch's own count of where its records went (:func:`conservation_record`;
                            null without the writer's counts or the input topics' names):
                            {transactions_read, signals_read, indexed, duplicates,
                            dead_letters_transactions, dead_letters_signals, signals_paired,
                            signals_unmatched, dropped_by_watermark, transactions_unaccounted,
                            signals_unresolved, conserved}

In the ``aws`` profile :class:`spark_apps.streaming.cloudwatch.CloudWatchPublisher` puts exactly the metrics the on-call
alarms of ``infra/terraform/modules/alerting`` read (:data:`CLOUDWATCH_METRICS`, namespace
:data:`CLOUDWATCH_NAMESPACE`, no dimensions; the job role may only write that namespace):

    FreshnessSeconds  Seconds  now - newest_produced_at (grows while nothing new is consumed)
    ConsumerLag       Count    lag_total
    QuarantineRate    None     quarantine_rate (only for batches with input)
    ConservationViolations  Count  1 for a batch whose conservation does not hold, else 0 (batches only)

It is called per micro-batch and, while the query is idle, on Spark's idle events
(about every 10 s), so a running app never leaves the freshness alarm without data.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from types import SimpleNamespace

from pyspark.sql.streaming import StreamingQueryListener

from payments_contract import STREAM_HEARTBEAT_FILE, STREAM_LATEST_FILE, stream_batch_record_location, stream_metrics_location
from spark_apps import lake
from spark_apps.streaming.cloudwatch import parse_iso

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


def _offsets(text) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def progress_record(
    progress: dict,
    dead_letters: int | None = None,
    newest_produced_at: str | None = None,
    stats: dict | None = None,
    input_topics: dict[str, str] | None = None,
) -> dict:
    """The metrics record of one ``StreamingQueryProgress`` (as its JSON dict).

    ``dead_letters``: the batch's dead-letter count (from the batch writer); ``stats``: the
    writer's counts of the batch's rows by kind (``index_rows``, ``duplicates``, ...);
    ``newest_produced_at``: the previous record's value, kept when this batch read nothing;
    ``input_topics``: ``{"transactions": topic, "signals": topic}``, for the conservation record.
    """
    started = dt.datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
    durations = progress.get("durationMs") or {}
    total_ms = int(durations.get("triggerExecution", 0))
    operators = progress.get("stateOperators") or []
    lag = source_lag(progress)
    return {
        "format_version": FORMAT_VERSION,
        "query_name": progress.get("name"),
        "query_id": progress.get("id"),
        "run_id": progress.get("runId"),
        "batch_id": progress.get("batchId"),
        "committed_at": (started + dt.timedelta(milliseconds=total_ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "input_rows": progress.get("numInputRows", 0),
        "input_rows_per_second": progress.get("inputRowsPerSecond") or 0.0,
        "processed_rows_per_second": progress.get("processedRowsPerSecond") or 0.0,
        "batch_duration_ms": total_ms,
        "duration_ms": durations,
        "watermark": (progress.get("eventTime") or {}).get("watermark"),
        "state_rows_total": sum(op.get("numRowsTotal", 0) for op in operators),
        "state_memory_bytes": sum(op.get("memoryUsedBytes", 0) for op in operators),
        "state_rows_dropped_by_watermark": sum(op.get("numRowsDroppedByWatermark", 0) for op in operators),
        # Counted by the batch writer: the rows the dedup pass marked ``duplicate`` (measured, not derived).
        "duplicates_dropped": (stats or {}).get("duplicates"),
        "index_rows": (stats or {}).get("index_rows"),
        "signals_unmatched": (stats or {}).get("signals_unmatched"),
        "state_operators": [
            {
                "name": op.get("operatorName"),
                "rows_total": op.get("numRowsTotal", 0),
                "memory_bytes": op.get("memoryUsedBytes", 0),
                "rows_dropped_by_watermark": op.get("numRowsDroppedByWatermark", 0),
                "rows_removed": op.get("numRowsRemoved", 0),
                "updates_ms": op.get("allUpdatesTimeMs", 0),
                "removals_ms": op.get("allRemovalsTimeMs", 0),
                "commit_ms": op.get("commitTimeMs", 0),
            }
            for op in operators
        ],
        "sources": [
            {
                "description": source.get("description"),
                "start_offset": _offsets(source.get("startOffset")),
                "end_offset": _offsets(source.get("endOffset")),
                "input_rows": source.get("numInputRows", 0),
            }
            for source in progress.get("sources") or []
        ],
        "lag": lag,
        "lag_total": sum(int(topic["total"]) for topic in lag.values()),
        "newest_produced_at": _newest(progress, newest_produced_at),
        "records_read": records_read(progress),
        "dead_letters": dead_letters,
        "quarantine_rate": _rate(dead_letters, records_read(progress)),
        "conservation": conservation_record(progress, stats, input_topics),
    }


def rows_read_by_topic(progress: dict) -> dict[str, int]:
    """Records the batch read per topic: each source's ``numInputRows`` (the rows its scan returned;
    this job's plan scans each topic once, tests/streaming/test_stream_index.py asserts it), or, for a
    source of several topics, its offset ranges."""
    read: dict[str, int] = {}
    for source in progress.get("sources") or []:
        start, end = _offsets(source.get("startOffset")), _offsets(source.get("endOffset"))
        topics = [topic for topic, parts in end.items() if isinstance(parts, dict)]
        if len(topics) == 1:
            read[topics[0]] = read.get(topics[0], 0) + int(source.get("numInputRows") or 0)
            continue
        for topic in topics:
            before = start.get(topic) if isinstance(start.get(topic), dict) else {}
            delta = sum(max(0, int(offset) - int(before.get(p, 0))) for p, offset in end[topic].items())
            read[topic] = read.get(topic, 0) + delta
    return read


def conservation_record(progress: dict, stats: dict | None, input_topics: dict[str, str] | None) -> dict | None:
    """Where the batch's records went, counted, and whether that adds up (docs/streaming.md).

    Every record of the transactions topic leaves the batch as exactly one row (``txn``,
    ``duplicate`` or a dead letter) unless the watermark dropped it, so per batch::

        transactions_read = indexed + duplicates + dead_letters_transactions + (dropped by the watermark)

    Spark counts the rows its stateful operators dropped under the watermark for both topics
    together (``dropped_by_watermark``), so ``transactions_unaccounted`` (read - indexed -
    duplicates - dead letters) must lie in [0, dropped_by_watermark]; anything else is a lost or
    invented row: ``conserved`` is false. ML outputs have no exact per-batch identity: one that
    arrives before its transaction waits in the pairing operator's state (emitted in a later batch,
    or folded into its transaction's row), and the operator's state holds no count of them; so
    ``signals_unresolved`` (signals read - their dead letters - ``signal`` rows - ``signal_unmatched``
    rows) is recorded, not checked (it is negative when waiting outputs resolve). Dead letters of the
    signals topic must not exceed its records. None without the writer's counts or the topics."""
    if not stats or not input_topics or stats.get("index_rows") is None:
        return None
    transactions_topic, signals_topic = input_topics.get("transactions"), input_topics.get("signals")
    read = rows_read_by_topic(progress)
    dead = dict(stats.get("dead_letters_by_topic") or {})
    transactions_read, signals_read = read.get(transactions_topic, 0), read.get(signals_topic, 0)
    dead_transactions, dead_signals = dead.pop(transactions_topic, 0), dead.pop(signals_topic, 0)
    dropped = sum(op.get("numRowsDroppedByWatermark", 0) for op in progress.get("stateOperators") or [])
    indexed, duplicates = int(stats["index_rows"]), int(stats.get("duplicates") or 0)
    paired, unmatched = int(stats.get("signals_paired") or 0), int(stats.get("signals_unmatched") or 0)
    unaccounted = transactions_read - indexed - duplicates - dead_transactions
    return {
        "transactions_read": transactions_read,
        "signals_read": signals_read,
        "indexed": indexed,
        "duplicates": duplicates,
        "dead_letters_transactions": dead_transactions,
        "dead_letters_signals": dead_signals,
        "dead_letters_other": sum(dead.values()),  # from neither input topic: never expected
        "signals_paired": paired,
        "signals_unmatched": unmatched,
        "dropped_by_watermark": dropped,
        "transactions_unaccounted": unaccounted,
        "signals_unresolved": signals_read - dead_signals - paired - unmatched,
        "conserved": 0 <= unaccounted <= dropped and dead_signals <= signals_read and not dead,
    }


def records_read(progress: dict) -> int:
    """Kafka records the batch consumed, from each source's offset range (``numInputRows`` counts a
    record once per scan of its source in the plan: once per topic in this job's plan since each
    topic is read once, but not for every plan)."""
    total = 0
    for source in progress.get("sources") or []:
        start, end = _offsets(source.get("startOffset")), _offsets(source.get("endOffset"))
        for topic, parts in end.items():
            if not isinstance(parts, dict):
                continue
            before = start.get(topic) if isinstance(start.get(topic), dict) else {}
            total += sum(max(0, int(offset) - int(before.get(partition, 0))) for partition, offset in parts.items())
    return total


def _newest(progress: dict, previous: str | None) -> str | None:
    """The newest produce time consumed so far: this batch's event-time max (the watermark
    columns are Kafka produce times) or the previous value, whichever is later."""
    candidates = [t for t in (parse_iso((progress.get("eventTime") or {}).get("max")), parse_iso(previous)) if t]
    return _iso(max(candidates)) if candidates else None


def _rate(dead_letters: int | None, input_rows) -> float | None:
    if dead_letters is None or not input_rows:
        return None
    return min(1.0, dead_letters / float(input_rows))


def consumed_offsets(progress: dict) -> dict[tuple[str, int], int]:
    """The end offsets of every source of the batch, per (topic, partition)."""
    consumed: dict[tuple[str, int], int] = {}
    for source in progress.get("sources") or []:
        for topic, parts in _offsets(source.get("endOffset")).items():
            if isinstance(parts, dict):
                for partition, offset in parts.items():
                    consumed[(topic, int(partition))] = int(offset)
    return consumed


def source_lag(progress: dict) -> dict[str, dict[str, float | int]]:
    """Records behind the broker's end per input topic, from Spark's Kafka source itself: each
    source reports ``avgOffsetsBehindLatest`` / ``maxOffsetsBehindLatest`` over its partitions
    against the latest offsets it fetched for the batch. ``total`` = avg x partitions."""
    lag: dict[str, dict[str, float | int]] = {}
    for source in progress.get("sources") or []:
        metrics = source.get("metrics") or {}
        if "avgOffsetsBehindLatest" not in metrics:
            continue
        end = _offsets(source.get("endOffset"))
        for topic, parts in end.items():
            partitions = len(parts) if isinstance(parts, dict) else 0
            average = float(metrics["avgOffsetsBehindLatest"])
            lag[topic] = {
                "max": int(float(metrics.get("maxOffsetsBehindLatest", 0))),
                "avg": average,
                "partitions": partitions,
                "total": round(average * partitions),
            }
    return lag


def metrics_location(metrics_uri: str, query_name: str) -> str:
    return stream_metrics_location(metrics_uri, query_name)


class JsonEventsBridge:
    """The JVM side of :class:`MetricsListener` (a Py4J proxy of Spark's Python listener interface)
    that hands each event over as the few fields the listener reads: the progress as its JSON text
    (one call), the ids and times as text. PySpark's own bridge converts every progress field by a
    JVM round trip (~100 per event, each a reflective name lookup over every jar on the classpath:
    measured 8.7% of the stream job's CPU at 1,000 msg/s)."""

    def __init__(self, listener) -> None:
        self.listener = listener

    def onQueryStarted(self, jevent) -> None:
        self.listener.onQueryStarted(SimpleNamespace(id=jevent.id().toString(), name=jevent.name()))

    def onQueryProgress(self, jevent) -> None:
        self.listener.onQueryProgress(SimpleNamespace(progress=SimpleNamespace(json=jevent.progress().json())))

    def onQueryIdle(self, jevent) -> None:
        self.listener.onQueryIdle(SimpleNamespace(id=jevent.id().toString(), timestamp=jevent.timestamp()))

    def onQueryTerminated(self, jevent) -> None:
        self.listener.onQueryTerminated(SimpleNamespace(id=jevent.id().toString()))

    class Java:
        implements = ["org.apache.spark.sql.streaming.PythonStreamingQueryListener"]


class MetricsListener(StreamingQueryListener):
    """Writes :func:`progress_record` per micro-batch; never fails the query (errors are logged).
    Registered with ``spark.streams.addListener``; its events come through :class:`JsonEventsBridge`."""

    @property
    def _jlistener(self):
        from pyspark import SparkContext

        if not hasattr(self, "_jlistenerobj"):
            self._jlistenerobj = SparkContext._jvm.PythonStreamingQueryListenerWrapper(JsonEventsBridge(self))
        return self._jlistenerobj

    def __init__(
        self,
        metrics_uri: str,
        query_name: str,
        publishers=(),
        batch_stats: Callable[[int], dict | None] | None = None,
        input_topics: dict[str, str] | None = None,
    ) -> None:
        self.metrics_uri, self.query_name = metrics_uri, query_name
        self.location = metrics_location(metrics_uri, query_name)
        self.input_topics = input_topics
        self.query_name = query_name
        self.publishers = list(publishers)
        self.batch_stats = batch_stats
        self.records_written = 0
        self.query_id: str | None = None
        self.last_record: dict | None = None

    def onQueryStarted(self, event) -> None:
        if getattr(event, "name", None) == self.query_name:
            self.query_id = str(event.id)

    def onQueryIdle(self, event) -> None:
        """No new data: write heartbeat.json and publish a heartbeat (freshness keeps growing). Idle
        means the source found nothing past the committed offsets: no lag."""
        try:
            if self.query_id is None or str(event.id) != self.query_id:
                return
            record = {
                "query_name": self.query_name,
                "query_id": self.query_id,
                "heartbeat_at": _utc_iso(getattr(event, "timestamp", None)),
                "input_rows": 0,
                "lag": {},
                "lag_total": 0,
                "newest_produced_at": (self.last_record or {}).get("newest_produced_at"),
                "dead_letters": None,
                "quarantine_rate": None,
            }
            lake.write_text(f"{self.location}/{STREAM_HEARTBEAT_FILE}", json.dumps(record, sort_keys=True, default=str) + "\n")
            for publish in self.publishers:
                publish(record)
        except Exception:
            log.exception("stream metrics: could not publish the idle heartbeat")

    def onQueryTerminated(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            progress = json.loads(event.progress.json)
            if progress.get("name") != self.query_name:
                return
            stats = self.batch_stats(progress.get("batchId")) if self.batch_stats else None
            previous = (self.last_record or {}).get("newest_produced_at")
            record = progress_record(progress, (stats or {}).get("dead_letters"), previous, stats, self.input_topics)
            conservation = record["conservation"]
            if conservation is not None and not conservation["conserved"]:
                log.error("stream batch %s does not conserve its records: %s", record["batch_id"], conservation)
            self.last_record = record
            self.write(record)
            for publish in self.publishers:
                publish(record)
        except Exception:
            log.exception("stream metrics: could not record batch progress")

    def write(self, record: dict) -> None:
        committed = record["committed_at"]
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        lake.write_text(stream_batch_record_location(self.metrics_uri, self.query_name, committed, record["batch_id"]), line)
        lake.write_text(f"{self.location}/{STREAM_LATEST_FILE}", line)
        self.records_written += 1


def read_latest(metrics_uri: str, query_name: str) -> dict | None:
    """The newest batch record (for the supervisor), or None if the stream has not committed one."""
    try:
        return json.loads(lake.read_text(f"{metrics_location(metrics_uri, query_name)}/{STREAM_LATEST_FILE}"))
    except (FileNotFoundError, OSError):
        return None


def _utc_iso(timestamp: str | None) -> str:
    """Spark's event timestamp (ISO-8601, UTC) in the records' format; now if absent or unreadable."""
    try:
        moment = dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")) if timestamp else None
    except ValueError:
        moment = None
    moment = (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
