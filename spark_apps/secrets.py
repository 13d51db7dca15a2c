"""Resolve secret references from the runtime profile (``secrets.*`` values), and the PAN token keyring.

A reference is ``<scheme>:<name>``:

* ``env:NAME``            -- the environment variable NAME (local profile, tests);
* ``secretsmanager:ID``   -- AWS Secrets Manager secret ID (aws profile; SecretString);
* ``file:/path``          -- the file's content, stripped (mounted Kubernetes secrets).

Secrets never live in code or in the profile files themselves, only references do.

PAN token keys are versioned (docs/security.md). The value behind ``secrets.pan_token_key`` is
one of:

* a JSON keyring ``{"current": "v2", "keys": {"v1": "<key>", "v2": "<key>"}}`` -- the dual-key
  period of a rotation: tokens are computed under ``current``; the other versions are kept only
  to build the old -> new token map (spark_apps.jobs.retokenize);
* ``v2:<key>`` -- one key and its version;
* ``<key>`` -- one key of version ``v1`` (the form every key had before versions existed).

Every key must be at least :data:`MIN_PAN_TOKEN_KEY_BYTES` bytes (UTF-8): a shorter one is refused.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

PAN_TOKEN_KEY_ENV = "PAYMENTS_PAN_TOKEN_KEY"
DEFAULT_PAN_TOKEN_KEY_REF = f"env:{PAN_TOKEN_KEY_ENV}"
MIN_PAN_TOKEN_KEY_BYTES = 32
DEFAULT_PAN_TOKEN_KEY_VERSION = "v1"
KEY_VERSION_PATTERN = re.compile(r"^v[1-9][0-9]{0,5}$")
_VERSIONED_VALUE = re.compile(r"^(v[1-9][0-9]{0,5}):(.+)$", re.DOTALL)


class SecretError(RuntimeError):
    """A secret reference is malformed or does not resolve to a non-empty value."""


class PanTokenKeyError(SecretError, ValueError):
    """A PAN token key or keyring is unusable: too short, badly versioned or malformed."""


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


def check_pan_token_key(material: bytes, version: str = DEFAULT_PAN_TOKEN_KEY_VERSION) -> bytes:
    """``material`` if it is a usable HMAC key of ``version``; else PanTokenKeyError saying why."""
    if not KEY_VERSION_PATTERN.match(version or ""):
        raise PanTokenKeyError(f"PAN token key version {version!r}: expected v1, v2, ...")
    if not material:
        raise PanTokenKeyError(f"the PAN token key {version} is empty")
    if len(material) < MIN_PAN_TOKEN_KEY_BYTES:
        raise PanTokenKeyError(
            f"the PAN token key {version} is {len(material)} bytes; at least {MIN_PAN_TOKEN_KEY_BYTES} are required "
            "(generate one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return material


class PanTokenKey(bytes):
    """The bytes of one HMAC key plus its ``version`` (tokens carry it: ``tok_<version>_...``).

    A bytes subclass, so code that takes a plain key keeps working; plain bytes are version v1."""

    version: str

    def __new__(cls, material: bytes, version: str = DEFAULT_PAN_TOKEN_KEY_VERSION) -> PanTokenKey:
        key = super().__new__(cls, check_pan_token_key(bytes(material), version))
        key.version = version
        return key

    def __repr__(self) -> str:  # never print key material
        return f"PanTokenKey(version={self.version!r}, {len(self)} bytes)"

    __str__ = __repr__


@dataclass(frozen=True)
class PanTokenKeyring:
    """Every key version a job may need: ``current`` tokenizes, the others only map old tokens."""

    current: str
    keys: dict[str, PanTokenKey]

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise PanTokenKeyError(f"PAN token keyring: current version {self.current!r} has no key")

    @property
    def current_key(self) -> PanTokenKey:
        return self.keys[self.current]

    @property
    def previous(self) -> dict[str, PanTokenKey]:
        """The versions kept for re-tokenization (all but the current one)."""
        return {version: key for version, key in sorted(self.keys.items()) if version != self.current}

    def __repr__(self) -> str:
        return f"PanTokenKeyring(current={self.current!r}, versions={sorted(self.keys)})"


def parse_pan_token_keyring(value: str) -> PanTokenKeyring:
    """The keyring of a secret value (JSON keyring, ``vN:<key>`` or a bare ``<key>`` = v1)."""
    text = (value or "").strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise PanTokenKeyError("PAN token keyring: not valid JSON") from None  # no key text in the message
        keys = document.get("keys") if isinstance(document, dict) else None
        current = document.get("current") if isinstance(document, dict) else None
        if not isinstance(keys, dict) or not keys or not isinstance(current, str):
            raise PanTokenKeyError('PAN token keyring: expected {"current": "vN", "keys": {"vN": "<key>", ...}}')
        if not all(isinstance(k, str) for k in keys.values()):
            raise PanTokenKeyError("PAN token keyring: every key must be a string")
        return PanTokenKeyring(current, {version: PanTokenKey(k.encode("utf-8"), version) for version, k in keys.items()})
    match = _VERSIONED_VALUE.match(text)
    version, material = (match.group(1), match.group(2)) if match else (DEFAULT_PAN_TOKEN_KEY_VERSION, text)
    return PanTokenKeyring(version, {version: PanTokenKey(material.encode("utf-8"), version)})


def pan_token_keyring(reference: str | None = None, region: str | None = None) -> PanTokenKeyring:
    """Every PAN token key version behind ``reference`` (default ``env:PAYMENTS_PAN_TOKEN_KEY``)."""
    return parse_pan_token_keyring(resolve_secret(reference or DEFAULT_PAN_TOKEN_KEY_REF, region))


def pan_token_key(reference: str | None = None, region: str | None = None) -> PanTokenKey:
    """The current HMAC key for card tokens (with its version), from ``reference``
    (default ``env:PAYMENTS_PAN_TOKEN_KEY``). Refuses keys shorter than 32 bytes."""
    return pan_token_keyring(reference, region).current_key
