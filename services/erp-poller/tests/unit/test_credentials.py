"""Credentials per source system: what each needs, and errors that name the key, never a value."""

from __future__ import annotations

import json

import pytest
from erp_poller.domain.credentials import (
    CredentialsError,
    SirvoyCredentials,
    TokenCredentials,
    VismaEAccountingCredentials,
    VismaNetCredentials,
    parse_credentials,
    seal_form,
)
from nordflow_schemas.common import SourceSystem
from pydantic import SecretStr

EACCOUNTING = {
    "client_id": "client",
    "client_secret": "very-secret",
    "refresh_token": "refresh-1",
    "token_url": "https://identity.example/connect/token",
}


def test_fortnox_and_push_systems_seal_the_plain_token() -> None:
    assert seal_form(SourceSystem.FORTNOX, {"access_token": "tok"}) == "tok"
    for system in (SourceSystem.WINNER, SourceSystem.ON_PREMISE):
        assert seal_form(system, {"signing_secret": "sig"}) == "sig"
        parsed = parse_credentials(system, SecretStr("sig"))
        assert isinstance(parsed, TokenCredentials)
    parsed = parse_credentials(SourceSystem.FORTNOX, SecretStr("tok"))
    assert isinstance(parsed, TokenCredentials)
    assert parsed.token.get_secret_value() == "tok"


def test_json_systems_round_trip_through_the_sealed_form() -> None:
    text = seal_form(SourceSystem.VISMA_EACCOUNTING, EACCOUNTING)
    parsed = parse_credentials(SourceSystem.VISMA_EACCOUNTING, SecretStr(text))
    assert isinstance(parsed, VismaEAccountingCredentials)
    assert parsed.refresh_token.get_secret_value() == "refresh-1"
    assert "very-secret" not in repr(parsed)

    net = parse_credentials(
        SourceSystem.VISMA_NET, SecretStr(json.dumps({"token": "t", "company_id": "42"}))
    )
    assert isinstance(net, VismaNetCredentials)
    assert (net.company_id, net.api_timezone) == ("42", "UTC")

    sirvoy = parse_credentials(
        SourceSystem.SIRVOY, SecretStr(json.dumps({"api_token": "a", "webhook_secret": "w"}))
    )
    assert isinstance(sirvoy, SirvoyCredentials)
    assert sirvoy.webhook_secret.get_secret_value() == "w"


@pytest.mark.parametrize("missing", sorted(EACCOUNTING))
def test_a_missing_key_is_named(missing: str) -> None:
    fields = {k: v for k, v in EACCOUNTING.items() if k != missing}
    with pytest.raises(CredentialsError) as caught:
        seal_form(SourceSystem.VISMA_EACCOUNTING, fields)
    assert caught.value.key == missing
    assert f"credentials.{missing}" in str(caught.value)
    assert "very-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("system", "fields", "key"),
    [
        (SourceSystem.SIRVOY, {"api_token": "a"}, "webhook_secret"),
        (SourceSystem.SIRVOY, {"api_token": "a", "webhook_secret": " "}, "webhook_secret"),
        (SourceSystem.VISMA_NET, {"token": "t"}, "company_id"),
        (SourceSystem.VISMA_NET, {"token": "t", "company_id": "1", "tenant": "x"}, "tenant"),
        (SourceSystem.FORTNOX, {}, "access_token"),
        (SourceSystem.WINNER, {"signing_secret": ""}, "signing_secret"),
    ],
)
def test_bad_or_unknown_keys_are_named(
    system: SourceSystem, fields: dict[str, str], key: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        seal_form(system, fields)
    assert caught.value.key == key


def test_a_stored_value_that_is_not_a_json_object_is_refused_without_showing_it() -> None:
    with pytest.raises(CredentialsError, match="JSON object") as caught:
        parse_credentials(SourceSystem.SIRVOY, SecretStr("plain-old-token"))
    assert "plain-old-token" not in str(caught.value)
    with pytest.raises(CredentialsError, match="JSON object"):
        parse_credentials(SourceSystem.VISMA_NET, SecretStr("[1, 2]"))


def test_a_payments_subject_is_its_own_id_never_a_number_an_invoice_may_have() -> None:
    from erp_poller.domain.documents import event_subject
    from nordflow_schemas.events import DocumentKind

    assert event_subject(DocumentKind.INVOICE, "inv-uuid", "1") == "1"
    assert event_subject(DocumentKind.CREDIT_NOTE, "77", None) == "77"
    assert event_subject(DocumentKind.PAYMENT, "payment:1", "1") == "payment:1"
