"""Scan written files for card data in clear: Luhn-valid 13-19 digit numbers and CVV-like fields."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
CVV_NAME = re.compile(r"cvv|cvc|cid|security_code", re.IGNORECASE)
CVV_IN_TEXT = re.compile(r"\"(cvv|cvc|cvv2|security_code)\"\s*:\s*\"?[0-9]{3,4}", re.IGNORECASE)


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def findings_in_text(text: str, where: str) -> list[str]:
    found = [
        f"{where}: Luhn-valid number {m.group(0)[:4]}...{m.group(0)[-4:]}"
        for m in DIGIT_RUN.finditer(text)
        if luhn_valid(m.group(0))
    ]
    found += [f"{where}: CVV value in text" for _ in CVV_IN_TEXT.finditer(text)]
    return found


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def scan_tree(root: Path) -> tuple[list[str], int]:
    """(findings, number of files scanned) for every file under ``root``."""
    findings: list[str] = []
    scanned = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        scanned += 1
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            findings += [f"{path}: CVV-like column {name}" for name in table.column_names if CVV_NAME.search(name)]
            for name in table.column_names:
                for value in table.column(name).to_pylist():
                    for text in _strings(value):
                        findings += findings_in_text(text, f"{path}:{name}")
                        if text.startswith("{"):
                            try:
                                payload = json.loads(text)
                            except json.JSONDecodeError:
                                continue
                            if isinstance(payload, dict):
                                findings += [
                                    f"{path}:{name}: CVV-like key {k}={v!r}"
                                    for k, v in payload.items()
                                    if CVV_NAME.search(k) and v not in (None, "***")
                                ]
        else:
            findings += findings_in_text(path.read_bytes().decode("latin-1"), str(path))
    return findings, scanned
