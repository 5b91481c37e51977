"""Write credentials: the plain token as before, or ledger-closer's own OAuth authorization."""

from __future__ import annotations

import json

import pytest
from ledger_closer.credentials import (
    CredentialsError,
    FortnoxOAuthCredentials,
    parse_credentials,
    sealed_text,
)
from pydantic import SecretStr

OAUTH = {"client_id": "nordflow", "client_secret": "closer-secret", "refresh_token": "rt-closer"}


def test_a_plain_token_is_sealed_and_read_unchanged() -> None:
    assert sealed_text("demo-token-1") == "demo-token-1"
    parsed = parse_credentials(SecretStr("demo-token-1"))
    assert isinstance(parsed, SecretStr)
    assert parsed.get_secret_value() == "demo-token-1"
    assert sealed_text(json.dumps({"access_token": "tok-2"})) == "tok-2"


def test_oauth_credentials_round_trip_with_fortnoxs_token_endpoint_by_default() -> None:
    parsed = parse_credentials(SecretStr(sealed_text(json.dumps(OAUTH))))
    assert isinstance(parsed, FortnoxOAuthCredentials)
    assert parsed.token_url == "https://apps.fortnox.se/oauth-v1/token"
    assert parsed.refresh_token.get_secret_value() == "rt-closer"
    assert "closer-secret" not in repr(parsed)
    assert "rt-closer" not in repr(parsed)


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"client_id": "nordflow", "client_secret": "closer-secret"}, "refresh_token"),
        ({**OAUTH, "client_secret": ""}, "client_secret"),
        ({**OAUTH, "scope": "invoice"}, "scope"),
        ({**OAUTH, "token_url": 5}, "token_url"),
        ({"token": "x"}, "access_token"),
    ],
)
def test_a_bad_key_is_named_never_a_value(document: dict[str, object], key: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        sealed_text(json.dumps(document))
    assert caught.value.key == key
    assert "closer-secret" not in str(caught.value)


def test_broken_json_is_refused_without_showing_it() -> None:
    with pytest.raises(CredentialsError, match="not valid JSON") as caught:
        sealed_text('{"client_secret": "closer-secret"')
    assert "closer-secret" not in str(caught.value)
