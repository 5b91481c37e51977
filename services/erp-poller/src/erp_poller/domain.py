"""Pure rules of picking up: versions, windows and the fetched event."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nordflow_schemas.common import ConnectionMode, SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched
from pydantic import SecretStr


@dataclass(frozen=True)
class Connection:
    """A tenant's connection to one source system (the token stays sealed here)."""

    connection_id: str
    tenant_id: str
    system: SourceSystem
    base_url: str
    token_sealed: bytes
    mode: ConnectionMode
    seller: dict[str, Any]
    cutoff_at: dt.datetime
    cursor_at: dt.datetime | None
    updated_at: dt.datetime | None = None  # changes whenever the configuration is replaced
    poll_interval: dt.timedelta | None = None  # its own schedule; None: the service's default

    @property
    def polled(self) -> bool:
        """Whether the poller reads this connection (push systems deliver on their own)."""
        return self.system in POLLED_SYSTEMS


POLLED_SYSTEMS = frozenset(
    {
        SourceSystem.FORTNOX,
        SourceSystem.VISMA_EACCOUNTING,
        SourceSystem.VISMA_NET,
        SourceSystem.SIRVOY,
    }
)
"""Systems erp-poller reads by API; the others (Winner, on-premise agents) push to it."""

PAYMENT_PREFIX = "payment:"


def event_subject(kind: DocumentKind, document_id: str, document_number: str | None) -> str:
    """The event's `ce_subject`: the number users know an invoice by; a payment's own id, so
    a payment numbered like an invoice is never mistaken for it."""
    if kind is DocumentKind.PAYMENT:
        return document_id
    return document_number or document_id


def payment_document_id(source_id: object) -> str:
    """A payment's document id: prefixed, so it never collides with an invoice id."""
    return f"{PAYMENT_PREFIX}{source_id}"


# ------------------------------------------------------------------------- credentials


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


Credentials = (
    TokenCredentials
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


def content_version(document: dict[str, Any]) -> str:
    """A stable hash of a document's content: equal content, equal version."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def window_start(connection: Connection, overlap: dt.timedelta) -> dt.datetime:
    """Where the next poll starts: the last poll's start minus the overlap, never before cut-off.

    Timestamps in ERPs are often minute-grained and written late; re-reading an overlap and
    deduplicating by version is what guarantees nothing written near the watermark is missed.
    """
    if connection.cursor_at is None:
        return connection.cutoff_at
    return max(connection.cutoff_at, connection.cursor_at - overlap)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def fortnox_kind(invoice: dict[str, Any]) -> DocumentKind:
    """Fortnox marks credit invoices with ``Credit`` (and negative totals)."""
    credit = _true(invoice.get("Credit"))
    total = invoice.get("Total")
    negative = total is not None and Decimal(str(total)) < 0
    return DocumentKind.CREDIT_NOTE if credit or negative else DocumentKind.INVOICE


def visma_eaccounting_kind(invoice: dict[str, Any]) -> DocumentKind:
    """eAccounting marks credit invoices with ``IsCreditInvoice``."""
    return (
        DocumentKind.CREDIT_NOTE if _true(invoice.get("IsCreditInvoice")) else DocumentKind.INVOICE
    )


def visma_net_kind(invoice: dict[str, Any]) -> DocumentKind:
    """Visma.net names the type in ``documentType`` (plain, or ``{"value": …}``)."""
    raw = invoice.get("documentType")
    value = raw.get("value") if isinstance(raw, dict) else raw
    credit = str(value or "").replace(" ", "").lower() == "creditnote"
    return DocumentKind.CREDIT_NOTE if credit else DocumentKind.INVOICE


def sirvoy_kind(invoice: dict[str, Any]) -> DocumentKind:
    """Sirvoy marks credit invoices with ``isCreditInvoice``."""
    return (
        DocumentKind.CREDIT_NOTE if _true(invoice.get("isCreditInvoice")) else DocumentKind.INVOICE
    )


def fetched_event(
    connection: Connection,
    *,
    document_id: str,
    document_number: str | None,
    kind: DocumentKind,
    payload: dict[str, Any],
    related: dict[str, dict[str, Any]],
    version: str,
    fetched_at: dt.datetime,
) -> ErpDocumentFetched:
    """The event for a new version of a source document."""
    return ErpDocumentFetched(
        tenant_id=connection.tenant_id,
        invoice_id=canonical_invoice_id(
            connection.tenant_id, connection.system, connection.connection_id, document_id
        ),
        test_mode=connection.mode is ConnectionMode.TEST,
        source=SourceRef(
            system=connection.system,
            connection_id=connection.connection_id,
            document_id=document_id,
            document_number=document_number,
        ),
        kind=kind,
        version=version,
        fetched_at=fetched_at,
        payload=payload,
        related=related,
    )
