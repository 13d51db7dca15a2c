"""PII masking (DESIGN decision 7), shared by the batch index job and the stream (docs/security.md).

Column functions (pure, null-safe, Spark SQL expressions only: no Python UDF, no higher-order
function, so the stream plan stays in generated code on the JVM):

* :func:`card_last4_col`   -- last four digits of a valid PAN (12-19 digits after removing spaces/dashes);
* :func:`card_token_col`   -- ``tok_<version>_`` + base64url(HMAC-SHA256(key, normalized PAN)), computed
  inside the JVM (sha2 over ipad/opad, RFC 2104) so it is fast and equal to Python's
  ``hmac.new(key, pan, sha256)``; base64url keeps long digit runs out of tokens. The token
  carries the key's version (``tok_v1_...``), so tokens of two keys never compare equal by
  accident and a rotation can be tracked row by row (:func:`token_version_col`). The pads
  are key material, so they are never plan literals (``explain``, the Spark UI and event
  logs would show them): :func:`with_hmac_pads` joins them in from a one-row broadcast
  relation, whose rows plans do not print;
* :func:`expiry_masked_col` -- ``MM/**`` (year hidden);
* :func:`ip_masked_col`    -- the IPv4 /24 or IPv6 /48 network (compressed IPv6 forms understood;
  an IPv4-mapped IPv6 address is reduced as its IPv4 address);
* :func:`mask_card_numbers_col` -- free text with every card-number-like digit run (12+ digits,
  contiguous or in groups separated by single spaces or dashes) reduced to ``[pan ****1234]``.

:func:`with_masked_card_fields` replaces pan/cvv/expiry/ip by those columns (cvv is dropped) and
masks card numbers typed into ``device_id``.
:func:`mask_payload_text_col` and :func:`masked_payload_json_col` build quarantine and
dead-letter payloads with no card number, CVV, full expiry or full IP address in clear.

Re-tokenization after a key rotation (:func:`token_map`, :func:`retokenized`): see
spark_apps.jobs.retokenize and docs/security.md for what it can and cannot do.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_apps.schemas import CARD_FIELDS, RAW_TRANSACTION_FIELDS
from spark_apps.secrets import DEFAULT_PAN_TOKEN_KEY_VERSION, KEY_VERSION_PATTERN, PanTokenKeyring, check_pan_token_key

PAN_PATTERN = r"^[0-9]{12,19}$"
TOKEN_PREFIX = "tok_"
_BLOCK = 64  # SHA-256 block size in bytes
_DIGEST_TEXT = r"[A-Za-z0-9_-]{43}"  # base64url of a 32-byte digest, unpadded
TOKEN_PATTERN = rf"^tok_(v[1-9][0-9]*)_{_DIGEST_TEXT}$"
LEGACY_TOKEN_PATTERN = rf"^tok_{_DIGEST_TEXT}$"  # before versions: every such token is a v1 token


def normalized_pan_col(pan: Column) -> Column:
    """The PAN without spaces and dashes (``translate`` deletes them: no regex per row)."""
    return F.translate(pan, " -", "")


def valid_pan_col(pan: Column) -> Column:
    """True if the PAN is 12-19 digits once spaces and dashes are removed; null if pan is null."""
    return normalized_pan_col(pan).rlike(PAN_PATTERN)


def card_last4_col(pan: Column) -> Column:
    normalized = normalized_pan_col(pan)
    return F.when(normalized.rlike(PAN_PATTERN), F.substring(normalized, -4, 4))


def key_version(key: bytes) -> str:
    """The version a key's tokens carry: ``key.version`` of a secrets.PanTokenKey, else v1."""
    version = getattr(key, "version", DEFAULT_PAN_TOKEN_KEY_VERSION)
    if not KEY_VERSION_PATTERN.match(version):
        raise ValueError(f"PAN token key version {version!r}: expected v1, v2, ...")
    return version


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    key = check_pan_token_key(bytes(key), key_version(key))  # refuses an empty or short (< 32 bytes) key
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


INNER_PAD_COLUMN = "_hmac_inner_pad"
OUTER_PAD_COLUMN = "_hmac_outer_pad"


