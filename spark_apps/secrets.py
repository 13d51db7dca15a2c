"""Resolve secret references from the runtime profile (``secrets.*`` values).

A reference is ``<scheme>:<name>``:

* ``env:NAME``            -- the environment variable NAME (local profile, tests);
* ``secretsmanager:ID``   -- AWS Secrets Manager secret ID (aws profile; SecretString);
* ``file:/path``          -- the file's content, stripped (mounted Kubernetes secrets).

Secrets never live in code or in the profile files themselves, only references do.
"""

from __future__ import annotations

import os
from pathlib import Path

PAN_TOKEN_KEY_ENV = "PAYMENTS_PAN_TOKEN_KEY"
DEFAULT_PAN_TOKEN_KEY_REF = f"env:{PAN_TOKEN_KEY_ENV}"


class SecretError(RuntimeError):
    """A secret reference is malformed or does not resolve to a non-empty value."""


def resolve_secret(reference: str, region: str | None = None) -> str:
    scheme, sep, name = (reference or "").partition(":")
    if not sep or not name:
        raise SecretError(f"secret reference {reference!r}: expected env:NAME, secretsmanager:ID or file:PATH")
    if scheme == "env":
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"secret {reference}: environment variable {name} is not set")
    elif scheme == "file":
        try:
            value = Path(name).read_text().strip()
        except OSError as exc:
            raise SecretError(f"secret {reference}: {exc}") from None
    elif scheme == "secretsmanager":
        import boto3

        client = boto3.client("secretsmanager", region_name=region) if region else boto3.client("secretsmanager")
        value = client.get_secret_value(SecretId=name).get("SecretString")
    else:
        raise SecretError(f"secret reference {reference!r}: unknown scheme {scheme!r}")
    if not value:
        raise SecretError(f"secret {reference}: empty value")
    return value


def pan_token_key(reference: str | None = None, region: str | None = None) -> bytes:
    """The HMAC key for card tokens, from ``reference`` (default ``env:PAYMENTS_PAN_TOKEN_KEY``)."""
    return resolve_secret(reference or DEFAULT_PAN_TOKEN_KEY_REF, region).encode("utf-8")
