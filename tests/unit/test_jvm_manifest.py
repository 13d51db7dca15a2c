"""The JVM side: one manifest (jvm/), resolved the same way locally and into the EMR image."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import yaml

from spark_apps.jvm import IMAGE_SPARK_JARS_DIR, module_jars
from tests.unit.test_packaging import LOCK, ROOT

POM = "{http://maven.apache.org/POM/4.0.0}"


def properties() -> dict[str, str]:
    root = ET.parse(ROOT / "jvm" / "pom.xml").getroot()
    return {child.tag.removeprefix(POM): child.text for child in root.find(f"{POM}properties")}


def jar_names(module: str) -> dict[str, str]:
    """artifact name -> version of the resolved jars of a module (name-version.jar)."""
    names = {}
    for jar in module_jars(module):
        match = re.fullmatch(r"(.+)-(\d[\w.\-]*)\.jar", Path(jar).name)
        names[match.group(1)] = match.group(2)
    return names


def test_the_kafka_connector_is_built_for_the_pinned_pyspark():
    assert properties()["spark.version"] == LOCK["pyspark"]
    assert jar_names("spark")["spark-sql-kafka-0-10_2.13"] == LOCK["pyspark"]


def test_the_broker_and_sparks_kafka_client_are_the_kafka_line_msk_runs():
    kafka = properties()["kafka.version"]
    assert jar_names("broker")["kafka_2.13"] == kafka
    assert jar_names("spark")["kafka-clients"] == kafka  # Spark 4.0.2 is built against Kafka 3.9.1
    msk = (ROOT / "infra/terraform/modules/msk/variables.tf").read_text()
    default = re.search(r'variable "kafka_version" \{.*?default\s*=\s*"([^"]+)"', msk, re.DOTALL).group(1)
    assert default == ".".join(kafka.split(".")[:2]) + ".x.kraft"  # MSK's KRaft 3.9 line


def test_the_spark_jars_add_nothing_spark_already_ships():
    """A second copy of a Spark dependency (another Jackson, Hadoop, Netty...) on the classpath is
    a class-loading lottery: the manifest excludes what pyspark's jars (and EMR's Spark) carry."""
    import pyspark

    shipped = {
        re.fullmatch(r"(.+)-\d[\w.\-]*\.jar", p.name).group(1) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")
    }
    overlap = set(jar_names("spark")) & shipped
    assert overlap <= {"annotations"}, overlap  # software.amazon.awssdk:annotations is not org.jetbrains:annotations


def test_the_image_and_the_local_setup_resolve_the_same_module_with_the_same_script():
    dockerfile = (ROOT / "Dockerfile").read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "COPY jvm /build/jvm" in dockerfile and "COPY scripts/jvm_jars.sh" in dockerfile
    image_dir = IMAGE_SPARK_JARS_DIR.rsplit("/", 1)[0]
    assert f"RUN bash scripts/jvm_jars.sh {image_dir} spark" in dockerfile
    assert f"COPY --from=jvm {IMAGE_SPARK_JARS_DIR} {IMAGE_SPARK_JARS_DIR}" in dockerfile
    assert 'bash scripts/jvm_jars.sh "$JVM_DIR" spark broker' in setup
    aws = yaml.safe_load((ROOT / "include/profiles/aws.yaml").read_text())
    assert aws["spark"]["jars_dir"] == IMAGE_SPARK_JARS_DIR


def test_the_stream_operators_are_in_the_spark_jars():
    (jar,) = [j for j in module_jars("spark") if Path(j).name.startswith("payments-stream-ops-")]
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    for cls in ("StreamOps", "TxnSignalsProcessor", "CardRulesProcessor", "UserRulesProcessor"):
        assert f"io/payments/stream/{cls}.class" in names
    assert not any(name.startswith("org/apache/spark/") for name in names)  # Spark itself is provided


def test_every_jvm_version_is_pinned_in_the_manifest():
    """No version ranges, no LATEST/RELEASE, no SNAPSHOT anywhere in the manifest's POMs."""
    for pom in (ROOT / "jvm").rglob("pom.xml"):
        if "target" in pom.parts:
            continue
        for version in ET.parse(pom).getroot().iter(f"{POM}version"):
            text = version.text or ""
            assert not re.search(r"[\[\(,]|LATEST|RELEASE|SNAPSHOT", text), f"{pom}: {text}"
