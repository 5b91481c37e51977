"""nordflow_signing: the wire format, the 5-minute tolerance, batch ids, rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from nordflow_signing import (
    BATCH_HEADER,
    MAX_AGE_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signature_headers,
    verify_signature,
)

SECRET = "push-secret-0123456789"
BODY = b'{"documents": []}'
NOW = 1_741_600_000.0


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1741600000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_741_600_000, BODY) == f"v1={expected}"
    with_batch = hmac.new(SECRET.encode(), b"1741600000.b-1." + BODY, hashlib.sha256)
    assert sign(SECRET, 1_741_600_000, BODY, "b-1") == f"v1={with_batch.hexdigest()}"


def test_signed_headers_verify_and_name_the_batch() -> None:
    headers = signature_headers(SECRET, BODY, now=NOW, batch_id="b-1")
    assert headers[TIMESTAMP_HEADER] == "1741600000"
    assert headers[BATCH_HEADER] == "b-1"
    verify_signature(SECRET, headers, BODY, now=NOW)
    verify_signature(SECRET, {k.lower(): v for k, v in headers.items()}, BODY, now=NOW)
    assert BATCH_HEADER not in signature_headers(SECRET, BODY, now=NOW)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != TIMESTAMP_HEADER}, b), "missing"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "unix seconds"),
        (lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), "missing"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=abc"}, b), "malformed"),
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, BATCH_HEADER: "b-2"}, b), "does not match"),
    ],
    ids=["no-stamp", "bad-stamp", "no-signature", "other-scheme", "altered", "other-batch"],
)
def test_a_bad_push_is_refused_naming_why(change: object, message: str) -> None:
    headers, body = change(signature_headers(SECRET, BODY, now=NOW, batch_id="b-1"), BODY)  # type: ignore[operator]
    with pytest.raises(SignatureError, match=message) as caught:
        verify_signature(SECRET, headers, body, now=NOW)
    assert SECRET not in str(caught.value)


def test_a_wrong_secret_is_refused() -> None:
    headers = signature_headers("another-secret", BODY, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, headers, BODY, now=NOW)


def test_five_minutes_old_is_accepted_older_is_stale_and_far_ahead_is_refused() -> None:
    headers = signature_headers(SECRET, BODY, now=NOW)
    verify_signature(SECRET, headers, BODY, now=NOW + MAX_AGE_SECONDS)
    with pytest.raises(SignatureError, match="stale or replayed"):
        verify_signature(SECRET, headers, BODY, now=NOW + MAX_AGE_SECONDS + 1)
    verify_signature(SECRET, headers, BODY, now=NOW - 30)  # clock skew
    with pytest.raises(SignatureError, match="in the future"):
        verify_signature(SECRET, headers, BODY, now=NOW - 31)


def test_any_of_several_signatures_may_match_during_a_rotation() -> None:
    old = signature_headers("old-secret", BODY, now=NOW)[SIGNATURE_HEADER]
    new = signature_headers(SECRET, BODY, now=NOW)[SIGNATURE_HEADER]
    headers = {TIMESTAMP_HEADER: str(int(NOW)), SIGNATURE_HEADER: f"{old}, {new.upper()[:3]}"}
    with pytest.raises(SignatureError):
        verify_signature(SECRET, headers, BODY, now=NOW)
    headers[SIGNATURE_HEADER] = f"{old}, v1={new[3:].upper()}"
    verify_signature(SECRET, headers, BODY, now=NOW)
