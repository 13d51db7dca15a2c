"""Per-micro-batch operational metrics of the stream, from a ``StreamingQueryListener``.

Written under ``<lake.metrics_uri>/stream/<query_name>/``:

* ``batches/dt=<YYYY-MM-DD>/hour=<HH>/batch-<batchId:012d>.json`` -- one JSON object
  (one line) per completed micro-batch; the ops index reads these;
* ``latest.json`` -- the same object for the newest batch, overwritten each time; the
  Airflow stream supervisor reads it to check liveness (``committed_at``) and lag.

Fields of one record (format_version 1)::

    format_version, query_name, query_id, run_id, batch_id,
    committed_at            ISO-8601 UTC, when the batch finished (progress timestamp + duration)
    input_rows, input_rows_per_second, processed_rows_per_second, batch_duration_ms,
    duration_ms             {addBatch, getBatch, latestOffset, queryPlanning, triggerExecution, walCommit}
    watermark               ISO-8601 event-time watermark (produce time of the stream)
    state_rows_total, state_memory_bytes, state_rows_dropped_by_watermark,
    duplicates_dropped      transaction duplicates removed (numDroppedDuplicateRows of the dedup operator)
    state_operators         [{name, rows_total, memory_bytes, rows_dropped_by_watermark}]
    sources                 [{description, start_offset, end_offset, input_rows}]
    lag                     {"<topic>": {"<partition>": records behind the broker's end}}
    lag_total

In the ``aws`` profile :class:`CloudWatchPublisher` also puts the headline numbers as
CloudWatch metrics (namespace ``Payments/StreamIndex``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable

from pyspark.sql.streaming import StreamingQueryListener

from spark_apps import lake

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


def progress_record(progress: dict, lag: dict[str, dict[str, int]] | None = None) -> dict:
    """The metrics record of one ``StreamingQueryProgress`` (as its JSON dict)."""
    started = dt.datetime.fromisoformat(progress["timestamp"].replace("Z", "+00:00"))
    durations = progress.get("durationMs") or {}
    total_ms = int(durations.get("triggerExecution", 0))
    operators = progress.get("stateOperators") or []
    lag = lag or {}
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
        # The plan holds one copy of the transaction dedup per branch (index and signal join);
        # each sees the same rows, so the largest count is the number of duplicates.
        "duplicates_dropped": max([(op.get("customMetrics") or {}).get("numDroppedDuplicateRows", 0) for op in operators] or [0]),
        "state_operators": [
            {
                "name": op.get("operatorName"),
                "rows_total": op.get("numRowsTotal", 0),
                "memory_bytes": op.get("memoryUsedBytes", 0),
                "rows_dropped_by_watermark": op.get("numRowsDroppedByWatermark", 0),
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
        "lag_total": sum(v for parts in lag.values() for v in parts.values()),
    }


def consumed_offsets(progress: dict) -> dict[tuple[str, int], int]:
    """The end offsets of every source of the batch, per (topic, partition)."""
    consumed: dict[tuple[str, int], int] = {}
    for source in progress.get("sources") or []:
        for topic, parts in _offsets(source.get("endOffset")).items():
            if isinstance(parts, dict):
                for partition, offset in parts.items():
                    consumed[(topic, int(partition))] = int(offset)
    return consumed


class BrokerLag:
    """Records behind the broker's end per partition, using the source's end-offset probe."""

    def __init__(self, kafka_options) -> None:
        self.options = kafka_options
        self._probe = None

    def __call__(self, consumed: dict[tuple[str, int], int]) -> dict[str, dict[str, int]]:
        from spark_apps.kafka.source import EndOffsetProbe

        if not consumed:
            return {}
        if self._probe is None:
            self._probe = EndOffsetProbe(self.options.consumer())
        ends = self._probe.end_offsets(sorted(consumed))
        lag: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(consumed.items()):
            lag.setdefault(topic, {})[str(partition)] = max(0, ends.get((topic, partition), offset) - offset)
        return lag


def metrics_location(metrics_uri: str, query_name: str) -> str:
    return f"{metrics_uri.rstrip('/')}/stream/{query_name}"


class MetricsListener(StreamingQueryListener):
    """Writes :func:`progress_record` per micro-batch; never fails the query (errors are logged)."""

    def __init__(self, metrics_uri: str, query_name: str, lag: Callable[[dict], dict] | None = None, publishers=()) -> None:
        self.location = metrics_location(metrics_uri, query_name)
        self.query_name = query_name
        self.lag = lag
        self.publishers = list(publishers)
        self.records_written = 0

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            progress = json.loads(event.progress.json)
            if progress.get("name") != self.query_name:
                return
            lag = self.lag(consumed_offsets(progress)) if self.lag else {}
            record = progress_record(progress, lag)
            self.write(record)
            for publish in self.publishers:
                publish(record)
        except Exception:
            log.exception("stream metrics: could not record batch progress")

    def write(self, record: dict) -> None:
        committed = record["committed_at"]
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        lake.write_text(
            f"{self.location}/batches/dt={committed[:10]}/hour={committed[11:13]}/batch-{int(record['batch_id']):012d}.json", line
        )
        lake.write_text(f"{self.location}/latest.json", line)
        self.records_written += 1


def read_latest(metrics_uri: str, query_name: str) -> dict | None:
    """The newest batch record (for the supervisor), or None if the stream has not committed one."""
    try:
        return json.loads(lake.read_text(f"{metrics_location(metrics_uri, query_name)}/latest.json"))
    except (FileNotFoundError, OSError):
        return None


class CloudWatchPublisher:
    """Puts the headline numbers of each record as CloudWatch metrics (aws profile)."""

    NAMESPACE = "Payments/StreamIndex"

    def __init__(self, region: str, client=None) -> None:
        import boto3

        self.client = client or boto3.client("cloudwatch", region_name=region)

    def __call__(self, record: dict) -> None:
        dimensions = [{"Name": "Query", "Value": str(record["query_name"])}]
        values = {
            "InputRowsPerSecond": (record["input_rows_per_second"], "Count/Second"),
            "ProcessedRowsPerSecond": (record["processed_rows_per_second"], "Count/Second"),
            "BatchDurationMs": (record["batch_duration_ms"], "Milliseconds"),
            "StateRows": (record["state_rows_total"], "Count"),
            "StateMemoryBytes": (record["state_memory_bytes"], "Bytes"),
            "LagRecords": (record["lag_total"], "Count"),
            "DuplicatesDropped": (record["duplicates_dropped"], "Count"),
        }
        self.client.put_metric_data(
            Namespace=self.NAMESPACE,
            MetricData=[
                {"MetricName": name, "Dimensions": dimensions, "Value": float(v), "Unit": unit}
                for name, (v, unit) in values.items()
            ],
        )
