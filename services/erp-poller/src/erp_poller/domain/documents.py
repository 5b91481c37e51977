"""Documents: their content versions, kinds and subjects, what a push did with each, and the
``erp.document.fetched`` event that carries a new version with the tenant's profile."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_schemas.common import ConnectionMode, SourceRef, canonical_invoice_id
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched
from nordflow_schemas.tenant import TenantProfile

from .connections import Connection
from .profiles import tenant_related

PAYMENT_PREFIX = "payment:"


def content_version(document: dict[str, Any]) -> str:
    """A stable hash of a document's content: equal content, equal version."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def event_subject(kind: DocumentKind, document_id: str, document_number: str | None) -> str:
    """The event's `ce_subject`: the number users know an invoice by; a payment's own id, so
    a payment numbered like an invoice is never mistaken for it."""
    if kind is DocumentKind.PAYMENT:
        return document_id
    return document_number or document_id


def payment_document_id(source_id: object) -> str:
    """A payment's document id: prefixed, so it never collides with an invoice id."""
    return f"{PAYMENT_PREFIX}{source_id}"


@dataclass(frozen=True)
class Document:
    """A source document, polled or pushed, as the mapper receives it in
    ``erp.document.fetched``: the payload as the source gave it, its kind and the source's
    related records (the tenant's profile is added when it is emitted)."""

    document_id: str
    document_number: str | None
    kind: DocumentKind
    payload: dict[str, Any]
    related: dict[str, dict[str, Any]]
    # The source's change time, where pushes of the same document also arrive (Sirvoy's
    # webhooks): an older snapshot is never emitted over a newer one.
    source_time: dt.datetime | None = None
    # What the document's version covers, when more than its payload (e.g. an SIE voucher
    # with its registered customer); None: the payload.
    versioned: dict[str, Any] | None = None

    @property
    def version(self) -> str:
        """The content version: equal content (and context it depends on), equal version."""
        return content_version(self.payload if self.versioned is None else self.versioned)

    @property
    def subject(self) -> str:
        """The event's `ce_subject`."""
        return event_subject(self.kind, self.document_id, self.document_number)


@dataclass
class Outcome:
    """What happened to one document of a push."""

    document_id: str
    outcome: str  # emitted | unchanged | pending | outdated | skipped | error | valid
    kind: str | None = None
    document_number: str | None = None
    invoice_id: str | None = None
    reason: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The response item (empty fields left out)."""
        out: dict[str, Any] = {"document_id": self.document_id, "outcome": self.outcome}
        for key in ("kind", "document_number", "invoice_id", "reason"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.errors:
            out["errors"] = self.errors
        return out


def counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """How many documents had each outcome."""
    return dict(Counter(o.outcome for o in outcomes))


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
    profile: TenantProfile,
    document: Document,
    *,
    version: str,
    fetched_at: dt.datetime,
) -> ErpDocumentFetched:
    """The event for a new version of a source document, with the tenant's profile in
    ``related`` (see `tenant_related`)."""
    return ErpDocumentFetched(
        tenant_id=connection.tenant_id,
        invoice_id=canonical_invoice_id(
            connection.tenant_id, connection.system, connection.connection_id, document.document_id
        ),
        test_mode=connection.mode is ConnectionMode.TEST,
        source=SourceRef(
            system=connection.system,
            connection_id=connection.connection_id,
            document_id=document.document_id,
            document_number=document.document_number,
        ),
        kind=document.kind,
        version=version,
        fetched_at=fetched_at,
        payload=document.payload,
        flow=connection.flow,
        related={**document.related, **tenant_related(profile)},
    )
