"""The micro-batch step (``foreachBatch``): write the stream index, send alerts and dead letters.

The streaming plan (spark_apps.streaming.transforms) has scored every row already; a
micro-batch is one Spark job (``toArrow`` of the batch's rows) and driver-side writes:

1. alerts (the ``alert`` message of every flagged ``txn`` or ``signal`` row: a transaction with a
   rule flag, a policy flag or an action other than ALLOW, or an earlier one whose ML output came
   now) are sent first with :class:`spark_apps.kafka.sink.BatchKafkaSink`: they are what the
   payment gateway waits for;
2. the ``txn`` rows are written with pyarrow under ``<index>/stream_index/dt=D/hour=H/`` as
   ``part-b<batch>-00000.parquet`` (:func:`commit_index_table`): staged, then every file of an
   earlier attempt of the same batch is deleted and the new one renamed in. A replayed batch
   (same offsets, same state, same batch timestamp, so the same rows) replaces its own files and
   never duplicates a transaction;
3. the dead letters (``dead_letter`` rows' messages) are sent.

Only after all of that returns does Spark commit the batch, so a crash anywhere in between
replays the whole batch. The batch's counts by row kind, and its dead letters per input topic,
are kept for the metrics listener, which checks the batch's conservation with them
(spark_apps.streaming.metrics.conservation_record; docs/streaming.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from payments_contract import STREAM_INDEX
from spark_apps import lake
from spark_apps.enrichment import fx_rate_lookup, merchant_risk_lookup
from spark_apps.readers import read_side_source
from spark_apps.schemas import FX_RATE_SCHEMA, MERCHANT_SCHEMA, POLICY_SCHEMA, STREAM_INDEX_SCHEMA
from spark_apps.sources import source_location
from spark_apps.streaming.transforms import (
    BATCH_TIME_PLACEHOLDER_JSON,
    ROW_DEAD_LETTER,
    ROW_DUPLICATE,
    ROW_KINDS,
    ROW_SIGNAL,
    ROW_SIGNAL_UNMATCHED,
    ROW_TXN,
)

log = logging.getLogger(__name__)
INDEX_TABLE = STREAM_INDEX
REFERENCE_SOURCES = {"fx_rates": FX_RATE_SCHEMA, "merchants": MERCHANT_SCHEMA, "policies": POLICY_SCHEMA}


# --- reference data ------------------------------------------------------------------------


def latest_reference_date(raw_uri: str, source: str, today: dt.date) -> str | None:
    """The newest ``dt=`` folder of a reference source at or before ``today``."""
    filesystem, path = lake._filesystem(f"{raw_uri.rstrip('/')}/{source}")
    from pyarrow import fs as pafs

    try:
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError:
        return None
    dates = sorted(
        info.base_name.removeprefix("dt=")
        for info in infos
        if info.base_name.startswith("dt=") and info.base_name[3:] <= today.isoformat()
    )
    return dates[-1] if dates else None


@dataclass
class ReferenceData:
    """Broadcast-sized reference tables for the streaming plan: the newest day of each source at or
    before today, materialized once: ``fx_rates`` as an :func:`fx_rate_lookup`, ``merchants`` as a
    :func:`merchant_risk_lookup`, ``policies`` as read. :meth:`stale` tells when a newer day has landed (the job then
    restarts the query with the new tables)."""

    spark: SparkSession
    raw_uri: str
    tables: dict[str, DataFrame] = field(default_factory=dict)
    dates: dict[str, str | None] = field(default_factory=dict)

    def load(self) -> dict[str, DataFrame]:
        today = dt.datetime.now(dt.UTC).date()
        tables = {}
        for name, schema in REFERENCE_SOURCES.items():
            date = latest_reference_date(self.raw_uri, name, today)
            if date is None:
                tables[name] = self.spark.createDataFrame([], schema)
            else:
                good_df, _bad = read_side_source(
                    self.spark, source_location(self.raw_uri, name, date), name, schema, "stream", dt.datetime.now(dt.UTC)
                )
                tables[name] = good_df
            self.dates[name] = date
        # The lookups the plan joins, aggregated and materialized once (one partition each): the
        # micro-batches then broadcast them without an aggregation, a shuffle or a file read.
        tables["fx_rates"] = fx_rate_lookup(tables["fx_rates"])
        tables["merchants"] = merchant_risk_lookup(tables["merchants"])
        tables = {name: table.coalesce(1).localCheckpoint() for name, table in tables.items()}
        for old in self.tables.values():
            old.unpersist()
        self.tables = tables
        log.info("reference data loaded: %s", self.dates)
        return tables

    def stale(self) -> bool:
        """A newer day of some source has landed since :meth:`load`."""
        today = dt.datetime.now(dt.UTC).date()
        return any(latest_reference_date(self.raw_uri, name, today) != date for name, date in self.dates.items())


# --- index commit ------------------------------------------------------------------------------


def commit_index_batch(index_df: DataFrame, index_uri: str, batch_id: int) -> int:
    """:func:`commit_index_table` of a DataFrame of index rows (with dt / hour columns)."""
    return commit_index_table(index_df.toArrow(), index_uri, batch_id)


def commit_index_table(table, index_uri: str, batch_id: int) -> int:
    """Write a batch's index rows (an Arrow table with ``dt`` / ``hour`` columns) as one
    ``dt=D/hour=H/part-b<batch>-00000.parquet`` per partition, replacing any earlier attempt's
    files of the batch. On a local file system each file is written to a staging folder first,
    then every ``part-b<batch>-*`` of the partition is deleted and the new file renamed in. On
    S3 each file is one PUT of its final key: an object appears whole or not at all, and a
    replay (the same rows, as Spark replays a batch from its offsets) replaces it. Returns the files."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    table_uri = lake.table_location(index_uri, INDEX_TABLE)
    filesystem, table_path = lake._filesystem(table_uri)
    staging = f"{table_path}/_staging/batch={batch_id}-{uuid.uuid4().hex[:8]}"
    prefix = f"part-b{int(batch_id):012d}-"
    columns = [c for c in table.column_names if c not in ("dt", "hour")]
    keys = sorted(set(zip(table.column("dt").to_pylist(), table.column("hour").to_pylist(), strict=True)))
    if lake.is_object_store(filesystem):
        for date, hour in keys:
            rows = table.filter(pc.and_(pc.equal(table.column("dt"), date), pc.equal(table.column("hour"), hour)))
            path = f"{table_path}/dt={date}/hour={hour}/{prefix}00000.parquet"
            pq.write_table(rows.select(columns), path, filesystem=filesystem, compression="snappy")
        return len(keys)
    staged = []
    for n, (date, hour) in enumerate(keys):
        rows = table.filter(pc.and_(pc.equal(table.column("dt"), date), pc.equal(table.column("hour"), hour)))
        path = f"{staging}/{n:05d}.parquet"
        filesystem.create_dir(staging, recursive=True)
        pq.write_table(rows.select(columns), path, filesystem=filesystem, compression="snappy")
        staged.append((f"dt={date}/hour={hour}", path))
    for partition, path in staged:  # remove what an earlier attempt of this batch left, then rename in
        target = f"{table_path}/{partition}"
        for info in filesystem.get_file_info(pafs.FileSelector(target, allow_not_found=True)):
            if info.base_name.startswith(prefix):
                filesystem.delete_file(info.path)
        filesystem.create_dir(target, recursive=True)
        filesystem.move(path, f"{target}/{prefix}00000.parquet")
    if staged:
        filesystem.delete_dir(staging)
    return len(staged)


