"""Issue 22, "counts that must not lie": the stream's per-batch conservation pages on-call.

The app puts ``ConservationViolations`` (1 for a micro-batch whose records do not add up, 0 for
one that does; spark_apps/streaming/cloudwatch.py); the alerting module's alarm pages on the first
violation. Read from the HCL (tests/infra/terraform_model.py), checked against the app's definition.
"""

from __future__ import annotations

import datetime as dt

from spark_apps.streaming.cloudwatch import CLOUDWATCH_METRICS, CLOUDWATCH_NAMESPACE, cloudwatch_metric_data
from tests.infra import terraform_model as tm

ALERTING = tm.MODULES_ROOT / "alerting"


def test_one_non_conserving_batch_pages_oncall():
    alarm = tm.block(ALERTING, "aws_cloudwatch_metric_alarm", "stream_conservation").body
    assert alarm["metric_name"] == "ConservationViolations"
    assert alarm["unit"] == CLOUDWATCH_METRICS["ConservationViolations"] == "Count"
    assert tm.expression(alarm["namespace"]) == "var.metrics_namespace"
    assert tm.variables_of(ALERTING)["metrics_namespace"]["default"] == CLOUDWATCH_NAMESPACE
    assert tm.expression(alarm["dimensions"]) == "var.metric_dimensions"  # the app publishes without dimensions
    # Any violation within a minute breaches: Sum >= 1 over one 60 s period.
    assert (alarm["statistic"], alarm["period"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == ("Sum", 60, 1, 1)
    assert (alarm["comparison_operator"], alarm["threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    # No batches (quiet topics, no stream yet) publish nothing, which is not a violation.
    assert alarm["treat_missing_data"] == "notBreaching"
    assert [tm.expression(a) for a in alarm["alarm_actions"]] == ["aws_sns_topic.oncall.arn"]
    assert [tm.expression(a) for a in alarm["ok_actions"]] == ["aws_sns_topic.oncall.arn"]
    outputs = tm.outputs_of(ALERTING)["alarm_names"]["value"]
    assert tm.expression(outputs["stream_conservation"]) == "aws_cloudwatch_metric_alarm.stream_conservation.alarm_name"


def test_the_alarm_breaches_on_what_the_app_puts_for_a_failed_batch():
    """The values the app puts cross the alarm's threshold exactly when a batch does not conserve."""
    alarm = tm.block(ALERTING, "aws_cloudwatch_metric_alarm", "stream_conservation").body
    now = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)

    def value(conserved: bool) -> float:
        [datum] = [
            d
            for d in cloudwatch_metric_data({"conservation": {"conserved": conserved}}, now)
            if d["MetricName"] == alarm["metric_name"]
        ]
        assert datum["Unit"] == alarm["unit"] and datum["Dimensions"] == []
        return datum["Value"]

    assert value(False) >= alarm["threshold"] > value(True)
