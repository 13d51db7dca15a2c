"""What the Airflow side (``payments_platform``) and the Spark side (``spark_apps``) must agree on.

One small module, standard library only, shipped in both ``plugins.zip`` (MWAA) and the Spark
image / job archive (EMR on EKS), so neither side keeps a copy of the other's rules:

* the lake layout of versioned locations (``<root>/<table>/dt=<D>/version=<V>/``) and how a
  location is read back (:mod:`payments_contract.layout`);
* the control files next to the data (``_manifest.json``, ``_quality.json``) and the raw-drop
  ready marker;
* the version-id and date rules, and how a version id is made from an Airflow run id
  (:mod:`payments_contract.versions`);
* the metrics paths the stream job writes and the Airflow side and the ops index read;
* the table and index names, the pipeline's stages and the tables each stage writes
  (:mod:`payments_contract.tables`).

A *version* is the folder one run wrote for one table and one day; its id is the plan's
``version`` (the ``plan_run`` XCom), the Spark jobs' ``--version``, the ``version=`` path
segment, the manifest's ``version`` key and the ``version`` column of every index row. Airflow's
own run id (``dag_run.run_id``) is a different thing and keeps its name.
"""

from payments_contract.layout import (
    DAILY_SUMMARY_DIR,
    DATE_SEGMENT,
    HOUR_SEGMENT,
    MANIFEST_FILE,
    QUALITY_RESULT_FILE,
    READY_MARKER,
    STREAM_HEARTBEAT_FILE,
    STREAM_LATEST_FILE,
    STREAM_METRICS_DIR,
    SUPERVISOR_DIR,
    SUPERVISOR_INCIDENT_FILE,
    SUPERVISOR_RESTARTS_FILE,
    SUPERVISOR_STOP_MARKER,
    VERSION_SEGMENT,
    VersionedLocation,
    daily_summary_location,
    date_location,
    join,
    manifest_location,
    parse_version_location,
    quality_result_location,
    ready_marker_location,
    stream_batch_record_location,
    stream_batches_location,
    stream_metrics_location,
    supervisor_location,
    table_location,
    version_location,
    version_of,
)
from payments_contract.tables import (
    AGGREGATE_INDEX,
    ALL_TABLES,
    AUDIT_TRAIL,
    BATCH_INDEX,
    BUSINESS_INDEXES,
    QUARANTINE,
    STAGE_TABLES,
    STAGES,
    STREAM_INDEX,
    STREAM_QUERY_NAME,
    VERSIONED_TABLES,
)
from payments_contract.versions import (
    DATE_PATTERN,
    MAX_VERSION_LENGTH,
    VERSION_PATTERN,
    ContractError,
    check_date,
    check_version,
    new_version,
    version_from_airflow_run_id,
)

__all__ = [
    "AGGREGATE_INDEX",
    "ALL_TABLES",
    "AUDIT_TRAIL",
    "BATCH_INDEX",
    "BUSINESS_INDEXES",
    "DAILY_SUMMARY_DIR",
    "DATE_PATTERN",
    "DATE_SEGMENT",
    "HOUR_SEGMENT",
    "MANIFEST_FILE",
    "MAX_VERSION_LENGTH",
    "QUALITY_RESULT_FILE",
    "QUARANTINE",
    "READY_MARKER",
    "STAGES",
    "STAGE_TABLES",
    "STREAM_HEARTBEAT_FILE",
    "STREAM_INDEX",
    "STREAM_LATEST_FILE",
    "STREAM_METRICS_DIR",
    "STREAM_QUERY_NAME",
    "SUPERVISOR_DIR",
    "SUPERVISOR_INCIDENT_FILE",
    "SUPERVISOR_RESTARTS_FILE",
    "SUPERVISOR_STOP_MARKER",
    "VERSIONED_TABLES",
    "VERSION_PATTERN",
    "VERSION_SEGMENT",
    "ContractError",
    "VersionedLocation",
    "check_date",
    "check_version",
    "daily_summary_location",
    "date_location",
    "join",
    "manifest_location",
    "new_version",
    "parse_version_location",
    "quality_result_location",
    "ready_marker_location",
    "stream_batch_record_location",
    "stream_batches_location",
    "stream_metrics_location",
    "supervisor_location",
    "table_location",
    "version_from_airflow_run_id",
    "version_location",
    "version_of",
]
