"""The tables both sides name: what each stage of the daily pipeline writes, and the stream's.

``spark_apps.schemas.TABLE_SCHEMAS`` holds one schema per name in :data:`ALL_TABLES` (tested).
"""

from __future__ import annotations

BATCH_INDEX = "batch_index"
QUARANTINE = "quarantine"  # its versions live under lake.quarantine_uri, the others under lake.index_uri
AGGREGATE_INDEX = "aggregate_index"
AUDIT_TRAIL = "audit_trail"
STREAM_INDEX = "stream_index"  # written continuously by the stream job (dt=/hour= partitions, not versions)
STREAM_QUERY_NAME = "stream_index"  # the streaming query: its metrics are under <metrics>/stream/<query>/

BUSINESS_INDEXES = (
    "fraud_index",
    "reconciliation_index",
    "merchant_performance_index",
    "user_spend_index",
    "compliance_index",
    "settlement_schedule_index",
    "ops_index",
    "ml_feedback",
)
# The daily pipeline's stages, in order, and the tables each writes (gated and published in that order).
STAGES = ("batch", "aggregate", "business")
STAGE_TABLES = {
    "batch": (BATCH_INDEX, QUARANTINE),
    "aggregate": (AGGREGATE_INDEX, AUDIT_TRAIL),
    "business": BUSINESS_INDEXES,
}
# Every table written to versioned locations, in pipeline order.
VERSIONED_TABLES = tuple(table for stage in STAGES for table in STAGE_TABLES[stage])
ALL_TABLES = (*VERSIONED_TABLES, STREAM_INDEX)
