"""Deliver a micro-batch's alert and dead-letter messages to Kafka from ``foreachBatch``.

Guarantee: **at-least-once, deduplicated per micro-batch; never lost.**

* Every message is keyed deterministically (the transaction id, or the record's
  ``topic/partition/offset`` when it has none) and its value is a pure function of the
  batch's input (except ``alert_time``), so a replayed batch sends the same messages.
* :meth:`BatchKafkaSink.send` produces with the idempotent producer (``acks=all``,
  no duplicates from internal retries) and waits until the broker acknowledged every
  message; any failure raises, the micro-batch fails and is not committed, and Spark
  replays it after the restart: nothing is lost.
* A marker file ``<marker_dir>/<topic>/<batch_id>`` is written once the batch's
  messages are acknowledged; a replay of that batch (the process died after sending,
  before Spark committed the batch) finds it and does not resend. Only a crash between
  the broker's acknowledgement and the marker write can duplicate a batch's messages;
  consumers that need exactly-once keep the latest message per key (the alerts topic
  is naturally compacted by transaction id). Alert values carry ``alert_time`` (when the
  batch ran), so a resent alert differs only in that field. Markers older than
  ``MARKERS_KEPT`` batches are deleted; on S3 the checkpoints bucket's lifecycle rule
  expires them instead (infra/terraform/modules/lake, ``sent_marker_prefixes``).

What a replay can repeat, exactly: the messages of the one batch whose acknowledgement
came before a crash and whose marker did not, each message with the same key and value
(``alert_time`` aside). Nothing else: earlier batches have markers, later ones never ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from spark_apps import lake

MARKERS_KEPT = 1000


class DeliveryError(RuntimeError):
    """The broker did not acknowledge every message of a batch."""


class BatchKafkaSink:
    def __init__(
        self, bootstrap: str, marker_dir: str, security: str = "plaintext", region: str | None = None, producer=None
    ) -> None:
        self.bootstrap = bootstrap
        self.marker_dir = marker_dir.rstrip("/")
        self.security = security
        self.region = region
        self._producer = producer

    def producer_config(self) -> dict:
        """The idempotent producer's settings (no duplicates from internal retries, every replica acked)."""
        from spark_apps.kafka.security import client_config

        return {
            **client_config(self.bootstrap, self.security, self.region),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }

    @property
    def producer(self):
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self.producer_config())
        return self._producer

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush and let go of the producer (its threads would otherwise outlive the query)."""
        if self._producer is not None:
            self._producer.flush(timeout_s)
            self._producer = None

    def marker_uri(self, topic: str, batch_id: int) -> str:
        return f"{self.marker_dir}/{topic}/{int(batch_id):012d}"

    def already_sent(self, topic: str, batch_id: int) -> bool:
        try:
            lake.read_text(self.marker_uri(topic, batch_id))
            return True
        except (FileNotFoundError, OSError):
            return False

    def send(self, topic: str, batch_id: int, messages: Iterable[tuple[str, str]], timeout_s: float = 60.0) -> int:
        """Produce (key, value) messages once per batch; return how many were sent now (0 on a replay)."""
        if self.already_sent(topic, batch_id):
            return 0
        errors: list[str] = []

        def on_delivery(error, _message) -> None:
            if error is not None:
                errors.append(str(error))

        sent = 0
        for key, value in messages:
            while True:
                try:
                    self.producer.produce(topic, key=key.encode("utf-8"), value=value.encode("utf-8"), on_delivery=on_delivery)
                    break
                except BufferError:
                    self.producer.poll(0.05)  # local queue full: let deliveries drain
            sent += 1
            if sent % 10_000 == 0:
                self.producer.poll(0)
        remaining = self.producer.flush(timeout_s)
        if remaining or errors:
            raise DeliveryError(f"{topic} batch {batch_id}: {remaining} unacknowledged, errors: {errors[:3]}")
        lake.write_text(self.marker_uri(topic, batch_id), str(sent))
        self._forget(topic, batch_id - MARKERS_KEPT)
        return sent

    def _forget(self, topic: str, batch_id: int) -> None:
        """Drop an old marker: Spark never replays a batch that far back (it keeps ~100 batches).
        Not on an object store: there a delete is 3 requests in the batch's path, and the
        bucket's lifecycle rule expires markers."""
        if batch_id < 0:
            return
        filesystem, path = lake._filesystem(self.marker_uri(topic, batch_id))
        if lake.is_object_store(filesystem):
            return
        with contextlib.suppress(FileNotFoundError, OSError):
            filesystem.delete_file(path)
