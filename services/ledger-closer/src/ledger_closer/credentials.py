"""Fortnox write credentials: a fixed token, or ledger-closer's own OAuth2 authorization.

``connections add --token-env VAR`` takes either the plain token (as before) or a JSON
object: ``{"access_token": …}`` (the same fixed token) or ``{"client_id", "client_secret",
"refresh_token"[, "token_url"]}``. The refresh token must come from an authorization given to
ledger-closer alone: Fortnox rotates it on every refresh, so a refresh token shared with
erp-poller would be spent by whichever service refreshes first and lock the other out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nordflow_connectors.fortnox import DEFAULT_TOKEN_URL
from pydantic import SecretStr

OAUTH_REQUIRED = ("client_id", "client_secret", "refresh_token")
OAUTH_OPTIONAL = ("token_url",)
PLAIN_KEY = "access_token"


class CredentialsError(ValueError):
    """Credentials lack a key or have a bad one; names it, never a value."""

    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(f"fortnox {f'credentials.{key}' if key else 'credentials'}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class FortnoxOAuthCredentials:
    """The integration's client and the first refresh token of ledger-closer's own grant."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    token_url: str = DEFAULT_TOKEN_URL


def _object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise CredentialsError(None, "looks like JSON but is not valid JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError(None, "must be a JSON object")
    return document


def _checked(fields: dict[str, Any]) -> dict[str, str]:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    if "client_id" in fields:
        required, optional = OAUTH_REQUIRED, OAUTH_OPTIONAL
    else:
        required, optional = (PLAIN_KEY,), ()
    for key in required:
        value = fields.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CredentialsError(key, "required (a non-empty string)")
    for key, value in fields.items():
        if key not in required and key not in optional:
            known = ", ".join((*required, *optional))
            raise CredentialsError(key, f"unknown key (takes {known})")
        if not isinstance(value, str):
            raise CredentialsError(key, "must be a string")
    return {str(k): str(v) for k, v in fields.items()}


def sealed_text(value: str) -> str:
    """What is sealed for a write connection: the plain token, or the checked OAuth JSON."""
    if not value.strip():
        raise CredentialsError(None, "empty")
    document = _object(value)
    if document is None:
        return value
    fields = _checked(document)
    if "client_id" not in fields:
        return fields[PLAIN_KEY]
    return json.dumps(fields, sort_keys=True)


def parse_credentials(opened: SecretStr) -> SecretStr | FortnoxOAuthCredentials:
    """A write connection's credentials from its opened sealed value."""
    document = _object(opened.get_secret_value())
    if document is None:
        return opened
    fields = _checked(document)
    if "client_id" not in fields:
        return SecretStr(fields[PLAIN_KEY])
    return FortnoxOAuthCredentials(
        client_id=fields["client_id"],
        client_secret=SecretStr(fields["client_secret"]),
        refresh_token=SecretStr(fields["refresh_token"]),
        token_url=fields.get("token_url") or DEFAULT_TOKEN_URL,
    )