# --- the foreachBatch function -------------------------------------------------------------------


@dataclass
class BatchOutcome:
    batch_id: int
    index_files: int
    alerts_sent: int
    dead_letters_sent: int


def batch_timestamp(checkpoint_location: str, batch_id: int) -> dt.datetime:
    """The micro-batch's timestamp as Spark recorded it in the offset log (``batchTimestampMs``),
    so a replayed batch gets the same one; now, if the log cannot be read."""
    try:
        metadata = json.loads(lake.read_text(f"{checkpoint_location.rstrip('/')}/offsets/{int(batch_id)}").splitlines()[1])
        return dt.datetime.fromtimestamp(int(metadata["batchTimestampMs"]) / 1000, dt.UTC)
    except (OSError, ValueError, KeyError, IndexError):
        log.warning("batch %s: no timestamp in the offset log, using the clock", batch_id)
        return dt.datetime.now(dt.UTC)


def json_time(moment: dt.datetime) -> str:
    """A timestamp as Spark's to_json writes it (UTC, milliseconds)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def split_output(table, batch_id: int, batch_time: dt.datetime | None = None) -> tuple:
    """(index rows as an Arrow table with ``version`` = ``stream-b<batch>`` and ``ingested_at`` = the
    batch's time, sorted alert (key, json), sorted dead-letter (key, json), rows per kind). The
    messages' ``alert_time`` / ``quarantined_at`` become the batch's time too (see
    transforms.BATCH_TIME_PLACEHOLDER)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    batch_time = batch_time or dt.datetime.now(dt.UTC)
    kind = table.column("row_kind")
    index = table.filter(pc.equal(kind, ROW_TXN)).select([*STREAM_INDEX_SCHEMA.fieldNames(), "dt", "hour"])
    version = pa.array([f"stream-b{batch_id}"] * index.num_rows, pa.string())
    index = index.set_column(index.schema.get_field_index("version"), "version", version)
    at = index.schema.get_field_index("ingested_at")
    ingested = pa.array([batch_time] * index.num_rows, index.schema.field(at).type)
    index = index.set_column(at, index.schema.field(at), ingested)
    alerts = table.filter(pc.is_valid(table.column("alert")))
    dead = table.filter(pc.equal(kind, ROW_DEAD_LETTER))
    placeholder, stamp = f'"{BATCH_TIME_PLACEHOLDER_JSON}"', f'"{json_time(batch_time)}"'

    def pairs(rows, key: str, value: str) -> list[tuple[str, str]]:
        texts = [text.replace(placeholder, stamp) for text in rows.column(value).to_pylist()]
        return sorted(zip(rows.column(key).to_pylist(), texts, strict=True))

    counts = dict.fromkeys(ROW_KINDS, 0)
    for value, count in zip(*pc.value_counts(kind).flatten(), strict=True):
        counts[value.as_py()] = count.as_py()
    return index, pairs(alerts, "transaction_id", "alert"), pairs(dead, "dead_letter_key", "dead_letter_message"), counts


def dead_letters_by_topic(table) -> dict[str, int]:
    """The batch's dead letters per input topic they were read from (the plan's ``dead_letter_topic``)."""
    import pyarrow.compute as pc

    if "dead_letter_topic" not in table.column_names:
        return {}
    dead = table.filter(pc.equal(table.column("row_kind"), ROW_DEAD_LETTER)).column("dead_letter_topic")
    return {(topic.as_py() or "unknown"): count.as_py() for topic, count in zip(*pc.value_counts(dead).flatten(), strict=True)}


class StreamIndexBatchWriter:
    """Callable for ``writeStream.foreachBatch``; see the module docstring."""

    def __init__(
        self, index_uri: str, sink, alerts_topic: str, dead_letter_topic: str, checkpoint_location: str | None = None
    ) -> None:
        self.index_uri = index_uri
        self.checkpoint_location = checkpoint_location
        self.sink = sink
        self.alerts_topic = alerts_topic
        self.dead_letter_topic = dead_letter_topic
        self.last_outcome: BatchOutcome | None = None
        self._stats: dict[int, dict] = {}  # batch id -> counts, for the metrics listener (newest 100)

    def stats(self, batch_id) -> dict | None:
        """Counts of a finished batch (``dead_letters``, ``index_rows``, ``duplicates``...), or None if unknown."""
        return None if batch_id is None else self._stats.get(int(batch_id))

    def _record_stats(self, batch_id: int, **counts) -> None:
        self._stats[int(batch_id)] = counts
        for old in [b for b in self._stats if b <= int(batch_id) - 100]:
            del self._stats[old]

    def close(self) -> None:
        self.sink.close()

    def __call__(self, batch_df: DataFrame, batch_id: int) -> None:
        marks = [("start", time.monotonic())]
        batch_time = batch_timestamp(self.checkpoint_location, batch_id) if self.checkpoint_location else None
        table = batch_df.toArrow()
        index, alerts, dead, counts = split_output(table, batch_id, batch_time)
        marks.append(("plan", time.monotonic()))
        # Alerts first: they are what the gateway waits for; the index rows become visible to
        # readers with the files, and Spark commits the batch only after all of it either way.
        alerts_sent = self.sink.send(self.alerts_topic, batch_id, alerts)
        marks.append(("alerts", time.monotonic()))
        files = commit_index_table(index, self.index_uri, batch_id)
        marks.append(("index", time.monotonic()))
        dead_sent = self.sink.send(self.dead_letter_topic, batch_id, dead)
        marks.append(("dead_letters", time.monotonic()))
        self.last_outcome = BatchOutcome(batch_id, files, alerts_sent, dead_sent)
        self._record_stats(
            batch_id,
            dead_letters=len(dead),
            alerts=len(alerts),
            index_rows=index.num_rows,
            duplicates=counts[ROW_DUPLICATE],
            signals_paired=counts[ROW_SIGNAL],
            signals_unmatched=counts[ROW_SIGNAL_UNMATCHED],
            dead_letters_by_topic=dead_letters_by_topic(table),
        )
        log.info(
            "batch %s: %s index rows, %s alerts, %s dead letters, %s duplicates; ms %s",
            batch_id,
            index.num_rows,
            len(alerts),
            len(dead),
            counts[ROW_DUPLICATE],
            {b[0]: round((b[1] - a[1]) * 1000) for a, b in zip(marks, marks[1:], strict=False)},
        )
