"""Credentials per source system: the forms each takes, checked by key, sealed and parsed.

Errors name the system and the key, never a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nordflow_schemas.common import SourceSystem
from pydantic import SecretStr


class CredentialsError(ValueError):
    """Stored or submitted credentials lack a key or have a bad one; names it, never a value."""

    def __init__(self, system: SourceSystem, key: str | None, problem: str) -> None:
        where = f"credentials.{key}" if key else "credentials"
        super().__init__(f"{system.value} {where}: {problem}")
        self.system = system
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class TokenCredentials:
    """One bearer token or signing secret: a fixed Fortnox token, a push connection's secret."""

    token: SecretStr


FORTNOX_TOKEN_URL = "https://apps.fortnox.se/oauth-v1/token"  # noqa: S105 - a URL
VISMA_CONNECT_TOKEN_URL = "https://connect.visma.com/connect/token"  # noqa: S105 - a URL
VISMA_NET_SCOPE = (
    "vismanet_erp_service_api:read vismanet_erp_service_api:create vismanet_erp_service_api:update"
)


@dataclass(frozen=True)
class FortnoxOAuthCredentials:
    """Fortnox OAuth2: the integration's client and this authorization's first refresh token.

    The refresh token rotates on every refresh (single use, 45 days), so erp-poller and
    ledger-closer must each be given their own authorization, never the same refresh token.
    """

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_url: str = FORTNOX_TOKEN_URL


@dataclass(frozen=True)
class VismaEAccountingCredentials:
    """An OAuth2 client and the grant's first refresh token (it rotates on every refresh)."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_url: str


@dataclass(frozen=True)
class VismaNetCredentials:
    """A fixed Visma Connect access token for one company (``ipp-company-id``)."""

    token: SecretStr
    company_id: str
    api_timezone: str = "UTC"


@dataclass(frozen=True)
class VismaNetClientCredentials:
    """A Visma Connect service integration: client id and secret, the company's tenant id and
    the scopes; access tokens come from the client-credentials grant (nothing rotates)."""

    client_id: str
    client_secret: SecretStr
    tenant_id: str
    company_id: str
    token_url: str = VISMA_CONNECT_TOKEN_URL
    scope: str = VISMA_NET_SCOPE
    api_timezone: str = "UTC"


@dataclass(frozen=True)
class SirvoyCredentials:
    """The read-API token, and the secret its booking webhooks are signed with."""

    api_token: SecretStr
    webhook_secret: SecretStr


@dataclass(frozen=True)
class NoCredentials:
    """A connection erp-poller never calls (one only booked into, Tripletex): ledger-closer
    holds the credentials that write into it (``ledger-closer connections add``)."""


Credentials = (
    NoCredentials
    | TokenCredentials
    | FortnoxOAuthCredentials
    | VismaEAccountingCredentials
    | VismaNetCredentials
    | VismaNetClientCredentials
    | SirvoyCredentials
)

KeySet = tuple[tuple[str, ...], tuple[str, ...]]
"""(required, optional) keys of one credentials form."""

# Keys of each JSON credentials document: (required, optional). Fortnox and the push systems
# store one plain string instead (their token / signing secret), as sealed before 004.
CREDENTIAL_KEYS: dict[SourceSystem, KeySet] = {
    SourceSystem.VISMA_EACCOUNTING: (
        ("client_id", "client_secret", "refresh_token", "token_url"),
        (),
    ),
    SourceSystem.VISMA_NET: (("token", "company_id"), ("api_timezone",)),
    SourceSystem.SIRVOY: (("api_token", "webhook_secret"), ()),
    SourceSystem.TRIPLETEX: ((), ()),
}
# Second forms, chosen when the document holds ``client_id``: OAuth instead of a fixed token.
OAUTH_KEYS: dict[SourceSystem, KeySet] = {
    SourceSystem.FORTNOX: (("client_id", "client_secret", "refresh_token"), ("token_url",)),
    SourceSystem.VISMA_NET: (
        ("client_id", "client_secret", "tenant_id", "company_id"),
        ("token_url", "scope", "api_timezone"),
    ),
}
PLAIN_KEYS: dict[SourceSystem, str] = {
    SourceSystem.FORTNOX: "access_token",
    SourceSystem.WINNER: "signing_secret",
    SourceSystem.ON_PREMISE: "signing_secret",
}
"""The one key a plain-string system takes when its credentials are given as an object."""


def _unwrapped(system: SourceSystem, fields: dict[str, Any]) -> dict[str, Any]:
    """Fortnox OAuth credentials given where a plain token goes (``--token-env``, the API's
    ``token``) arrive as ``{"access_token": "<JSON object>"}``: take the object instead."""
    if system is not SourceSystem.FORTNOX or set(fields) != {PLAIN_KEYS[system]}:
        return fields
    value = fields[PLAIN_KEYS[system]]
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return fields
    try:
        document = json.loads(value)
    except ValueError:
        return fields
    return document if isinstance(document, dict) else fields


def is_oauth_form(system: SourceSystem, fields: dict[str, Any]) -> bool:
    """Whether credentials take the system's OAuth form (they name a ``client_id``)."""
    return system in OAUTH_KEYS and "client_id" in fields