def with_hmac_pads(key: bytes, suffix: str = ""):
    """Transformation adding the key's HMAC pads as two binary columns (``_hmac_inner_pad<suffix>``,
    ``_hmac_outer_pad<suffix>``), from a one-row broadcast relation (not literals: plans print
    literals, not a relation's rows). Refuses a key shorter than 32 bytes."""
    inner_pad, outer_pad = _hmac_pads(key)
    inner_name, outer_name = INNER_PAD_COLUMN + suffix, OUTER_PAD_COLUMN + suffix

    def transform(df: DataFrame) -> DataFrame:
        import pyarrow as pa

        # From Arrow the rows are a local relation in the JVM; from a Python list they were an RDD
        # whose every broadcast (each stream micro-batch) started Python workers (~0.8 s per batch).
        pads = pa.table({inner_name: pa.array([inner_pad], pa.binary()), outer_name: pa.array([outer_pad], pa.binary())})
        pads_df = df.sparkSession.createDataFrame(pads, f"{inner_name} binary, {outer_name} binary")
        return df.crossJoin(F.broadcast(pads_df))

    return transform


def hmac_sha256_hex_col(message: Column, inner_pad: Column, outer_pad: Column) -> Column:
    """HMAC-SHA256 of the UTF-8 bytes of ``message`` as lowercase hex (null in, null out),
    from the key's pads (:func:`with_hmac_pads`)."""
    inner = F.unhex(F.sha2(F.concat(inner_pad, message.cast("binary")), 256))
    return F.sha2(F.concat(outer_pad, inner), 256)


def card_token_col(pan: Column, version: str = DEFAULT_PAN_TOKEN_KEY_VERSION, suffix: str = "") -> Column:
    """``tok_<version>_<base64url HMAC-SHA256>`` of the normalized PAN; null for a null or invalid PAN.
    Needs the pad columns of :func:`with_hmac_pads` (same ``suffix``) of the key of ``version``."""
    if not KEY_VERSION_PATTERN.match(version):
        raise ValueError(f"PAN token key version {version!r}: expected v1, v2, ...")
    normalized = normalized_pan_col(pan)
    digest = F.unhex(hmac_sha256_hex_col(normalized, F.col(INNER_PAD_COLUMN + suffix), F.col(OUTER_PAD_COLUMN + suffix)))
    # base64 of the 32-byte digest is always 44 characters ending in exactly one "=": keep 43.
    urlsafe = F.substring(F.translate(F.base64(digest), "+/", "-_"), 1, 43)
    return F.when(normalized.rlike(PAN_PATTERN), F.concat(F.lit(f"{TOKEN_PREFIX}{version}_"), urlsafe))


def token_version_col(token: Column) -> Column:
    """The key version of a card token (``v2`` of ``tok_v2_...``; ``v1`` for a token written before
    versions existed, ``tok_<43 characters>``); null for null or anything else."""
    return F.when(token.rlike(TOKEN_PATTERN), F.regexp_extract(token, TOKEN_PATTERN, 1)).when(
        token.rlike(LEGACY_TOKEN_PATTERN), F.lit(DEFAULT_PAN_TOKEN_KEY_VERSION)
    )


def canonical_token_col(token: Column) -> Column:
    """The token in today's form: a pre-version token ``tok_X`` is ``tok_v1_X`` (same key, same
    digest: only the label was missing); every other value is returned unchanged."""
    return F.when(
        token.rlike(LEGACY_TOKEN_PATTERN),
        F.concat(F.lit(f"{TOKEN_PREFIX}{DEFAULT_PAN_TOKEN_KEY_VERSION}_"), F.substring(token, 5, 43)),
    ).otherwise(token)


def expiry_masked_col(expiry: Column) -> Column:
    """``MM/**`` for an ``MM/YY`` or ``MM/YYYY`` expiry, ``**/**`` for anything else present, null for null."""
    trimmed = F.trim(expiry)
    return F.when(
        trimmed.rlike(r"^(0[1-9]|1[0-2])/([0-9]{2}|[0-9]{4})$"), F.concat(F.substring(trimmed, 1, 2), F.lit("/**"))
    ).when(expiry.isNotNull(), F.lit("**/**"))


# IP addresses. Octets 0-255 (leading zeros allowed); IPv6 groups 1-4 hex digits.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_HEX = r"[0-9A-Fa-f]{1,4}"
_IPV6_FULL = rf"(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{6}}{_IPV4}"
_IPV6_HEAD = rf"(?:{_HEX}(?::{_HEX}){{0,6}})?"  # groups before "::"
_IPV6_TAIL = rf"(?:(?:{_HEX}:){{0,5}}{_IPV4}|{_HEX}(?::{_HEX}){{0,6}})?"  # groups (or a dotted IPv4) after "::"
_IPV6 = rf"(?:{_IPV6_FULL}|{_IPV6_HEAD}::{_IPV6_TAIL})"
_IPV4_MAPPED = rf"(?i)^(?:::ffff:|(?:0{{1,4}}:){{5}}ffff:)({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}$"


