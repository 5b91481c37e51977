"""Write credentials of each accounting system: what ``connections add --token-env VAR``
takes, checked by key (never echoing a value), sealed, and read back.

- fortnox: the plain token; ``{"access_token"}``; or ledger-closer's own OAuth grant
  ``{"client_id", "client_secret", "refresh_token"[, "token_url"]}``
- visma-eaccounting: ledger-closer's own OAuth grant ``{"client_id", "client_secret",
  "refresh_token", "token_url"}``
- visma-net: ``{"token", "company_id"}``, or a service integration ``{"client_id",
  "client_secret", "tenant_id", "company_id"[, "token_url", "scope"]}``
- tripletex: ``{"consumer_token", "employee_token"}`` (exchanged for session tokens)

Refresh tokens rotate (Fortnox, eAccounting): the grant must be given to ledger-closer
alone, never the one erp-poller holds, or whichever service refreshes first locks the other
out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nordflow_connectors.fortnox import DEFAULT_TOKEN_URL
from pydantic import SecretStr

from .domain import WriteSystem

VISMA_CONNECT_TOKEN_URL = "https://connect.visma.com/connect/token"  # noqa: S105 - a URL
VISMA_NET_SCOPE = (
    "vismanet_erp_service_api:read vismanet_erp_service_api:create vismanet_erp_service_api:update"
)
PLAIN_KEY = "access_token"

# (required, optional) keys of each JSON form; a document naming client_id takes the OAuth form.
FORMS: dict[WriteSystem, tuple[tuple[str, ...], tuple[str, ...]]] = {
    WriteSystem.FORTNOX: ((PLAIN_KEY,), ()),
    WriteSystem.VISMA_EACCOUNTING: (
        ("client_id", "client_secret", "refresh_token", "token_url"),
        (),
    ),
    WriteSystem.VISMA_NET: (("token", "company_id"), ()),
    WriteSystem.TRIPLETEX: (("consumer_token", "employee_token"), ()),
}
OAUTH_FORMS: dict[WriteSystem, tuple[tuple[str, ...], tuple[str, ...]]] = {
    WriteSystem.FORTNOX: (("client_id", "client_secret", "refresh_token"), ("token_url",)),
    WriteSystem.VISMA_EACCOUNTING: FORMS[WriteSystem.VISMA_EACCOUNTING],
    WriteSystem.VISMA_NET: (
        ("client_id", "client_secret", "tenant_id", "company_id"),
        ("token_url", "scope"),
    ),
}


class CredentialsError(ValueError):
    """Credentials lack a key or have a bad one; names it, never a value."""

    def __init__(self, system: WriteSystem, key: str | None, problem: str) -> None:
        where = f"credentials.{key}" if key else "credentials"
        super().__init__(f"{system.value} {where}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class OAuthCredentials:
    """An OAuth client and the first refresh token of ledger-closer's own grant (Fortnox,
    Visma eAccounting: both rotate the refresh token on every refresh)."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_url: str


# The Fortnox name of the OAuth form, as earlier versions called it.
FortnoxOAuthCredentials = OAuthCredentials


@dataclass(frozen=True)
class VismaNetToken:
    """A fixed Visma Connect access token for one company (``ipp-company-id``)."""

    token: SecretStr
    company_id: str


@dataclass(frozen=True)
class VismaNetClient:
    """A Visma Connect service integration (client-credentials grant, nothing rotates)."""

    client_id: str
    client_secret: SecretStr
    tenant_id: str
    company_id: str
    token_url: str
    scope: str


@dataclass(frozen=True)
class TripletexTokens:
    """The integration's consumer token and the company's employee token."""

    consumer_token: SecretStr
    employee_token: SecretStr


Credentials = SecretStr | OAuthCredentials | VismaNetToken | VismaNetClient | TripletexTokens


def _object(system: WriteSystem, text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError(system, None, "looks like JSON but is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError(system, None, "must be a JSON object")
    return document


def _checked(system: WriteSystem, fields: dict[str, Any]) -> dict[str, str]:
    oauth = "client_id" in fields and system in OAUTH_FORMS
    required, optional = OAUTH_FORMS[system] if oauth else FORMS[system]
    for key in required:
        value = fields.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CredentialsError(system, key, "required (a non-empty string)")
    for key, value in fields.items():
        if key not in required and key not in optional:
            known = ", ".join((*required, *optional))
            raise CredentialsError(system, key, f"unknown key (takes {known})")
        if not isinstance(value, str):
            raise CredentialsError(system, key, "must be a string")
    return {str(k): str(v) for k, v in fields.items()}


def sealed_text(value: str, system: WriteSystem = WriteSystem.FORTNOX) -> str:
    """What is sealed for a write connection: Fortnox's plain token, else the checked JSON."""
    if not value.strip():
        raise CredentialsError(system, None, "empty")
    document = _object(system, value)
    if document is None:
        if system is WriteSystem.FORTNOX:
            return value
        raise CredentialsError(system, None, "must be a JSON object")
    fields = _checked(system, document)
    if system is WriteSystem.FORTNOX and "client_id" not in fields:
        return fields[PLAIN_KEY]
    return json.dumps(fields, sort_keys=True)


def parse_credentials(opened: SecretStr, system: WriteSystem = WriteSystem.FORTNOX) -> Credentials:
    """A write connection's credentials from its opened sealed value."""
    document = _object(system, opened.get_secret_value())
    if document is None:
        if system is WriteSystem.FORTNOX:
            return opened
        raise CredentialsError(system, None, "must be a JSON object")
    fields = _checked(system, document)
    if system is WriteSystem.TRIPLETEX:
        return TripletexTokens(
            SecretStr(fields["consumer_token"]), SecretStr(fields["employee_token"])
        )
    if system is WriteSystem.VISMA_NET and "client_id" in fields:
        return VismaNetClient(
            client_id=fields["client_id"],
            client_secret=SecretStr(fields["client_secret"]),
            tenant_id=fields["tenant_id"],
            company_id=fields["company_id"],
            token_url=fields.get("token_url") or VISMA_CONNECT_TOKEN_URL,
            scope=fields.get("scope") or VISMA_NET_SCOPE,
        )
    if system is WriteSystem.VISMA_NET:
        return VismaNetToken(SecretStr(fields["token"]), fields["company_id"])
    if "client_id" not in fields:
        return SecretStr(fields[PLAIN_KEY])
    return OAuthCredentials(
        client_id=fields["client_id"],
        client_secret=SecretStr(fields["client_secret"]),
        refresh_token=SecretStr(fields["refresh_token"]),
        token_url=fields.get("token_url") or DEFAULT_TOKEN_URL,
    )
