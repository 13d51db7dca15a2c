"""Runtime profiles (DESIGN decision 2): one YAML file per environment.

The profile is chosen by the ``PAYMENTS_PROFILE`` environment variable (default
``local``) and read from ``include/profiles/<name>.yaml``. Loading is cheap (one
small file, cached per process) so DAG files may call :func:`get_profile` at
parse time; it never touches the Airflow DB or the network.

Values may contain ``${NAME}`` references to environment variables (on MWAA the
startup script exports them from the Terraform outputs); ``${PROJECT_ROOT}``
defaults to the repository root, ``${PAYMENTS_LOCAL_DIR}`` (the local lake, catalog
and logs) to ``<root>/.local``, ``${PAYMENTS_JVM_DIR}`` (the resolved JVM manifest) to
``<root>/.local/jvm`` and ``${PAYMENTS_KAFKA_BOOTSTRAP}`` to the embedded
broker's usual address. Any other unset variable is an error naming the key.
Values may also hold Jinja templates, which Airflow renders at run time.

A malformed or incomplete profile raises :class:`ProfileError` naming the file and
the dotted path of the bad key.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILE_ENV_VAR = "PAYMENTS_PROFILE"
DEFAULT_PROFILE = "local"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# MWAA syncs only dags/ and plugins.zip: the startup script points this at the deployed copy.
PROFILES_DIR = Path(os.environ.get("PAYMENTS_PROFILES_DIR") or PROJECT_ROOT / "include" / "profiles")

NonEmpty = Annotated[str, Field(min_length=1)]


class ProfileError(ValueError):
    """The selected profile is missing, malformed or incomplete."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(_Section):
    """Where every dataset lives: local folders or ``s3://`` prefixes."""

    raw_uri: NonEmpty
    index_uri: NonEmpty
    quarantine_uri: NonEmpty
    checkpoint_uri: NonEmpty
    metrics_uri: NonEmpty
    artifacts_uri: NonEmpty
    retention_days: int = Field(ge=1)
    # Days raw drops are kept (card data: Terraform's lake variable raw_retention_days, default 7):
    # a day older than this cannot be rebuilt from raw. None: never expired (the local lake).
    raw_retention_days: int | None = Field(default=7, ge=1)


JobRole = Literal["ingest", "transform"]


class SparkConfig(_Section):
    launcher: Literal["local", "emr_on_eks"]
    release_label: NonEmpty
    master: str | None = None
    virtual_cluster_id: str | None = None
    # EMR on EKS job execution roles by job family (Terraform module compute): "ingest" runs the
    # batch and stream jobs (raw drops, the PAN token key, MSK), "transform" every other job
    # (no card data). A SparkJob names its family (spark_jobs.SparkJob.role).
    ingest_role_arn: str | None = None
    transform_role_arn: str | None = None
    entrypoint_uri: NonEmpty
    py_files_uri: str | None = None
    image_uri: str | None = None
    log_group: str | None = None
    log_uri: str | None = None
    # Where the JVM manifest's ``spark`` jars are (spark_apps.jvm): put on every job's classpath.
    jars_dir: NonEmpty
    conf: dict[str, str] = Field(default_factory=dict)
    # The stream job's state partitions (its shuffle partitions): fixed for a checkpoint. One on a
    # 2-core machine shared with the broker (each partition is a task per stage and a state store
    # per operator, every micro-batch); on EMR enough for the executors' cores.
    stream_state_partitions: int = Field(default=1, ge=1)
    stream_max_attempts: int = Field(default=5, ge=1)
    # Where the stream job publishes its per-batch metrics besides the lake (the supervisor passes
    # it as --publish-metrics): CloudWatch on AWS, for the on-call alarms (Terraform module alerting).
    stream_metrics: Literal["none", "cloudwatch"] = "none"

    @model_validator(mode="after")
    def _launcher_needs(self) -> SparkConfig:
        if self.launcher == "local" and not self.master:
            raise ValueError("launcher 'local' needs 'master' (for example local[2])")
        if self.launcher == "emr_on_eks":
            for key in ("virtual_cluster_id", "ingest_role_arn", "transform_role_arn", "py_files_uri", "log_uri"):
                if not getattr(self, key):
                    raise ValueError(f"launcher 'emr_on_eks' needs '{key}'")
        return self

    def role_arn(self, role: JobRole) -> str | None:
        """The execution role of a job of family ``role`` (None on this machine)."""
        return self.ingest_role_arn if role == "ingest" else self.transform_role_arn