def _group_count_col(part: Column) -> Column:
    """Explicit IPv6 groups in ``part`` (a dotted IPv4 counts two); 0 for ""."""
    colons = F.length(part) - F.length(F.translate(part, ":", ""))
    return F.when(part == "", F.lit(0)).otherwise(colons + 1 + F.when(part.contains("."), F.lit(1)).otherwise(F.lit(0)))


def _ipv6_network_col(address: Column) -> Column:
    """``a:b:c::/48`` (RFC 5952 text: lowercase, no leading zeros, trailing zero groups
    compressed) of a valid IPv6 address, compressed or not."""
    head = F.when(address.contains("::"), F.substring_index(address, "::", 1)).otherwise(address)
    groups = []
    for position in range(3):  # the first three groups; missing ones (compressed away) are 0
        pattern = "^" + "".join(f"{_HEX}:" for _ in range(position)) + f"({_HEX})(?::|$)"
        text = F.lower(F.regexp_extract(head, pattern, 1))
        groups.append(F.when(text == "", F.lit("0")).otherwise(F.regexp_replace(text, "^0+(?=.)", "")))
    g1, g2, g3 = groups
    prefix = (
        F.when(g3 != "0", F.concat_ws(":", g1, g2, g3))
        .when(g2 != "0", F.concat_ws(":", g1, g2))
        .when(g1 != "0", g1)
        .otherwise(F.lit(""))
    )
    return F.concat(prefix, F.lit("::/48"))


def ip_masked_col(ip: Column) -> Column:
    """IPv4 -> ``a.b.c.0/24``; IPv6 -> its /48 network (``2001:db8::1`` -> ``2001:db8::/48``,
    ``::1`` -> ``::/48``, ``fe80::`` -> ``fe80::/48``; a zone ``%eth0`` is dropped); an IPv4-mapped
    IPv6 address (``::ffff:1.2.3.4``) -> ``1.2.3.0/24``; anything else -> null."""
    trimmed = F.trim(ip)
    address = F.regexp_replace(trimmed, r"%[0-9A-Za-z._~-]+$", "")
    one_compression = (F.size(F.split(address, "::")) == 2) & ~address.contains(":::")
    compressed_ok = (
        one_compression
        & address.rlike(rf"^{_IPV6_HEAD}::{_IPV6_TAIL}$")
        & (_group_count_col(F.substring_index(address, "::", 1)) + _group_count_col(F.substring_index(address, "::", -1)) <= 7)
    )
    ipv6 = address.rlike(rf"^(?:{_IPV6_FULL})$") | compressed_ok
    return (
        F.when(
            trimmed.rlike(rf"^{_IPV4}$"), F.concat(F.regexp_extract(trimmed, r"^([0-9]+\.[0-9]+\.[0-9]+)\.", 1), F.lit(".0/24"))
        )
        .when(
            trimmed.contains(":") & address.rlike(_IPV4_MAPPED),
            F.concat(F.regexp_extract(address, _IPV4_MAPPED, 1), F.lit(".0/24")),
        )
        .when(trimmed.contains(":") & ipv6, _ipv6_network_col(address))
    )


