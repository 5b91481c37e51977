"""Fortnox OAuth and Visma.net client-credentials forms beside the fixed-token forms."""

from __future__ import annotations

import json

import pytest
from erp_poller.domain.credentials import (
    FORTNOX_TOKEN_URL,
    VISMA_CONNECT_TOKEN_URL,
    VISMA_NET_SCOPE,
    CredentialsError,
    FortnoxOAuthCredentials,
    TokenCredentials,
    VismaNetClientCredentials,
    VismaNetCredentials,
    parse_credentials,
    seal_form,
)
from nordflow_schemas.common import SourceSystem
from pydantic import SecretStr

FORTNOX = {"client_id": "fnx-app", "client_secret": "fnx-secret-1", "refresh_token": "rt-1"}
VISMA_NET = {
    "client_id": "isv_nordflow",
    "client_secret": "vn-secret-1",
    "tenant_id": "af1140c1-52e0-46c7-b684-df894d4b8a5a",
    "company_id": "1234567",
}


def test_a_fortnox_oauth_object_is_sealed_as_json_and_parsed_with_the_default_endpoint() -> None:
    text = seal_form(SourceSystem.FORTNOX, FORTNOX)
    assert json.loads(text) == FORTNOX
    parsed = parse_credentials(SourceSystem.FORTNOX, SecretStr(text))
    assert isinstance(parsed, FortnoxOAuthCredentials)
    assert parsed.token_url == FORTNOX_TOKEN_URL == "https://apps.fortnox.se/oauth-v1/token"
    assert parsed.refresh_token.get_secret_value() == "rt-1"
    assert "fnx-secret-1" not in repr(parsed)
    assert "rt-1" not in repr(parsed)


def test_fortnox_oauth_json_given_where_the_plain_token_goes_is_taken_as_the_object() -> None:
    """`--token-env` and the API's `token` hand Fortnox values over as `access_token`."""
    own = {**FORTNOX, "token_url": "http://127.0.0.1:9/oauth-v1/token"}
    text = seal_form(SourceSystem.FORTNOX, {"access_token": json.dumps(own)})
    parsed = parse_credentials(SourceSystem.FORTNOX, SecretStr(text))
    assert isinstance(parsed, FortnoxOAuthCredentials)
    assert parsed.token_url == own["token_url"]


def test_a_fixed_fortnox_token_is_still_sealed_plain() -> None:
    assert seal_form(SourceSystem.FORTNOX, {"access_token": "tok-1"}) == "tok-1"
    parsed = parse_credentials(SourceSystem.FORTNOX, SecretStr("tok-1"))
    assert isinstance(parsed, TokenCredentials)


@pytest.mark.parametrize("missing", ["client_secret", "refresh_token"])
def test_a_missing_fortnox_oauth_key_is_named(missing: str) -> None:
    fields = {k: v for k, v in FORTNOX.items() if k != missing}
    with pytest.raises(CredentialsError) as caught:
        seal_form(SourceSystem.FORTNOX, fields)
    assert caught.value.key == missing
    assert "fnx-secret-1" not in str(caught.value)


def test_without_client_id_fortnox_credentials_are_the_fixed_token_form() -> None:
    with pytest.raises(CredentialsError) as caught:
        seal_form(SourceSystem.FORTNOX, {"refresh_token": "rt-1"})
    assert caught.value.key == "access_token"


def test_mixing_the_fixed_token_into_the_oauth_form_is_refused() -> None:
    with pytest.raises(CredentialsError) as caught:
        seal_form(SourceSystem.FORTNOX, {**FORTNOX, "access_token": "tok"})
    assert caught.value.key == "access_token"


def test_visma_net_client_credentials_round_trip_with_defaults() -> None:
    text = seal_form(SourceSystem.VISMA_NET, VISMA_NET)
    parsed = parse_credentials(SourceSystem.VISMA_NET, SecretStr(text))
    assert isinstance(parsed, VismaNetClientCredentials)
    assert parsed.token_url == VISMA_CONNECT_TOKEN_URL == "https://connect.visma.com/connect/token"
    assert parsed.scope == VISMA_NET_SCOPE
    assert (parsed.tenant_id, parsed.company_id) == (VISMA_NET["tenant_id"], "1234567")
    assert "vn-secret-1" not in repr(parsed)

    custom = {**VISMA_NET, "scope": "vismanet_erp_service_api:read", "api_timezone": "Europe/Oslo"}
    parsed = parse_credentials(SourceSystem.VISMA_NET, SecretStr(json.dumps(custom)))
    assert isinstance(parsed, VismaNetClientCredentials)
    assert (parsed.scope, parsed.api_timezone) == (custom["scope"], "Europe/Oslo")
    fixed = parse_credentials(
        SourceSystem.VISMA_NET, SecretStr(json.dumps({"token": "t", "company_id": "1"}))
    )
    assert isinstance(fixed, VismaNetCredentials)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({k: v for k, v in VISMA_NET.items() if k != "tenant_id"}, "tenant_id"),
        ({k: v for k, v in VISMA_NET.items() if k != "client_secret"}, "client_secret"),
        ({**VISMA_NET, "token": "t"}, "token"),
    ],
)
def test_visma_net_client_credentials_name_a_bad_key(fields: dict[str, str], key: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        seal_form(SourceSystem.VISMA_NET, fields)
    assert caught.value.key == key
    assert "vn-secret-1" not in str(caught.value)
