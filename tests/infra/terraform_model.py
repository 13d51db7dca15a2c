"""A read-only model of infra/terraform parsed with python-hcl2, for the HCL assertions.

Strings come back without quotes; expressions come back as ``${...}`` text, which the
tests compare literally (no Terraform evaluation happens here).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = PROJECT_ROOT / "infra" / "terraform"
MODULES_ROOT = TERRAFORM_ROOT / "modules"
ENVS_ROOT = TERRAFORM_ROOT / "envs"
MODULE_NAMES = ("network", "kms", "lake", "msk", "compute", "catalog", "airflow", "alerting", "secrets", "audit")
ENV_NAMES = ("dev", "prod")

_OPTIONS = SerializationOptions(strip_string_quotes=True, with_comments=False)
_INTERPOLATION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)


def parse_hcl(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=_OPTIONS)


@functools.cache
def parse_file(path: Path) -> dict[str, Any]:
    return parse_hcl(path.read_text())


def expression(value: Any) -> str:
    """``${expr}`` text as ``expr``; other values unchanged (as text)."""
    text = str(value)
    match = _INTERPOLATION.match(text)
    return match.group(1) if match else text


@dataclass(frozen=True)
class Block:
    """One resource / data block of a directory."""

    directory: Path
    kind: str  # "resource" or "data"
    type: str
    name: str
    body: dict[str, Any]

    @property
    def address(self) -> str:
        where = self.directory.relative_to(TERRAFORM_ROOT).as_posix()
        prefix = "data." if self.kind == "data" else ""
        return f"{where}:{prefix}{self.type}.{self.name}"


def _blocks(document: dict[str, Any], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for entry in document.get(kind, []):
        for block_type, named in entry.items():
            for name, body in named.items():
                yield block_type, name, body


@functools.cache
def directory_document(directory: Path) -> dict[str, list[Any]]:
    """Top-level blocks of every .tf file in ``directory`` merged by block kind."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for kind, entries in parse_file(path).items():
            if isinstance(entries, list):
                merged.setdefault(kind, []).extend(entries)
    return merged


def blocks(directory: Path, kind: str = "resource") -> list[Block]:
    return [Block(directory, kind, t, n, body) for t, n, body in _blocks(directory_document(directory), kind)]


def all_directories() -> list[Path]:
    return [MODULES_ROOT / name for name in MODULE_NAMES] + [ENVS_ROOT / name for name in ENV_NAMES]


def all_blocks(block_type: str, kind: str = "resource") -> list[Block]:
    return [block for directory in all_directories() for block in blocks(directory, kind) if block.type == block_type]


def block(directory: Path, block_type: str, name: str, kind: str = "resource") -> Block:
    for candidate in blocks(directory, kind):
        if candidate.type == block_type and candidate.name == name:
            return candidate
    raise LookupError(f"{directory}: no {kind} {block_type}.{name}")


def locals_of(directory: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in directory_document(directory).get("locals", []):
        merged.update({k: v for k, v in entry.items() if k != "__is_block__"})
    return merged


def variables_of(directory: Path) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for entry in directory_document(directory).get("variable", []):
        merged.update(entry)
    return merged


def outputs_of(directory: Path) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for entry in directory_document(directory).get("output", []):
        merged.update(entry)
    return merged


def modules_of(directory: Path) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for entry in directory_document(directory).get("module", []):
        merged.update(entry)
    return merged


def as_list(value: Any) -> list[Any]:
    """HCL repeated blocks come back as a list, a single block as a dict."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_statements(document: Block) -> list[dict[str, Any]]:
    """Statements of an ``aws_iam_policy_document``, static and ``dynamic "statement"`` content alike."""
    statements = list(as_list(document.body.get("statement")))
    for dynamic in as_list(document.body.get("dynamic")):
        for label, spec in dynamic.items():
            if label == "statement":
                statements.extend(as_list(spec.get("content")))
    return statements