class TopicSettings(_Section):
    """How the platform topics are provisioned (the stream supervisor's deploy action, the local broker)."""

    partitions: int = Field(ge=1)
    replication_factor: int = Field(ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    # The input topics carry raw events (card data arrives there before masking): kept no longer
    # than replay after an outage needs. The outputs (alerts, dead letters) are masked.
    # None: no deletion by time (the local broker: replayed days carry past produce times).
    input_retention_hours: int | None = Field(default=None, ge=1)
    output_retention_hours: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _isr_fits(self) -> TopicSettings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError("min_insync_replicas must not exceed replication_factor")
        return self


class KafkaConfig(_Section):
    bootstrap_servers: NonEmpty
    security: Literal["plaintext", "iam"]
    transactions_topic: NonEmpty
    fraud_signals_topic: NonEmpty
    fraud_alerts_topic: NonEmpty
    dead_letter_topic: NonEmpty
    # The Airflow connection of the Kafka provider's hooks (topic provisioning, lag).
    connection_id: NonEmpty
    topics: TopicSettings
    embedded_broker: bool = False

    @property
    def input_topics(self) -> tuple[str, str]:
        return (self.transactions_topic, self.fraud_signals_topic)

    @property
    def output_topics(self) -> tuple[str, str]:
        return (self.fraud_alerts_topic, self.dead_letter_topic)


class CatalogConfig(_Section):
    kind: Literal["embedded", "glue"]
    database: NonEmpty
    embedded_path: str | None = None
    athena_workgroup: str | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> CatalogConfig:
        if self.kind == "embedded" and not self.embedded_path:
            raise ValueError("kind 'embedded' needs 'embedded_path'")
        if self.kind == "glue" and not self.athena_workgroup:
            raise ValueError("kind 'glue' needs 'athena_workgroup'")
        return self


class QualityConfig(_Section):
    engine: Literal["duckdb", "spark"]
    contracts_dir: NonEmpty


class NotifierConfig(_Section):
    kind: Literal["log", "sns"]
    log_path: str | None = None
    sns_topic_arn: str | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> NotifierConfig:
        if self.kind == "log" and not self.log_path:
            raise ValueError("kind 'log' needs 'log_path'")
        if self.kind == "sns" and not self.sns_topic_arn:
            raise ValueError("kind 'sns' needs 'sns_topic_arn'")
        return self


class PoolConfig(_Section):
    slots: int = Field(ge=1)
    description: NonEmpty


class OrchestrationConfig(_Section):
    """How Airflow retries tasks here: minutes on AWS, seconds on a laptop."""

    retry_delay_seconds: int = Field(ge=1)
    sensor_poke_seconds: int = Field(ge=1)
    # The Airflow pools the DAGs use, as the deploy creates them (scripts/deploy.py, MWAA's
    # InvokeRestApi). Locally airflow_settings.yaml creates them (scripts/setup.sh).
    pools: dict[str, PoolConfig] = Field(default_factory=dict)


class ValidationConfig(_Section):
    """Event-time bounds the batch and stream jobs get as arguments (spark_apps.validation.EventTimeBounds,
    spark_apps.streaming.transforms.StreamSettings): an event more than ``max_clock_skew_seconds`` after
    the run's time (batch) or its Kafka produce time (stream) is in the future; a batch record more than
    ``drop_date_tolerance_hours`` outside the drop's date is outside it. Both are quarantined."""

    max_clock_skew_seconds: int = Field(default=300, ge=0)
    drop_date_tolerance_hours: int = Field(default=48, ge=0)


class Profile(_Section):
    name: Literal["local", "aws"]
    aws_conn_id: str | None = None
    region: str | None = None
    lake: LakeConfig
    spark: SparkConfig
    kafka: KafkaConfig
    catalog: CatalogConfig
    quality: QualityConfig
    notifier: NotifierConfig
    orchestration: OrchestrationConfig
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    secrets: dict[str, str] = Field(default_factory=dict)


_ENV_REFERENCE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def _expand(value: Any, env: dict[str, str], path: str = "") -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) not in env:
                raise ProfileError(f"{path}: environment variable {match.group(1)} is not set")
            return env[match.group(1)]

        return _ENV_REFERENCE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "missing required key"
    elif error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{path}: {message}" if path else message


def parse_profile(text: str, source: str, project_root: str | None = None) -> Profile:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise ProfileError(f"profile {source}: must be a mapping of sections")
    root = project_root or os.environ.get("PROJECT_ROOT") or str(PROJECT_ROOT)
    defaults = {
        "PAYMENTS_LOCAL_DIR": f"{root}/.local",
        "PAYMENTS_JVM_DIR": f"{root}/.local/jvm",
        "PAYMENTS_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    }
    env = {**defaults, **os.environ, "PROJECT_ROOT": root}
    try:
        expanded = _expand(document, env)
    except ProfileError as exc:
        raise ProfileError(f"profile {source}: {exc}") from None
    try:
        return Profile.model_validate(expanded)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ProfileError(f"profile {source}: {problems}") from None


def profile_path(name: str) -> Path:
    return PROFILES_DIR / f"{name}.yaml"


@functools.cache
def load_profile(name: str) -> Profile:
    path = profile_path(name)
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ProfileError(f"{PROFILE_ENV_VAR}={name!r}: no profile file {path} (available: {available})")
    return parse_profile(path.read_text(), source=str(path))


def get_profile() -> Profile:
    """The profile selected by ``PAYMENTS_PROFILE`` (default ``local``)."""
    return load_profile(os.environ.get(PROFILE_ENV_VAR) or DEFAULT_PROFILE)
