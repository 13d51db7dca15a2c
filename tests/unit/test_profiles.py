"""Runtime profiles: selection by PAYMENTS_PROFILE, expansion, and clear validation errors."""

from __future__ import annotations

import pytest
import yaml

from payments_platform.profiles import PROFILES_DIR, ProfileError, get_profile, load_profile, parse_profile


@pytest.fixture(autouse=True)
def fresh_cache():
    load_profile.cache_clear()
    yield
    load_profile.cache_clear()


def local_document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "local.yaml").read_text())


def test_local_is_the_default(monkeypatch):
    monkeypatch.delenv("PAYMENTS_PROFILE", raising=False)
    monkeypatch.delenv("PAYMENTS_LOCAL_DIR", raising=False)  # the tests' own lake (conftest): the default here
    profile = get_profile()
    assert profile.name == "local"
    assert profile.spark.launcher == "local"
    assert profile.catalog.kind == "embedded"
    assert profile.lake.index_uri.endswith("/.local/lake/indexes")
    assert "${" not in profile.lake.index_uri


def test_aws_profile_reads_its_environment(monkeypatch, aws_profile_env):
    monkeypatch.setenv("PAYMENTS_PROFILE", "aws")
    profile = get_profile()
    assert profile.spark.launcher == "emr_on_eks"
    assert profile.spark.virtual_cluster_id == "vc0123456789abcdef"
    assert profile.lake.raw_uri == "s3://payments-raw-test/raw"
    assert profile.notifier.sns_topic_arn == aws_profile_env["PAYMENTS_ONCALL_TOPIC_ARN"]


def test_both_profiles_target_the_same_emr_release(aws_profile_env):
    assert load_profile("local").spark.release_label == load_profile("aws").spark.release_label == "emr-spark-8.0.0-20260421"


def test_unknown_profile_names_the_variable(monkeypatch):
    monkeypatch.setenv("PAYMENTS_PROFILE", "staging")
    with pytest.raises(ProfileError, match=r"PAYMENTS_PROFILE='staging': no profile file .*available: aws, local"):
        get_profile()


def test_unset_environment_variable_names_the_key(monkeypatch, aws_profile_env):
    monkeypatch.delenv("PAYMENTS_RAW_BUCKET", raising=False)
    with pytest.raises(ProfileError, match=r"lake\.raw_uri: environment variable PAYMENTS_RAW_BUCKET is not set"):
        parse_profile((PROFILES_DIR / "aws.yaml").read_text(), "aws.yaml")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["spark"].pop("release_label"), r"spark\.release_label: missing required key"),
        (lambda d: d["lake"].update(retention_days=0), r"lake\.retention_days: Input should be greater than or equal to 1"),
        (lambda d: d["kafka"].update(security="sasl"), r"kafka\.security: Input should be 'plaintext' or 'iam'"),
        (lambda d: d["catalog"].update(colour="blue"), r"catalog\.colour: unknown key"),
        (lambda d: d["spark"].pop("master"), r"spark: launcher 'local' needs 'master'"),
        (lambda d: d["notifier"].update(kind="sns"), r"notifier: kind 'sns' needs 'sns_topic_arn'"),
        (lambda d: d.pop("quality"), r"quality: missing required key"),
    ],
)
def test_malformed_profile_names_the_bad_key(mutate, message):
    document = local_document()
    mutate(document)
    with pytest.raises(ProfileError, match=message):
        parse_profile(yaml.safe_dump(document), "local.yaml")


def test_invalid_yaml_is_reported():
    with pytest.raises(ProfileError, match="not valid YAML"):
        parse_profile("lake: [unclosed", "broken.yaml")


def test_emr_launcher_requires_cluster_settings(aws_profile_env):
    document = yaml.safe_load((PROFILES_DIR / "aws.yaml").read_text())
    del document["spark"]["virtual_cluster_id"]
    with pytest.raises(ProfileError, match=r"spark: launcher 'emr_on_eks' needs 'virtual_cluster_id'"):
        parse_profile(yaml.safe_dump(document), "aws.yaml")


def test_spark_jobs_get_the_memory_the_volume_benchmark_measured(aws_profile_env):
    """docs/profiles.md "Job sizes": every daily job at 1 M transactions a day ran in one 4 GB JVM and
    not with a 1 GB driver; both profiles give the driver that, the aws profile its executors too."""
    local, aws = load_profile("local").spark.conf, load_profile("aws").spark.conf
    assert local["spark.driver.memory"] == aws["spark.driver.memory"] == "4g"
    assert (aws["spark.executor.memory"], aws["spark.executor.cores"]) == ("4g", "2")
