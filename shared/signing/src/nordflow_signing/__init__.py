"""Signed pushes: what the on-premise agent (and Winner) sign and erp-poller's ingest checks.

A push carries ``X-Nordflow-Timestamp`` (unix seconds) and ``X-Nordflow-Signature:
v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``; a push that names its batch in
``X-Nordflow-Batch-Id`` signs ``"<timestamp>.<batch id>." + body`` instead, so a captured
request cannot be replayed under another batch id. The receiver accepts a signature at most
``MAX_AGE_SECONDS`` old and ``MAX_FUTURE_SKEW_SECONDS`` ahead of its clock.

Standard library only: the agent installs it on a customer's machine without the server.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Final

TIMESTAMP_HEADER: Final = "X-Nordflow-Timestamp"
SIGNATURE_HEADER: Final = "X-Nordflow-Signature"
BATCH_HEADER: Final = "X-Nordflow-Batch-Id"
MAX_AGE_SECONDS: Final = 300
# Clocks of agents' machines drift; a few seconds ahead is skew, not a forged future.
MAX_FUTURE_SKEW_SECONDS: Final = 30


class SignatureError(Exception):
    """A push whose signature is missing, wrong or stale; the message never holds a secret."""


def sign(secret: str, timestamp: int, body: bytes, batch_id: str | None = None) -> str:
    """The signature header value: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``,
    or over ``"<timestamp>.<batch id>." + body`` when the push names its batch."""
    prefix = f"{timestamp}." if batch_id is None else f"{timestamp}.{batch_id}."
    mac = hmac.new(secret.encode(), prefix.encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def signature_headers(
    secret: str, body: bytes, *, now: float | None = None, batch_id: str | None = None
) -> dict[str, str]:
    """The headers a signed push carries (with ``batch_id``, the batch header too)."""
    timestamp = int(time.time() if now is None else now)
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body, batch_id),
    }
    if batch_id is not None:
        headers[BATCH_HEADER] = batch_id
    return headers


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (plain dicts are case-sensitive)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Raise `SignatureError` unless the push is signed with ``secret`` within the tolerance.

    Several ``v1=`` values (comma separated) are accepted, for secret rotation; every one is
    compared in constant time.
    """
    stamp = (header(headers, TIMESTAMP_HEADER) or "").strip()
    if not stamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header (unix seconds)")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds")
    value = header(headers, SIGNATURE_HEADER) or ""
    candidates = [p.strip()[3:] for p in value.split(",") if p.strip().startswith("v1=")]
    if not value:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header: expected v1=<hex>")
    timestamp = int(stamp)
    expected = sign(secret, timestamp, body, header(headers, BATCH_HEADER))[3:].encode()
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.lower().encode())
    if not matched:
        raise SignatureError("signature does not match the body (wrong secret or altered body)")
    age = (time.time() if now is None else now) - timestamp
    if age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(age)} s old, more than {MAX_AGE_SECONDS} s "
            "(stale or replayed)"
        )
    if age < -MAX_FUTURE_SKEW_SECONDS:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(-age)} s in the future")


__all__ = [
    "BATCH_HEADER",
    "MAX_AGE_SECONDS",
    "MAX_FUTURE_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "header",
    "sign",
    "signature_headers",
    "verify_signature",
]
