"""Where the JVM manifest's jars are (DESIGN decision 9).

``scripts/setup.sh`` resolves ``jvm/pom.xml`` (through ``scripts/jvm_jars.sh``) into
``$PAYMENTS_JVM_DIR`` (default ``<repo>/.local/jvm``), one folder per module:
``spark/`` (Spark's Kafka connector, MSK IAM auth: ``spark.jars`` of local sessions) and
``broker/`` (the local Apache Kafka broker). The EMR on EKS image carries the ``spark``
module's jars in :data:`IMAGE_SPARK_JARS_DIR`, put there by the Dockerfile with the
same script and manifest.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[1])
JVM_DIR_ENV = "PAYMENTS_JVM_DIR"
IMAGE_SPARK_JARS_DIR = "/opt/payments/jars/spark"


class JarsMissing(RuntimeError):
    """The manifest's jars were not resolved on this machine."""


def jvm_dir() -> Path:
    return Path(os.environ.get(JVM_DIR_ENV) or PROJECT_ROOT / ".local" / "jvm")


def module_jars(module: str, root: Path | None = None) -> list[str]:
    """The jars of one manifest module, sorted by file name."""
    folder = (root or jvm_dir()) / module
    jars = sorted(str(path) for path in folder.glob("*.jar"))
    if not jars:
        raise JarsMissing(f"no jars in {folder}: run `bash scripts/setup.sh` (it resolves jvm/pom.xml with Maven)")
    return jars


def classpath(module: str, root: Path | None = None) -> str:
    return os.pathsep.join(module_jars(module, root))


def spark_jars_conf(root: Path | None = None) -> dict[str, str]:
    """``spark.jars`` for a Spark session on this machine: the ``spark`` module's jars."""
    return {"spark.jars": ",".join(module_jars("spark", root))}
