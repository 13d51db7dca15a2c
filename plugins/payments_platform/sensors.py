"""Wait for a day's raw drops: deferrable S3 sensor on AWS, a file poke locally.

The generator and the upstream drop jobs write ``<raw_uri>/_ready/dt=<D>.json``
last, after every source of the day has landed, so its presence means "complete".

The marker is the run's plan's (``plan_run``'s ``ready_marker``, for its ``dt``: the ``date``
param of a manual or reprocessing run, else the data interval's day), not ``{{ ds }}``: a
reprocessing run of an older day waits for that day's drops. The DAG passes it as an XCom
reference (``plan["ready_marker"]``). A run that starts at a later stage (``from_stage``
aggregate or business) skips the wait with the rest of the batch stage (``batch.should_run``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from payments_contract import READY_MARKER as READY_MARKER
from payments_contract import ready_marker_location
from payments_platform import lake_io
from payments_platform.profiles import Profile

WAIT_TIMEOUT = timedelta(hours=12)


def ready_marker_uri(raw_uri: str, dt: str) -> str:
    """``<raw>/_ready/dt=<dt>.json`` (the shared contract's ready marker)."""
    return ready_marker_location(raw_uri, dt)


def _local_marker_exists(marker: str) -> bool:
    return Path(marker).is_file()


def raw_drop_sensor(profile: Profile, marker: Any, *, task_id: str, **kwargs: Any) -> BaseOperator:
    """The sensor of a ready marker (``marker``: a URI or an XCom reference to one)."""
    if lake_io.is_s3(profile.lake.raw_uri):
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        return S3KeySensor(
            task_id=task_id,
            bucket_key=marker,
            aws_conn_id=profile.aws_conn_id,
            deferrable=True,
            poke_interval=profile.orchestration.sensor_poke_seconds,
            timeout=WAIT_TIMEOUT.total_seconds(),
            **kwargs,
        )
    from airflow.providers.standard.sensors.python import PythonSensor

    return PythonSensor(
        task_id=task_id,
        python_callable=_local_marker_exists,
        op_kwargs={"marker": marker},
        mode="reschedule",
        poke_interval=profile.orchestration.sensor_poke_seconds,
        timeout=WAIT_TIMEOUT.total_seconds(),
        **kwargs,
    )
