"""The stream's CloudWatch metrics: exactly what the on-call alarms read (aws profile).

One definition, shared by both sides of the contract: the app publishes these
(:class:`CloudWatchPublisher`, called by spark_apps.streaming.metrics.MetricsListener),
and tests/infra/test_terraform_wiring.py checks that ``infra/terraform/modules/alerting``
(alarm namespace, metric names, units, dimensions) and the compute module's IAM
condition (``cloudwatch:namespace``) use the same values. No pyspark import here.

    FreshnessSeconds  Seconds  now - produce time of the newest record the query consumed
    ConsumerLag       Count    records between the topics' end offsets and the query's offsets
    QuarantineRate    None     fraction (0-1) of a micro-batch's input sent to the dead-letter topic
    ConservationViolations  Count  1 for a micro-batch whose records do not add up (the metrics
                                   record's ``conservation.conserved`` is false), 0 when they do
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

CLOUDWATCH_NAMESPACE = "Payments/Streaming"
CLOUDWATCH_DIMENSIONS: dict[str, str] = {}  # the alarms' metric_dimensions: none
CLOUDWATCH_METRICS: dict[str, str] = {  # metric name -> CloudWatch unit
    "FreshnessSeconds": "Seconds",
    "ConsumerLag": "Count",
    "QuarantineRate": "None",
    "ConservationViolations": "Count",
}


def parse_iso(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def cloudwatch_metric_data(record: dict, now: dt.datetime) -> list[dict]:
    """The MetricData of one record: :data:`CLOUDWATCH_METRICS` that have a value, no dimensions."""
    newest = parse_iso(record.get("newest_produced_at"))
    values = {
        "FreshnessSeconds": None if newest is None else max(0.0, (now - newest).total_seconds()),
        "ConsumerLag": record.get("lag_total"),
        "QuarantineRate": record.get("quarantine_rate"),
        "ConservationViolations": _violations(record.get("conservation")),
    }
    dimensions = [{"Name": k, "Value": v} for k, v in CLOUDWATCH_DIMENSIONS.items()]
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(values[name]), "Unit": unit, "Timestamp": now}
        for name, unit in CLOUDWATCH_METRICS.items()
        if values[name] is not None
    ]


def _violations(conservation: dict | None) -> int | None:
    """1 if the batch's conservation failed, 0 if it held, None without one (heartbeats, unknown counts)."""
    if not conservation:
        return None
    return 0 if conservation.get("conserved") else 1


class CloudWatchPublisher:
    """Puts :func:`cloudwatch_metric_data` of each metrics record into :data:`CLOUDWATCH_NAMESPACE`."""

    NAMESPACE = CLOUDWATCH_NAMESPACE

    def __init__(self, region: str, client=None, clock: Callable[[], dt.datetime] | None = None) -> None:
        if client is None:
            import boto3

            client = boto3.client("cloudwatch", region_name=region)
        self.client = client
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __call__(self, record: dict) -> None:
        data = cloudwatch_metric_data(record, self.clock())
        if data:
            self.client.put_metric_data(Namespace=self.NAMESPACE, MetricData=data)