# --- card numbers, CVVs, expiries and IPs in free text ------------------------------------
# A card number in text: 12 or more digits, contiguous or in groups of 1-6 digits separated by a
# single space or dash ("4111 1111 1111 1111", "4111-1111-1111-1111", "3782 822463 10005", mixed).
# Groups longer than 6 digits end a grouped number, so ids such as "tx-20261121-000000123" (8 + 9
# digits) are not card numbers. The masking over-approximates (no Luhn check: a run that only
# looks like a card number is masked as well); the tests' scanner (tests/batch/pii_scan.py) checks
# Luhn-valid 13-19 digit numbers written the same ways.
_AT_LEAST_12_DIGITS = r"(?=(?:[0-9][ -]?){11}[0-9])"
_PAN_CONTIGUOUS = r"(?<![0-9])[0-9]{8,}([0-9]{4})(?![0-9])"
# the last group (4-6 digits) ends the run: otherwise the digits after it would stay in clear
_PAN_GROUPED_LAST4 = rf"(?<![0-9]){_AT_LEAST_12_DIGITS}(?:[0-9]{{1,6}}[ -])+[0-9]{{0,2}}([0-9]{{4}})(?![0-9]|[ -][0-9])"
_PAN_GROUPED = rf"(?<![0-9]){_AT_LEAST_12_DIGITS}[0-9]{{1,6}}(?:[ -][0-9]{{1,6}})+(?![0-9])"
_CVV_NAME = r"(?:cvv2?|cvc2?|cvn|csc|cid|card[ _-]?security[ _-]?code|security[ _-]?code)"
# A JSON member holding a CVV, any letter case, any JSON value (a string may be cut off by the end of the text).
_CVV_JSON = rf'(?i)("{_CVV_NAME}"\s*:\s*)("(?:[^"\\]|\\.)*(?:"|$)|-?[0-9.eE+-]+|true|false|null|\{{[^}}]*\}}|\[[^\]]*\])'
# cvv=123, CVV: 123, cvc2 '123', "cvv" 123 ... outside JSON (key and value in any quoting).
_CVV_TEXT = rf"""(?i)(?<![A-Za-z0-9])({_CVV_NAME}["']?(?:\s*[=:]\s*|\s+)["']?)[0-9]{{3,4}}(?![0-9])"""
_EXPIRY = r"(?<![0-9])(0[1-9]|1[0-2])/([0-9]{4}|[0-9]{2})(?![0-9])"
_SHORT_NUMBER_FIELD = r"""(^|,)\s*(["']?)[0-9]{3,4}\2\s*(?=,|$)"""  # a bare or quoted 3-4 digit CSV field may be a CVV
_TEXT_IPV4 = rf"(?<![0-9A-Za-z.])({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}(?![0-9A-Za-z./])"
_TEXT_IPV6 = rf"(?<![0-9A-Za-z:.])(?:{_IPV6})(?:%[0-9A-Za-z._~-]+)?(?![0-9A-Za-z:./])"
_FIRST_IPV6 = rf"(?s)^(.*?)({_TEXT_IPV6})(.*)$"


def mask_card_numbers_col(text: Column) -> Column:
    """``text`` with every card-number-like digit run replaced by ``[pan ****<last 4>]`` (``[pan ****]``
    when its last group is shorter than 4 digits); null stays null. Text with fewer than 12 digits
    (nearly every device id) is returned by a ``translate``, without running a regular expression."""
    masked = F.regexp_replace(text, _PAN_GROUPED_LAST4, "[pan ****$1]")
    masked = F.regexp_replace(masked, _PAN_GROUPED, "[pan ****]")
    masked = F.regexp_replace(masked, _PAN_CONTIGUOUS, "[pan ****$1]")
    digits = F.length(text) - F.length(F.translate(text, "0123456789", ""))
    return F.when(digits >= 12, masked).otherwise(text)


def mask_cvv_text_col(text: Column) -> Column:
    """``text`` with the value of every named CVV (JSON member or ``name=value`` / ``name: value``) as ``***``."""
    masked = F.regexp_replace(text, _CVV_JSON, '$1"***"')
    return F.regexp_replace(masked, _CVV_TEXT, "$1***")


def mask_ip_text_col(text: Column) -> Column:
    """``text`` with IP addresses reduced as in the index: each IPv4 address to its /24, the first
    IPv6 address to its /48 (:func:`ip_masked_col`), any further IPv6 address to ``[ipv6]``."""
    first = F.regexp_extract(text, _FIRST_IPV6, 2)
    network = F.coalesce(ip_masked_col(first), F.lit("[ipv6]"))
    rest = F.regexp_replace(F.regexp_extract(text, _FIRST_IPV6, 3), _TEXT_IPV6, "[ipv6]")
    v6_masked = F.when(text.rlike(_TEXT_IPV6), F.concat(F.regexp_extract(text, _FIRST_IPV6, 1), network, rest)).otherwise(text)
    return F.regexp_replace(v6_masked, _TEXT_IPV4, "$1.0/24")  # after IPv6: an IPv4-mapped address is one address


def mask_free_text_col(text: Column) -> Column:
    """A field's text with card numbers and named CVVs masked (a PAN typed into the wrong field)."""
    return mask_cvv_text_col(mask_card_numbers_col(text))


def with_masked_card_fields(df: DataFrame, key: bytes) -> DataFrame:
    """pan -> card_last4 + card_token (of the key's version), cvv dropped, expiry -> card_expiry_masked,
    ip -> ip_masked; card numbers typed into device_id are masked (:func:`mask_card_numbers_col`)."""
    masked_df = (
        df.transform(with_hmac_pads(key))
        .withColumn("card_last4", card_last4_col(F.col("pan")))
        .withColumn("card_token", card_token_col(F.col("pan"), key_version(key)))
        .withColumn("card_expiry_masked", expiry_masked_col(F.col("expiry")))
        .withColumn("ip_masked", ip_masked_col(F.col("ip")))
    )
    if "device_id" in df.columns:
        masked_df = masked_df.withColumn("device_id", mask_card_numbers_col(F.col("device_id")))
    return masked_df.drop(*CARD_FIELDS, "ip", INNER_PAD_COLUMN, OUTER_PAD_COLUMN)


