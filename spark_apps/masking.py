"""PII masking (DESIGN decision 7), shared by the batch index job and the stream.

Column functions (pure, null-safe):

* :func:`card_last4_col`   -- last four digits of a valid PAN (12-19 digits after removing spaces/dashes);
* :func:`card_token_col`   -- ``tok_`` + base64url(HMAC-SHA256(key, normalized PAN)), computed
  inside the JVM (sha2 over ipad/opad, RFC 2104) so it is fast and equal to Python's
  ``hmac.new(key, pan, sha256)``; base64url keeps long digit runs out of tokens. The pads
  are key material, so they are never plan literals (``explain``, the Spark UI and event
  logs would show them): :func:`with_hmac_pads` joins them in from a one-row broadcast
  relation, whose rows plans do not print;
* :func:`expiry_masked_col` -- ``MM/**`` (year hidden);
* :func:`ip_masked_col`    -- the IPv4 /24 or IPv6 /48 network.

:func:`with_masked_card_fields` replaces pan/cvv/expiry/ip by those columns (cvv is dropped).
:func:`mask_payload_text_col` and :func:`masked_payload_json_col` build quarantine and
dead-letter payloads with no card number, CVV or full expiry in clear.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_apps.schemas import CARD_FIELDS, RAW_TRANSACTION_FIELDS

PAN_PATTERN = r"^[0-9]{12,19}$"
TOKEN_PREFIX = "tok_"
_BLOCK = 64  # SHA-256 block size in bytes


def normalized_pan_col(pan: Column) -> Column:
    """The PAN without spaces and dashes (``translate`` deletes them: no regex per row)."""
    return F.translate(pan, " -", "")


def valid_pan_col(pan: Column) -> Column:
    """True if the PAN is 12-19 digits once spaces and dashes are removed; null if pan is null."""
    return normalized_pan_col(pan).rlike(PAN_PATTERN)


def card_last4_col(pan: Column) -> Column:
    normalized = normalized_pan_col(pan)
    return F.when(normalized.rlike(PAN_PATTERN), F.substring(normalized, -4, 4))


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    if not key:
        raise ValueError("the PAN token key is empty")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


INNER_PAD_COLUMN = "_hmac_inner_pad"
OUTER_PAD_COLUMN = "_hmac_outer_pad"


def with_hmac_pads(key: bytes):
    """Transformation adding the key's HMAC pads as two binary columns, from a one-row
    broadcast relation (not literals: plans print literals, not a relation's rows)."""
    inner_pad, outer_pad = _hmac_pads(key)

    def transform(df: DataFrame) -> DataFrame:
        import pyarrow as pa

        # From Arrow the rows are a local relation in the JVM; from a Python list they were an RDD
        # whose every broadcast (each stream micro-batch) started Python workers (~0.8 s per batch).
        pads = pa.table(
            {INNER_PAD_COLUMN: pa.array([inner_pad], pa.binary()), OUTER_PAD_COLUMN: pa.array([outer_pad], pa.binary())}
        )
        pads_df = df.sparkSession.createDataFrame(pads, f"{INNER_PAD_COLUMN} binary, {OUTER_PAD_COLUMN} binary")
        return df.crossJoin(F.broadcast(pads_df))

    return transform


def hmac_sha256_hex_col(message: Column, inner_pad: Column, outer_pad: Column) -> Column:
    """HMAC-SHA256 of the UTF-8 bytes of ``message`` as lowercase hex (null in, null out),
    from the key's pads (:func:`with_hmac_pads`)."""
    inner = F.unhex(F.sha2(F.concat(inner_pad, message.cast("binary")), 256))
    return F.sha2(F.concat(outer_pad, inner), 256)


def card_token_col(pan: Column) -> Column:
    """``tok_<base64url HMAC-SHA256>`` of the normalized PAN; null for a null or invalid PAN.
    Needs the pad columns of :func:`with_hmac_pads`."""
    normalized = normalized_pan_col(pan)
    digest = F.unhex(hmac_sha256_hex_col(normalized, F.col(INNER_PAD_COLUMN), F.col(OUTER_PAD_COLUMN)))
    # base64 of the 32-byte digest is always 44 characters ending in exactly one "=": keep 43.
    urlsafe = F.substring(F.translate(F.base64(digest), "+/", "-_"), 1, 43)
    return F.when(normalized.rlike(PAN_PATTERN), F.concat(F.lit(TOKEN_PREFIX), urlsafe))


def expiry_masked_col(expiry: Column) -> Column:
    """``MM/**`` for an ``MM/YY`` or ``MM/YYYY`` expiry, ``**/**`` for anything else present, null for null."""
    trimmed = F.trim(expiry)
    return F.when(
        trimmed.rlike(r"^(0[1-9]|1[0-2])/([0-9]{2}|[0-9]{4})$"), F.concat(F.substring(trimmed, 1, 2), F.lit("/**"))
    ).when(expiry.isNotNull(), F.lit("**/**"))


def ip_masked_col(ip: Column) -> Column:
    """IPv4 -> ``a.b.c.0/24``; IPv6 -> first three groups + ``::/48``; anything else -> null."""
    trimmed = F.trim(ip)
    ipv4 = trimmed.rlike(r"^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$")
    ipv6 = trimmed.rlike(r"^[0-9A-Fa-f:]+$") & trimmed.contains(":")
    v6_groups = F.split(trimmed, ":")
    return F.when(ipv4, F.concat(F.regexp_extract(trimmed, r"^([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})\.", 1), F.lit(".0/24"))).when(
        ipv6 & (F.size(v6_groups) >= 3),
        F.concat(F.lower(F.concat_ws(":", F.slice(v6_groups, 1, 3))), F.lit("::/48")),
    )


def with_masked_card_fields(df: DataFrame, key: bytes) -> DataFrame:
    """pan -> card_last4 + card_token, cvv dropped, expiry -> card_expiry_masked, ip -> ip_masked."""
    return (
        df.transform(with_hmac_pads(key))
        .withColumn("card_last4", card_last4_col(F.col("pan")))
        .withColumn("card_token", card_token_col(F.col("pan")))
        .withColumn("card_expiry_masked", expiry_masked_col(F.col("expiry")))
        .withColumn("ip_masked", ip_masked_col(F.col("ip")))
        .drop(*CARD_FIELDS, "ip", INNER_PAD_COLUMN, OUTER_PAD_COLUMN)
    )


# Payload masking for quarantine rows and dead-letter messages.
_DIGIT_RUN = r"(?<![0-9])[0-9]{8,15}([0-9]{4})(?![0-9])"  # 12-19 consecutive digits: a possible card number
_CVV_JSON = r"(\"cvv\"\s*:\s*)(\"[^\"]*\"|-?[0-9.]+|true|false|null|\{[^}]*\}|\[[^\]]*\])"
_EXPIRY = r"(?<![0-9])(0[1-9]|1[0-2])/([0-9]{4}|[0-9]{2})(?![0-9])"
_SHORT_NUMBER_FIELD = r"(^|,)\s*[0-9]{3,4}\s*(?=,|$)"  # a bare 3-4 digit CSV field may be a CVV


def mask_payload_text_col(text: Column) -> Column:
    """Mask raw text we could not parse: card-number-like digit runs keep only their last 4,
    any JSON ``cvv`` value and bare 3-4 digit CSV fields become ``***``, expiries ``MM/**``."""
    masked = F.regexp_replace(text, _DIGIT_RUN, "[pan ****$1]")
    masked = F.regexp_replace(masked, _CVV_JSON, '$1"***"')
    masked = F.regexp_replace(masked, _EXPIRY, "$1/**")
    return F.regexp_replace(masked, _SHORT_NUMBER_FIELD, "$1***")


def masked_payload_json_col(fields: tuple[str, ...] = RAW_TRANSACTION_FIELDS) -> Column:
    """JSON text of the raw record's fields (as they arrived) with card fields masked:
    pan -> ``****1234`` (or ``****`` if not a card number), cvv -> ``***``, expiry -> ``MM/**``.
    Card-number-like digit runs in any other field are masked too (a PAN typed into the wrong field)."""
    members = []
    for name in fields:
        column = F.col(name)
        if name == "pan":
            value = F.when(column.isNotNull(), F.concat(F.lit("****"), F.coalesce(card_last4_col(column), F.lit(""))))
        elif name == "cvv":
            value = F.when(column.isNotNull(), F.lit("***"))
        elif name == "expiry":
            value = expiry_masked_col(column)
        else:
            value = F.regexp_replace(column, _DIGIT_RUN, "[pan ****$1]")
        members.append(value.alias(name))
    return F.to_json(F.struct(*members), {"ignoreNullFields": "false"})
