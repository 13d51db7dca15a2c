"""A Kafka streaming source for Spark written with the PySpark 4.0 Python Data Source API.

No Spark Kafka connector jar can be installed here (DESIGN decision 8), so this
source reads Kafka with ``confluent-kafka``. It produces the same columns as
Spark's built-in ``kafka`` source, so everything downstream works with either::

    key binary, value binary, topic string, partition int, offset long,
    timestamp timestamp, timestampType int

Usage::

    register(spark)
    df = (spark.readStream.format("payments_kafka")
          .option("bootstrap.servers", "127.0.0.1:19092")
          .option("subscribe", "payments.transactions,payments.fraud-signals")
          .option("startingOffsets", "earliest")      # or "latest" or {"topic": {"0": 42}}
          .option("maxOffsetsPerTrigger", "20000")    # optional
          .option("security", "plaintext")            # or "iam" with .option("region", ...)
          .load())

Offsets are ``{"<topic>": {"<partition>": <next offset>}}`` (the shape of Spark's
kafka source) and live in Spark's checkpoint: each micro-batch reads exactly the
range the offset log names, so a restarted query replays an uncommitted batch
byte for byte. Consumer groups are not used.

End offsets: Tansu reports a high watermark of "base offset of the last record
batch + 1" (see :mod:`spark_apps.kafka.broker`). :func:`end_offsets` therefore
fetches that last batch and takes ``max(watermark, last record offset + 1)``; on a
real Kafka broker the fetch simply confirms the watermark.

``maxOffsetsPerTrigger`` caps each batch relative to the previous batch's end as
known to this driver process; the first batch after a restart is not capped.

Two read modes (option ``readMode``):

* ``driver`` (default): a :class:`SimpleDataSourceStreamReader`. Spark's long-lived
  Python source process keeps one consumer assigned to every partition and, when Spark
  asks for the latest offset, reads what is available (at most ``maxOffsetsPerTrigger``
  records) and hands the records to Spark with the batch's offsets, so a micro-batch
  costs no Python worker, consumer or connection per partition and per scan, and the end
  offsets are the records actually read (no high-watermark probing). A batch that Spark
  replays after a restart (offsets in the log, records no longer prefetched) is read by
  ``readBetweenOffsets`` from exactly its offset range. Meant for the rates one driver
  process handles (measured: bench/RESULTS.md).
* ``executors``: a partitioned :class:`DataSourceStreamReader`, one Spark task per Kafka
  partition reading ``[start, end)`` with its own consumer; end offsets come from
  :class:`EndOffsetProbe`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.errors import PySparkNotImplementedError
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition, SimpleDataSourceStreamReader
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

FORMAT_NAME = "payments_kafka"

KAFKA_RECORD_SCHEMA = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("timestamp", TimestampType(), False),
        StructField("timestampType", IntegerType(), False),
    ]
)

Offsets = dict[str, dict[str, int]]

_METADATA_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 2.0
_READ_BATCH = 5000


def _option(options: Mapping[str, str], *names: str, default: str | None = None) -> str | None:
    for name in names:
        if options.get(name) not in (None, ""):
            return options[name]
    return default


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap: str
    topics: tuple[str, ...]
    starting_offsets: str = "latest"
    max_offsets_per_trigger: int | None = None
    security: str = "plaintext"
    region: str | None = None
    read_timeout_s: float = 60.0
    read_mode: str = "driver"

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> KafkaOptions:
        bootstrap = _option(options, "bootstrap.servers", "kafka.bootstrap.servers")
        subscribe = _option(options, "subscribe")
        if not bootstrap or not subscribe:
            raise ValueError(f"{FORMAT_NAME}: options 'bootstrap.servers' and 'subscribe' are required")
        max_offsets = _option(options, "maxOffsetsPerTrigger")
        return cls(
            bootstrap=bootstrap,
            topics=tuple(t.strip() for t in subscribe.split(",") if t.strip()),
            starting_offsets=_option(options, "startingOffsets", default="latest"),
            max_offsets_per_trigger=int(max_offsets) if max_offsets else None,
            security=_option(options, "security", default="plaintext"),
            region=_option(options, "region"),
            read_timeout_s=float(_option(options, "readTimeoutMs", default="60000")) / 1000.0,
            read_mode=_read_mode(_option(options, "readMode", default="driver")),
        )

    def client_config(self, **extra: Any) -> dict[str, Any]:
        from spark_apps.kafka.security import client_config

        return {**client_config(self.bootstrap, self.security, self.region), **extra}

    def consumer(self, **extra: Any):
        from confluent_kafka import Consumer

        return Consumer(
            self.client_config(
                **{
                    "group.id": f"{FORMAT_NAME}-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "fetch.wait.max.ms": 10,
                    "logger": _quiet_logger(),
                    **extra,
                }
            )
        )


def _read_mode(value: str) -> str:
    if value not in ("driver", "executors"):
        raise ValueError(f"{FORMAT_NAME}: readMode must be 'driver' or 'executors', not {value!r}")
    return value


def _quiet_logger():
    import logging

    logger = logging.getLogger("spark_apps.kafka.client")
    logger.setLevel(logging.ERROR)
    return logger


# --- offsets ----------------------------------------------------------------------


def topic_partitions(consumer, topics: tuple[str, ...]) -> list[tuple[str, int]]:
    metadata = consumer.list_topics(timeout=_METADATA_TIMEOUT_S)
    found: list[tuple[str, int]] = []
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            raise ValueError(f"{FORMAT_NAME}: topic {topic!r} does not exist on the broker")
        found.extend((topic, p) for p in sorted(meta.partitions))
    return found


class EndOffsetProbe:
    """True end offsets (last record + 1) per partition, tolerant of Tansu's batch-base watermark."""

    def __init__(self, consumer) -> None:
        self._consumer = consumer
        self._known: dict[tuple[str, int], tuple[int, int]] = {}  # (topic, p) -> (watermark, true end)

    def end_offsets(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        ends: dict[tuple[str, int], int] = {}
        to_probe: dict[tuple[str, int], int] = {}
        for tp in partitions:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), timeout=_METADATA_TIMEOUT_S, cached=False)
            known = self._known.get(tp)
            if high <= 0:
                ends[tp] = 0
            elif known and known[0] == high:
                ends[tp] = known[1]  # no new batch since the last probe
            else:
                to_probe[tp] = high
        if to_probe:
            last_seen = self._fetch_last_batches(to_probe)
            for tp, high in to_probe.items():
                ends[tp] = max(high, last_seen.get(tp, -1) + 1)
                self._known[tp] = (high, ends[tp])
        return ends

    def _fetch_last_batches(self, watermarks: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        self._consumer.assign([TopicPartition(t, p, high - 1) for (t, p), high in watermarks.items()])
        last_seen: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + _PROBE_TIMEOUT_S
        while time.monotonic() < deadline and len(last_seen) < len(watermarks):
            for message in self._consumer.consume(num_messages=100_000, timeout=0.05):
                if message.error() is None:
                    tp = (message.topic(), message.partition())
                    last_seen[tp] = max(last_seen.get(tp, -1), message.offset())
        # A fetch response is enqueued whole; drain what is already buffered.
        for message in self._consumer.consume(num_messages=100_000, timeout=0):
            if message.error() is None:
                tp = (message.topic(), message.partition())
                last_seen[tp] = max(last_seen.get(tp, -1), message.offset())
        self._consumer.unassign()
        return last_seen


def to_offsets(positions: Mapping[tuple[str, int], int]) -> Offsets:
    offsets: Offsets = {}
    for (topic, partition), offset in sorted(positions.items()):
        offsets.setdefault(topic, {})[str(partition)] = int(offset)
    return offsets


def from_offsets(offsets: Offsets) -> dict[tuple[str, int], int]:
    return {(topic, int(p)): int(o) for topic, parts in offsets.items() for p, o in parts.items()}


def cap_offsets(
    start: Mapping[tuple[str, int], int], end: Mapping[tuple[str, int], int], limit: int
) -> dict[tuple[str, int], int]:
    """Limit the total records between ``start`` and ``end`` to ``limit``, shared in proportion to each backlog."""
    backlog = {tp: max(0, end[tp] - start.get(tp, 0)) for tp in end}
    total = sum(backlog.values())
    if total <= limit:
        return dict(end)
    return {tp: start.get(tp, 0) + min(backlog[tp], math.floor(limit * backlog[tp] / total)) for tp in end}


# --- the data source ------------------------------------------------------------------


class KafkaRangePartition(InputPartition):
    def __init__(self, topic: str, partition: int, start: int, end: int) -> None:
        self.topic = topic
        self.partition = partition
        self.start = start
        self.end = end

    def __repr__(self) -> str:
        return f"KafkaRangePartition({self.topic}-{self.partition} [{self.start}, {self.end}))"


class KafkaStreamReader(DataSourceStreamReader):
    def __init__(self, options: KafkaOptions) -> None:
        self.options = options
        self._consumer = None
        self._probe: EndOffsetProbe | None = None
        self._last_end: dict[tuple[str, int], int] | None = None

    def _ends(self) -> dict[tuple[str, int], int]:
        if self._consumer is None:
            self._consumer = self.options.consumer()
            self._probe = EndOffsetProbe(self._consumer)
        return self._probe.end_offsets(topic_partitions(self._consumer, self.options.topics))

    def initialOffset(self) -> dict:
        ends = self._ends()
        positions = starting_positions(self._consumer, self._probe, self.options.starting_offsets, sorted(ends))
        self._last_end = dict(positions)
        return to_offsets(positions)

    def latestOffset(self) -> dict:
        ends = self._ends()
        if self.options.max_offsets_per_trigger and self._last_end is not None:
            ends = cap_offsets(self._last_end, ends, self.options.max_offsets_per_trigger)
        return to_offsets(ends)

    def partitions(self, start: dict, end: dict) -> list[KafkaRangePartition]:
        start_pos, end_pos = from_offsets(start), from_offsets(end)
        self._last_end = dict(end_pos)
        return [
            KafkaRangePartition(t, p, start_pos.get((t, p), 0), e)
            for (t, p), e in sorted(end_pos.items())
            if e > start_pos.get((t, p), 0)
        ]

    def read(self, partition: KafkaRangePartition) -> Iterator:
        yield from read_range(self.options, partition.topic, partition.partition, partition.start, partition.end)

    def commit(self, end: dict) -> None:
        self._last_end = from_offsets(end)

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def starting_positions(consumer, probe: EndOffsetProbe, spec: str, partitions: list[tuple[str, int]]) -> dict:
    """Positions of ``startingOffsets`` (earliest | latest | JSON) for a new query."""
    from confluent_kafka import TopicPartition

    spec = spec.strip()
    if spec == "latest":
        return probe.end_offsets(partitions)
    if spec == "earliest":
        return {tp: consumer.get_watermark_offsets(TopicPartition(*tp), timeout=_METADATA_TIMEOUT_S)[0] for tp in partitions}
    given = from_offsets(json.loads(spec))
    return {tp: given.get(tp, 0) for tp in partitions}


class KafkaDriverStreamReader(SimpleDataSourceStreamReader):
    """``readMode=driver``: one long-lived consumer in Spark's Python source process (see the module docstring)."""

    IDLE_POLL_S = 0.02  # an empty poll this long ends a read: everything fetched so far is the batch
    PARTITION_REFRESH_S = 30.0

    def __init__(self, options: KafkaOptions) -> None:
        self.options = options
        self._consumer = None
        self._positions: dict[tuple[str, int], int] = {}  # where the consumer stands
        self._partitions_checked = float("-inf")

    def _ensure_consumer(self):
        if self._consumer is None:
            # A fetch waits up to 100 ms for new data (Kafka answers as soon as data arrives). Shorter
            # waits turn an idle consumer into hundreds of fetches per second: the embedded broker's
            # CPU then grows with every record it holds (measured: 25% -> 90% of a core in 40 s at
            # 1,000 records/s with 5 ms; 9-14% with 500 ms), taking the cores the job needs.
            self._consumer = self.options.consumer(**{"fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 1})
        return self._consumer

    def initialOffset(self) -> dict:
        consumer = self._ensure_consumer()
        partitions = topic_partitions(consumer, self.options.topics)
        positions = starting_positions(consumer, EndOffsetProbe(consumer), self.options.starting_offsets, partitions)
        return to_offsets(positions)

    def _assign(self, wanted: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import TopicPartition

        consumer = self._ensure_consumer()
        if wanted != self._positions:
            consumer.assign([TopicPartition(t, p, o) for (t, p), o in sorted(wanted.items())])
            self._positions = dict(wanted)

    def read(self, start: dict) -> tuple[Iterator, dict]:
        position = from_offsets(start)
        now = time.monotonic()
        if now - self._partitions_checked >= self.PARTITION_REFRESH_S:
            for tp in topic_partitions(self._ensure_consumer(), self.options.topics):
                position.setdefault(tp, 0)  # a partition added since the last batch: from its start
            self._partitions_checked = now
        self._assign(position)
        consumer = self._consumer
        limit = self.options.max_offsets_per_trigger or 10**12
        # The batch is everything below each partition's high watermark when the read starts (so a
        # drain or an availableNow batch sees all of it) plus what the consumer has already fetched,
        # and no more: waiting for what arrives meanwhile would hold the batch open as long as
        # producers keep sending (measured: 14 s per batch at 1,000 msg/s). The already-fetched part
        # matters on Tansu, whose watermark stops at the base offset of the last record batch.
        targets = self._high_watermarks(position)
        deadline = time.monotonic() + self.options.read_timeout_s
        columns = _Columns()
        read = 0
        while read < limit:
            pending = [tp for tp, high in targets.items() if position[tp] < high]
            last = not pending and bool(targets or read)
            # Ask for no more than is missing, so the call returns as soon as the batch is complete;
            # the last call only takes what is already fetched (no wait).
            missing = sum(targets[tp] - position[tp] for tp in pending) if pending else _READ_BATCH
            messages = consumer.consume(
                num_messages=int(max(1, min(_READ_BATCH, limit - read, missing))),
                timeout=0.2 if pending else (0 if last else self.IDLE_POLL_S),
            )
            if not messages:
                if not pending:
                    break
                for tp, next_offset in self._fetch_positions(pending).items():  # skips control records
                    position[tp] = max(position[tp], next_offset)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{FORMAT_NAME}: no records below the high watermark {targets} from {position}")
                continue
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise RuntimeError(f"{FORMAT_NAME}: {error}")
                    continue
                tp = (message.topic(), message.partition())
                offset = message.offset()
                if offset < position.get(tp, 0):
                    continue  # already consumed (cannot happen after an assign at the position)
                position[tp] = offset + 1
                columns.add(message)
                read += 1
            if last:
                break
        self._positions = dict(position)
        return iter(columns.record_batches()), to_offsets(position)

    def _high_watermarks(self, position: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        highs = {}
        for tp in position:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(*tp), timeout=_METADATA_TIMEOUT_S, cached=False)
            if high > position[tp]:
                highs[tp] = high
        return highs

    def _fetch_positions(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        from confluent_kafka import TopicPartition

        found = self._consumer.position([TopicPartition(*tp) for tp in partitions])
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def readBetweenOffsets(self, start: dict, end: dict) -> Iterator:
        start_pos, end_pos = from_offsets(start), from_offsets(end)
        for (topic, partition), stop in sorted(end_pos.items()):
            first = start_pos.get((topic, partition), 0)
            if stop > first:
                yield from read_range(self.options, topic, partition, first, stop)

    def commit(self, end: dict) -> None:
        pass

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class _Columns:
    """Kafka records of several partitions as Arrow record batches (one per partition, offset order)."""

    def __init__(self) -> None:
        self.by_partition: dict[tuple[str, int], tuple[list, list, list, list, list]] = {}

    def add(self, message) -> None:
        key = (message.topic(), message.partition())
        columns = self.by_partition.get(key)
        if columns is None:
            columns = self.by_partition[key] = ([], [], [], [], [])
        stamp_type, stamp_ms = message.timestamp()
        columns[0].append(message.key())
        columns[1].append(message.value())
        columns[2].append(message.offset())
        columns[3].append(stamp_ms * 1000)
        columns[4].append(max(stamp_type - 1, 0))  # librdkafka 1=create, 2=log-append; Spark 0/1

    def record_batches(self) -> list:
        return [
            _record_batch(_arrow_schema(), topic, partition, *columns)
            for (topic, partition), columns in sorted(self.by_partition.items())
        ]


def _arrow_schema():
    """KAFKA_RECORD_SCHEMA in Arrow, nullability included (Spark compares the prefetched batches' schema)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.binary()),
            pa.field("value", pa.binary()),
            pa.field("topic", pa.string(), nullable=False),
            pa.field("partition", pa.int32(), nullable=False),
            pa.field("offset", pa.int64(), nullable=False),
            pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("timestampType", pa.int32(), nullable=False),
        ]
    )


def read_range(
    options: KafkaOptions, topic: str, partition: int, start: int, end: int, batch_rows: int = _READ_BATCH
) -> Iterator:
    """Yield Arrow record batches holding exactly the records at offsets [start, end) of one partition."""
    from confluent_kafka import TopicPartition

    arrow_schema = _arrow_schema()
    consumer = options.consumer(**{"fetch.wait.max.ms": 100})
    try:
        consumer.assign([TopicPartition(topic, partition, start)])
        keys, values, offsets, stamps, stamp_types = [], [], [], [], []
        deadline = time.monotonic() + options.read_timeout_s
        position = start
        while position < end:
            messages = consumer.consume(num_messages=batch_rows, timeout=0.5)
            if not messages:
                # Offsets may end in records a consumer never sees (transaction markers).
                position = max(position, consumer.position([TopicPartition(topic, partition)])[0].offset)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{FORMAT_NAME}: {topic}-{partition} stalled at offset {position}, expected records up to {end}"
                    )
                continue
            deadline = time.monotonic() + options.read_timeout_s
            for message in messages:
                if message.error() is not None:
                    if message.error().fatal():
                        raise RuntimeError(f"{FORMAT_NAME}: {message.error()}")
                    continue
                offset = message.offset()
                position = offset + 1
                if offset >= end:
                    continue
                stamp_type, stamp_ms = message.timestamp()
                keys.append(message.key())
                values.append(message.value())
                offsets.append(offset)
                stamps.append(stamp_ms * 1000)
                stamp_types.append(max(stamp_type - 1, 0))  # librdkafka 1=create, 2=log-append; Spark 0/1
            if len(offsets) >= batch_rows or position >= end:
                if offsets:
                    yield _record_batch(arrow_schema, topic, partition, keys, values, offsets, stamps, stamp_types)
                keys, values, offsets, stamps, stamp_types = [], [], [], [], []
    finally:
        consumer.close()


def _record_batch(arrow_schema, topic, partition, keys, values, offsets, stamps, stamp_types):
    import pyarrow as pa

    n = len(offsets)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(keys, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array([topic] * n, pa.string()),
            pa.array([partition] * n, pa.int32()),
            pa.array(offsets, pa.int64()),
            pa.array(stamps, pa.timestamp("us", tz="UTC")),
            pa.array(stamp_types, pa.int32()),
        ],
        schema=arrow_schema,
    )


class KafkaDataSource(DataSource):
    """``spark.readStream.format("payments_kafka")``: see the module docstring for options."""

    @classmethod
    def name(cls) -> str:
        return FORMAT_NAME

    def schema(self) -> StructType:
        return KAFKA_RECORD_SCHEMA

    def streamReader(self, schema: StructType) -> KafkaStreamReader:
        options = KafkaOptions.parse(self.options)
        if options.read_mode == "driver":  # Spark then asks for simpleStreamReader
            raise PySparkNotImplementedError(errorClass="NOT_IMPLEMENTED", messageParameters={"feature": "streamReader"})
        return KafkaStreamReader(options)

    def simpleStreamReader(self, schema: StructType) -> KafkaDriverStreamReader:
        return KafkaDriverStreamReader(KafkaOptions.parse(self.options))


def register(spark) -> None:
    """Make ``format("payments_kafka")`` available on this SparkSession."""
    spark.dataSource.register(KafkaDataSource)