# Payload masking for quarantine rows and dead-letter messages.


def mask_payload_text_col(text: Column) -> Column:
    """Mask raw text we could not parse (a broken JSON line, a CSV line with the wrong columns, a
    Kafka value): card numbers keep only their last 4 digits (contiguous or grouped with spaces or
    dashes), named CVV values (``"cvv":"123"``, ``"CVC":123``, ``cvv2=123``) and bare or quoted 3-4
    digit CSV fields become ``***``, expiries ``MM/**``, IP addresses their network."""
    masked = mask_free_text_col(text)
    masked = F.regexp_replace(masked, _EXPIRY, "$1/**")
    masked = F.regexp_replace(masked, _SHORT_NUMBER_FIELD, "$1***")
    return mask_ip_text_col(masked)


def masked_payload_json_col(fields: tuple[str, ...] = RAW_TRANSACTION_FIELDS) -> Column:
    """JSON text of the raw record's fields (as they arrived) with card fields masked:
    pan -> ``****1234`` (or ``****`` if not a card number), cvv -> ``***``, expiry -> ``MM/**``,
    ip -> its network (or its text masked if it is not an address). Card numbers and named CVVs
    in any other field are masked too (a PAN typed into the wrong field)."""
    members = []
    for name in fields:
        column = F.col(name)
        if name == "pan":
            value = F.when(column.isNotNull(), F.concat(F.lit("****"), F.coalesce(card_last4_col(column), F.lit(""))))
        elif name == "cvv":
            value = F.when(column.isNotNull(), F.lit("***"))
        elif name == "expiry":
            value = expiry_masked_col(column)
        elif name == "ip":
            value = F.coalesce(ip_masked_col(column), mask_ip_text_col(mask_free_text_col(column)))
        else:
            value = mask_free_text_col(column)
        members.append(value.alias(name))
    return F.to_json(F.struct(*members), {"ignoreNullFields": "false"})


# --- re-tokenization after a key rotation ------------------------------------------------------


def token_map(raw_df: DataFrame, keyring: PanTokenKeyring, pan_col: str = "pan") -> DataFrame:
    """``(old_token, new_token, old_version, new_version)``: for each distinct valid PAN of ``raw_df``
    (raw events, PANs in clear: run where raw data may be read), its token under every previous
    key version of ``keyring`` and under the current one. Distinct rows; no PAN leaves the frame.

    HMAC tokens cannot be reversed: a token maps only if its card appears in the raw data given
    here (the drops still retained). See docs/security.md."""
    current = keyring.current
    pans_df = (
        raw_df.select(normalized_pan_col(F.col(pan_col)).alias("_pan"))
        .filter(F.col("_pan").rlike(PAN_PATTERN))
        .distinct()
        .transform(with_hmac_pads(keyring.current_key, "_new"))
    )
    new_token = card_token_col(F.col("_pan"), current, "_new")
    frames = []
    for version, key in keyring.previous.items():
        suffix = f"_{version}"
        frames.append(
            pans_df.transform(with_hmac_pads(key, suffix)).select(
                card_token_col(F.col("_pan"), version, suffix).alias("old_token"),
                new_token.alias("new_token"),
                F.lit(version).alias("old_version"),
                F.lit(current).alias("new_version"),
            )
        )
    if not frames:
        raise ValueError(f"PAN token keyring has only the current version {current}: nothing to map from")
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def retokenized(df: DataFrame, mapping_df: DataFrame, columns: tuple[str, ...] = ("card_token",)) -> DataFrame:
    """``df`` with each token column rewritten to the current version where ``mapping_df``
    (:func:`token_map` rows, possibly of several dates) knows it; pre-version tokens are first
    relabelled v1 (:func:`canonical_token_col`). Tokens the map does not know keep their (old)
    version: count them with :func:`token_version_col`. Same columns, same row count."""
    pairs = mapping_df.select("old_token", "new_token").distinct()
    for name in columns:
        lookup = pairs.select(F.col("old_token").alias("_old"), F.col("new_token").alias("_new"))
        keyed = df.withColumn(name, canonical_token_col(F.col(name)))
        df = (
            keyed.join(lookup, keyed[name] == lookup["_old"], "left")
            .withColumn(name, F.coalesce(F.col("_new"), F.col(name)))
            .drop("_old", "_new")
            .select(*keyed.columns)
        )
    return df
