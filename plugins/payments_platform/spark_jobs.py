"""Spark job submission behind one interface.

A :class:`SparkJob` names an entrypoint under ``spark_apps/jobs`` and its arguments.
:func:`spark_job_task` turns it into the operator the active profile asks for:

* ``emr_on_eks`` -> :class:`PaymentsEmrContainerOperator` (the Amazon provider's
  ``EmrContainerOperator``) with the release label, virtual cluster and the execution role
  of the job's family from the profile (``ingest`` for the batch and stream jobs, which read
  raw drops and the PAN token key; ``transform`` for every other job), CloudWatch + S3
  monitoring, deferrable, and a client request token derived from DAG, run, task, map index
  and **try number**: every try (a retry, or a cleared and re-run task) submits a new job
  and never re-attaches to an earlier try's (failed) job; an earlier try's job still
  running (its worker died) is cancelled first, so two tries never write at once;
* ``local`` -> :class:`LocalSparkSubmitOperator`: ``spark-submit`` on this machine with
  the same entrypoint, arguments and ``--conf`` pairs, its output streamed into the
  task log.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.hooks.emr import EmrContainerHook
from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator
from airflow.sdk import BaseOperator

from payments_platform.profiles import PROJECT_ROOT, JobRole, Profile, SparkConfig, get_profile

EMR_NAME_LIMIT = 64
CLIENT_TOKEN_LIMIT = 64
EMR_FAILED_STATES = frozenset({"FAILED", "CANCELLED", "CANCEL_PENDING"})
EMR_ACTIVE_STATES = ("PENDING", "SUBMITTED", "RUNNING")
EMR_TERMINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class SparkJobFailed(RuntimeError):
    """The Spark job ended unsuccessfully; the message carries the tail of its log."""


@dataclass(frozen=True)
class SparkJob:
    """A Spark application run: ``spark_apps/jobs/<entrypoint>`` with its arguments.

    ``arguments`` may hold Jinja templates (rendered per task instance).
    ``streaming`` jobs get EMR's job retry policy (``spark.stream_max_attempts``).
    ``role`` is the job's family on EMR (``spark.ingest_role_arn`` / ``transform_role_arn``):
    only jobs that read raw drops or the PAN token key are ``ingest``.
    """

    name: str
    entrypoint: str
    arguments: Sequence[str] = ()
    conf: Mapping[str, str] = field(default_factory=dict)
    streaming: bool = False
    role: JobRole = "transform"


def jvm_classpath_conf(spark: SparkConfig) -> dict[str, str]:
    """The JVM manifest's Spark jars (Kafka connector, MSK IAM) on the job's classpath: listed
    in ``spark.jars`` on this machine; on EMR on EKS the image carries them in ``jars_dir``."""
    if spark.launcher == "local":
        jars = sorted(str(path) for path in Path(spark.jars_dir).glob("*.jar"))
        if not jars:
            raise SparkJobFailed(f"no jars in {spark.jars_dir}: run `bash scripts/setup.sh` (it resolves jvm/pom.xml)")
        return {"spark.jars": ",".join(jars)}
    classpath = f"{spark.jars_dir.rstrip('/')}/*"
    return {"spark.driver.extraClassPath": classpath, "spark.executor.extraClassPath": classpath}


def spark_conf(spark: SparkConfig, job: SparkJob) -> dict[str, str]:
    """The JVM classpath, the profile's conf, then the job's own conf (job wins)."""
    return {**jvm_classpath_conf(spark), **spark.conf, **job.conf}


def conf_flags(conf: Mapping[str, str]) -> list[str]:
    flags: list[str] = []
    for key, value in sorted(conf.items()):
        flags += ["--conf", f"{key}={value}"]
    return flags


def without_empty_options(arguments: Sequence[str]) -> list[str]:
    """The arguments without ``--option ''`` pairs: StartJobRun rejects empty arguments, and the jobs
    read a missing option as its default ``''`` ("none", e.g. no previous day's aggregate yet)."""
    kept: list[str] = []
    for index, argument in enumerate(arguments):
        value_of_option = index > 0 and str(arguments[index - 1]).startswith("--")
        if argument == "" and value_of_option:
            kept.pop()
            continue
        kept.append(argument)
    return kept


def emr_job_driver(spark: SparkConfig, job: SparkJob, arguments: Sequence[str]) -> dict[str, Any]:
    conf = {key: value for key, value in spark_conf(spark, job).items() if key != "spark.kubernetes.container.image"}
    parameters = ["--py-files", spark.py_files_uri or "", *conf_flags(conf)]
    return {
        "sparkSubmitJobDriver": {
            "entryPoint": f"{spark.entrypoint_uri}/{job.entrypoint}",
            "entryPointArguments": without_empty_options(arguments),
            "sparkSubmitParameters": " ".join(parameters),
        }
    }


def emr_configuration_overrides(spark: SparkConfig, job: SparkJob) -> dict[str, Any]:
    defaults: dict[str, str] = {}
    if spark.image_uri:
        defaults["spark.kubernetes.container.image"] = spark.image_uri
    overrides: dict[str, Any] = {
        "monitoringConfiguration": {
            "persistentAppUI": "ENABLED",
            "cloudWatchMonitoringConfiguration": {"logGroupName": spark.log_group, "logStreamNamePrefix": job.name},
            "s3MonitoringConfiguration": {"logUri": spark.log_uri},
        }
    }
    if defaults:
        overrides["applicationConfiguration"] = [{"classification": "spark-defaults", "properties": defaults}]
    return overrides


def task_instance_key(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """A short digest naming one task instance (all its tries)."""
    return hashlib.sha256(f"{dag_id}|{run_id}|{task_id}|{map_index}".encode()).hexdigest()


def client_request_token(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """Idempotency token of one try of one task instance's job.

    StartJobRun with a token EMR has seen returns that token's job: the same try asking twice
    gets its own job back, and a new try (a retry, or the task cleared and run again, which
    Airflow counts as a new try) gets a new job, never an earlier try's failed one.
    """
    return f"{task_instance_key(dag_id, run_id, task_id, map_index)[:48]}-t{int(try_number)}"[:CLIENT_TOKEN_LIMIT]


def emr_job_name(job_name: str, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    """The job run's name: the job and its task instance (so the tries of one task are found by name)."""
    suffix = task_instance_key(dag_id, run_id, task_id, map_index)[:12]
    return f"{job_name[: EMR_NAME_LIMIT - len(suffix) - 1]}-{suffix}"


def cancel_earlier_tries(hook: Any, virtual_cluster_id: str, name: str, log: Any) -> list[str]:
    """Cancel the active job runs named ``name`` (an earlier try of this task whose worker died):
    a new try must not write the same version beside them. Returns their ids."""
    response = hook.conn.list_job_runs(virtualClusterId=virtual_cluster_id, name=name, states=list(EMR_ACTIVE_STATES))
    cancelled = []
    for run in response.get("jobRuns", []):
        if run.get("name") != name:
            continue
        log.warning("cancelling job run %s of an earlier try (%s) before this try submits its own", run["id"], run["state"])
        hook.conn.cancel_job_run(id=run["id"], virtualClusterId=virtual_cluster_id)
        cancelled.append(run["id"])
    return cancelled


class PaymentsEmrContainerOperator(EmrContainerOperator):
    """``EmrContainerOperator`` for a :class:`SparkJob`.

    The job driver is built from the rendered ``arguments`` (so the task can be mapped
    over them); the execution role is the one of the job's family; the job run's name and
    client token are derived from the task instance (the token from its try as well).
    """

    template_fields: Sequence[str] = (*EmrContainerOperator.template_fields, "arguments")

    def __init__(self, *, job: SparkJob, spark: SparkConfig, arguments: Sequence[str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("name", job.name[:EMR_NAME_LIMIT])
        super().__init__(
            virtual_cluster_id=spark.virtual_cluster_id,
            execution_role_arn=spark.role_arn(job.role),
            release_label=spark.release_label,
            job_driver={},
            configuration_overrides=emr_configuration_overrides(spark, job),
            job_retry_max_attempts=spark.stream_max_attempts if job.streaming else None,
            deferrable=not job.streaming,
            wait_for_completion=not job.streaming,
            **kwargs,
        )
        self.job = job
        self.spark = spark
        self.arguments = list(arguments if arguments is not None else job.arguments)

    def execute(self, context: Any) -> str | None:
        self.job_driver = emr_job_driver(self.spark, self.job, self.arguments)
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        self.name = emr_job_name(self.job.name, ti.dag_id, ti.run_id, ti.task_id, map_index)
        self.client_request_token = client_request_token(ti.dag_id, ti.run_id, ti.task_id, map_index, ti.try_number)
        cancel_earlier_tries(self.hook, self.virtual_cluster_id, self.name, self.log)
        return super().execute(context)


class LocalSparkSubmitOperator(BaseOperator):
    """Run a Spark job with ``spark-submit`` on this machine, streaming its log."""

    template_fields: Sequence[str] = ("arguments",)
    ui_color = "#fbd38d"

    def __init__(self, *, job: SparkJob, spark: SparkConfig, arguments: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.spark = spark
        self.arguments = list(arguments if arguments is not None else job.arguments)

    def command(self) -> list[str]:
        spark_submit = Path(sys.executable).with_name("spark-submit")
        entrypoint = f"{self.spark.entrypoint_uri}/{self.job.entrypoint}"
        return [
            str(spark_submit),
            "--master",
            self.spark.master or "local[2]",
            *conf_flags(spark_conf(self.spark, self.job)),
            entrypoint,
            *self.arguments,
        ]

    def execute(self, context: Any) -> int:
        return run_spark_submit(self.command(), log=self.log)


def spark_submit_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return env


def run_spark_submit(command: list[str], log: Any, tail_lines: int = 40) -> int:
    log.info("spark-submit: %s", " ".join(command))
    tail: deque[str] = deque(maxlen=tail_lines)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=spark_submit_env(), cwd=PROJECT_ROOT
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("%s", line)
        code = process.wait()
    if code != 0:
        raise SparkJobFailed(f"spark-submit exited with {code}; last lines:\n" + "\n".join(tail))
    return code


def spark_job_operator(profile: Profile | None = None) -> tuple[type[BaseOperator], dict[str, Any]]:
    """The operator class the profile asks for and the keyword arguments it needs.

    Use it directly to map a job over arguments:
    ``cls.partial(task_id=..., job=job, **kwargs).expand(arguments=...)``.
    """
    profile = profile or get_profile()
    if profile.spark.launcher == "emr_on_eks":
        return PaymentsEmrContainerOperator, {
            "spark": profile.spark,
            "aws_conn_id": profile.aws_conn_id,
            "region_name": profile.region,
            "poll_interval": 30,
            "tags": {"project": "payments-index"},
        }
    return LocalSparkSubmitOperator, {"spark": profile.spark}


def spark_job_task(job: SparkJob, *, task_id: str, profile: Profile | None = None, **operator_kwargs: Any) -> BaseOperator:
    """The operator that runs ``job`` under the active profile."""
    operator_class, kwargs = spark_job_operator(profile)
    return operator_class(task_id=task_id, job=job, **kwargs, **operator_kwargs)


__all__ = [
    "EMR_TERMINAL_STATES",
    "EmrContainerHook",
    "LocalSparkSubmitOperator",
    "PaymentsEmrContainerOperator",
    "SparkJob",
    "SparkJobFailed",
    "client_request_token",
    "spark_job_operator",
    "spark_job_task",
]
