"""Fixtures of the moto tests: the ``aws`` profile against mocked AWS APIs."""

from __future__ import annotations

import json
import re

import pytest
from moto import mock_aws

from payments_platform.profiles import load_profile
from tests.aws.helpers import REGION


class _ReleaseAwareRe:
    """moto 5.2.5 only knows ``emr-X.Y.0-*`` release labels, not the newer ``emr-spark-8.0.0-*``."""

    def __getattr__(self, name):
        return getattr(re, name)

    def match(self, pattern, string, *args):
        return re.match(r"emr-spark-\d+\.\d+\.\d+-(latest|\d{8})", string) or re.match(pattern, string, *args)


def _tagging_from_xml(self) -> dict[str, str]:
    """moto 5.2.5 fails on an empty ``TagSet``; S3 accepts it (it clears the object's tags)."""
    import xmltodict

    tag_set = xmltodict.parse(self.body, force_list={"Tag": True})["Tagging"]["TagSet"] or {}
    return {tag["Key"]: tag["Value"] or "" for tag in tag_set.get("Tag", [])}


@pytest.fixture
def aws(monkeypatch, aws_profile_env):
    """The aws profile (``load_profile("aws")``) with every AWS API mocked by moto."""
    import moto.emrcontainers.models
    import moto.s3.responses

    monkeypatch.setattr(moto.emrcontainers.models, "re", _ReleaseAwareRe())
    monkeypatch.setattr(moto.s3.responses.S3Response, "_tagging_from_xml", _tagging_from_xml)
    monkeypatch.setenv("PAYMENTS_PROFILE", "aws")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}))
    load_profile.cache_clear()
    with mock_aws():
        yield load_profile("aws")
    load_profile.cache_clear()