def credential_fields(system: SourceSystem, fields: dict[str, str]) -> dict[str, str]:
    """Check a credentials object: every required key present and non-empty, nothing unknown."""
    fields = _unwrapped(system, fields)
    if is_oauth_form(system, fields):
        required, optional = OAUTH_KEYS[system]
    elif system in PLAIN_KEYS:
        required, optional = (PLAIN_KEYS[system],), ()
    else:
        required, optional = CREDENTIAL_KEYS[system]
    for key in required:
        value = fields.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CredentialsError(system, key, "required (a non-empty string)")
    for key, value in fields.items():
        if key not in required and key not in optional:
            known = ", ".join((*required, *optional))
            raise CredentialsError(system, key, f"unknown key (this system takes {known})")
        if not isinstance(value, str):
            raise CredentialsError(system, key, "must be a string")
    return dict(fields)


def seal_form(system: SourceSystem, fields: dict[str, str]) -> str:
    """The text sealed for a connection: the plain token for a fixed Fortnox token and push
    systems (so their readers stay as they were), else the JSON document (sorted keys)."""
    checked = credential_fields(system, fields)
    if system in PLAIN_KEYS and not is_oauth_form(system, checked):
        return checked[PLAIN_KEYS[system]]
    return json.dumps(checked, sort_keys=True)


def _fortnox_oauth(text: str) -> dict[str, str] | None:
    """The OAuth document of a sealed Fortnox value, or None for a plain token."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "client_id" in document else None


def parse_credentials(system: SourceSystem, opened: SecretStr) -> Credentials:
    """A connection's credentials from its opened (decrypted) sealed value."""
    text = opened.get_secret_value()
    if system is SourceSystem.FORTNOX and (oauth := _fortnox_oauth(text)) is not None:
        fields = credential_fields(system, oauth)
        return FortnoxOAuthCredentials(
            client_id=fields["client_id"],
            client_secret=SecretStr(fields["client_secret"]),
            refresh_token=SecretStr(fields["refresh_token"]),
            token_url=fields.get("token_url") or FORTNOX_TOKEN_URL,
        )
    if system in PLAIN_KEYS:
        if not text.strip():
            raise CredentialsError(system, None, f"the {PLAIN_KEYS[system]} is empty")
        return TokenCredentials(opened)
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError(
            system, None, "must be a JSON object (the value is not JSON)"
        ) from None
    if not isinstance(document, dict):
        raise CredentialsError(system, None, "must be a JSON object")
    fields = credential_fields(system, document)
    if system is SourceSystem.TRIPLETEX:
        return NoCredentials()
    if system is SourceSystem.VISMA_EACCOUNTING:
        return VismaEAccountingCredentials(
            client_id=fields["client_id"],
            client_secret=SecretStr(fields["client_secret"]),
            refresh_token=SecretStr(fields["refresh_token"]),
            token_url=fields["token_url"],
        )
    if system is SourceSystem.VISMA_NET and is_oauth_form(system, fields):
        return VismaNetClientCredentials(
            client_id=fields["client_id"],
            client_secret=SecretStr(fields["client_secret"]),
            tenant_id=fields["tenant_id"],
            company_id=fields["company_id"],
            token_url=fields.get("token_url") or VISMA_CONNECT_TOKEN_URL,
            scope=fields.get("scope") or VISMA_NET_SCOPE,
            api_timezone=fields.get("api_timezone") or "UTC",
        )
    if system is SourceSystem.VISMA_NET:
        return VismaNetCredentials(
            token=SecretStr(fields["token"]),
            company_id=fields["company_id"],
            api_timezone=fields.get("api_timezone") or "UTC",
        )
    return SirvoyCredentials(
        api_token=SecretStr(fields["api_token"]), webhook_secret=SecretStr(fields["webhook_secret"])
    )


def credentials_from_token(system: SourceSystem, token: str) -> dict[str, str]:
    """The credentials behind a single text (the CLI's ``--token-env``, the API's ``token``):
    the token itself for plain-token systems, else the JSON object it holds."""
    if system in PLAIN_KEYS:
        return {PLAIN_KEYS[system]: token}
    try:
        document = json.loads(token)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise CredentialsError(system, None, "must be a JSON object (the value is not one)")
    return {str(k): v for k, v in document.items()}
