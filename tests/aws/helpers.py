"""Helpers of the moto tests: recorded requests and an EMR on EKS virtual cluster."""

from __future__ import annotations

import json

import boto3

REGION = "eu-west-1"


def capture(client, operation: str) -> list[dict]:
    """Record the parameters of every ``operation`` call made through ``client``."""
    calls: list[dict] = []
    client.meta.events.register(
        f"provide-client-params.*.{operation}", lambda params, **_: calls.append(json.loads(json.dumps(params, default=repr)))
    )
    return calls


def virtual_cluster() -> str:
    """A moto EMR on EKS virtual cluster's id."""
    emr = boto3.client("emr-containers", region_name=REGION)
    return emr.create_virtual_cluster(
        name="payments", containerProvider={"id": "eks", "type": "EKS", "info": {"eksInfo": {"namespace": "emr"}}}
    )["id"]
