"""The one card-data scanner of the tests (issue 22): every output of a generated day goes through it.

What it reports (a "finding"):

* a Luhn-valid card number of 13-19 digits, written as one run of digits or in groups of 1-6
  digits separated by single spaces or dashes (``4111 1111 1111 1111``, ``4111-1111-1111-1111``,
  ``3782 822463 10005``, mixed). Any run of consecutive groups is checked, so a number next to
  other digit groups (``4111 1111 1111 1111 2026``) is found too. Not reported, because no card
  number looks like them: digits glued to letters or following a decimal point (hex digests,
  base64 tokens, the fraction of a float), a leading 0, and 13/16/19-digit numbers starting with
  1 (epoch milli-, micro- and nanoseconds);
* a CVV by name with a value: ``"cvv": "123"``, ``CVC=123``, ``cvv2: 123``, ``security_code 123``;
* in Parquet, a column whose name looks like a CVV, and a JSON text holding a CVV-like key.

What it reads (:func:`scan_tree`): every file under a folder. Parquet is read column by column;
Kafka log segments (``<topic>-<partition>/*.log``) are decoded record batch by record batch (lz4,
gzip or uncompressed, as Kafka writes them), so the topics a test leaves on disk are scanned as
messages; Spark's LZ4 block streams (state store changelogs), gzip files and zip archives are
decompressed; everything else is read as bytes (SQLite databases, logs, JSON, HTML). RocksDB
SST blocks inside state snapshots stay compressed: a state store holds masked rows only.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

# A maximal run of digit groups joined by single spaces or dashes, not glued to letters, and not
# the fraction (after ".") or the integer part (before ".digit") of a decimal number.
DIGIT_GROUPS = re.compile(r"(?<![0-9A-Za-z.])[0-9]+(?:[ -][0-9]+)*(?![0-9A-Za-z]|\.[0-9])")
MAX_GROUP_IN_A_GROUPED_NUMBER = 6  # "20261121-000000123" (8 + 9 digits) is an id, not a card number
CVV_NAME = re.compile(r"cvv|cvc|cid|security_code", re.IGNORECASE)
CVV_IN_TEXT = re.compile(
    r"""(?<![A-Za-z0-9])["']?(cvv2?|cvc2?|cvn|csc|security[ _-]?code)["']?(?:\s*[:=]\s*|\s+)["']?[0-9]{3,4}(?![0-9])""",
    re.IGNORECASE,
)


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _could_be_a_card(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or digits[0] == "0":
        return False
    if digits[0] == "1" and len(digits) in (13, 16, 19):  # epoch ms / us / ns
        return False
    return luhn_valid(digits)


def _cards_from(groups: list[str], start: int) -> list[tuple[int, int]]:
    """(first, last) group of every card number that starts at group ``start`` of a grouped number."""
    found, digits = [], ""
    for end in range(start, len(groups)):
        if len(groups[end]) > MAX_GROUP_IN_A_GROUPED_NUMBER and end > start:
            break
        digits += groups[end]
        if len(digits) > 19:
            break
        if _could_be_a_card(digits):
            found.append((start, end))
        if end == start and len(groups[end]) > MAX_GROUP_IN_A_GROUPED_NUMBER:
            break
    return found


def card_numbers_in(text: str) -> list[str]:
    """Every Luhn-valid card number in ``text``, as written (separators included)."""
    found = []
    for match in DIGIT_GROUPS.finditer(text):
        written = match.group(0)
        groups = re.split(r"[ -]", written)
        if len(groups) == 1:
            if _could_be_a_card(written):
                found.append(written)
            continue
        offsets = [0]
        for group in groups[:-1]:
            offsets.append(offsets[-1] + len(group) + 1)
        for start in range(len(groups)):
            found += [written[offsets[first] : offsets[last] + len(groups[last])] for first, last in _cards_from(groups, start)]
    return found


def _redacted(number: str) -> str:
    return f"{number[:4]}...{number[-4:]} ({len(re.sub('[^0-9]', '', number))} digits)"


def findings_in_text(text: str, where: str) -> list[str]:
    found = [f"{where}: Luhn-valid card number {_redacted(n)}" for n in card_numbers_in(text)]
    found += [f"{where}: CVV value in text ({m.group(1)})" for m in CVV_IN_TEXT.finditer(text)]
    return found


def findings_in_bytes(data: bytes, where: str) -> list[str]:
    return findings_in_text(data.decode("latin-1"), where)


def _strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    return [str(value)]


def findings_in_values(values: Iterable, where: str) -> list[str]:
    """Findings in any values (Kafka messages, rows as dicts, ...), JSON texts parsed for CVV keys."""
    findings: list[str] = []
    for value in values:
        for text in _strings(value):
            findings += findings_in_text(text, where)
            if text.startswith("{"):
                try:
                    payload = json.loads(text)
                except json.JSONDecodeError:
                    continue
                if isinstance(payload, dict):
                    findings += [
                        f"{where}: CVV-like key {k}={v!r}"
                        for k, v in payload.items()
                        if CVV_NAME.search(k) and v not in (None, "***")
                    ]
    return findings


# --- Kafka log segments (record batch format v2, magic 2) ------------------------------------------

_BATCH_HEADER = struct.Struct(">qiiBIhiqqqhii")  # offset, length, epoch, magic, crc, attributes, ... record count


def kafka_segment_records(data: bytes) -> Iterator[bytes]:
    """The (decompressed) records section of every record batch of a Kafka ``.log`` segment."""
    position = 0
    while position + _BATCH_HEADER.size <= len(data):
        _offset, length, _epoch, magic, _crc, attributes, *_rest = _BATCH_HEADER.unpack_from(data, position)
        end = position + 12 + length
        if length <= 0 or end > len(data):
            break  # preallocated tail
        if magic != 2:
            raise ValueError(f"Kafka record batch magic {magic}: only v2 is decoded")
        records = data[position + _BATCH_HEADER.size : end]
        codec = attributes & 0x7
        if codec == 0:
            yield records
        elif codec == 1:
            yield gzip.decompress(records)
        elif codec == 3:
            import lz4.frame

            yield lz4.frame.decompress(records)
        else:
            raise ValueError(f"Kafka record batch compressed with codec {codec}: not decodable here")
        position = end


def _lz4_block_stream(data: bytes) -> bytes:
    """The content of an lz4-java LZ4BlockOutputStream (Spark's lz4 codec), block by block."""
    import lz4.block

    out = bytearray()
    position = 0
    while position + 21 <= len(data) and data[position : position + 8] == b"LZ4Block":
        token = data[position + 8]
        compressed, decompressed = struct.unpack_from("<ii", data, position + 9)
        block = data[position + 21 : position + 21 + compressed]
        if decompressed == 0:
            break  # end mark
        out += block if token & 0xF0 == 0x10 else lz4.block.decompress(block, uncompressed_size=decompressed)
        position += 21 + compressed
    return bytes(out)


def _is_kafka_segment(path: Path) -> bool:
    return path.suffix == ".log" and re.search(r"-[0-9]+$", path.parent.name) is not None and path.stem.isdigit()


def findings_in_file(path: Path) -> list[str]:
    where = str(path)
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        findings = [f"{path}: CVV-like column {name}" for name in table.column_names if CVV_NAME.search(name)]
        for name in table.column_names:
            findings += findings_in_values(table.column(name).to_pylist(), f"{path}:{name}")
        return findings
    data = path.read_bytes()
    if _is_kafka_segment(path):
        return [f for records in kafka_segment_records(data) for f in findings_in_bytes(records, where)]
    if data.startswith(b"LZ4Block"):
        return findings_in_bytes(_lz4_block_stream(data), where)
    if data.startswith(b"\x1f\x8b"):
        return findings_in_bytes(gzip.decompress(data), where)
    if data.startswith(b"PK\x03\x04"):
        findings = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                findings += findings_in_bytes(archive.read(name), f"{where}!{name}")
        return findings
    return findings_in_bytes(data, where)


def scan_tree(root: Path, exclude: Iterable[str] = ()) -> tuple[list[str], int]:
    """(findings, number of files scanned) for every file under ``root``, except those whose path
    relative to ``root`` starts with one of the ``exclude`` prefixes (``"raw/"``, ``"kafka/data/logs/payments.transactions-"``)."""
    prefixes = tuple(exclude)
    findings: list[str] = []
    scanned = 0
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        if prefixes and path.relative_to(root).as_posix().startswith(prefixes):
            continue
        scanned += 1
        findings += findings_in_file(path)
    return findings, scanned
