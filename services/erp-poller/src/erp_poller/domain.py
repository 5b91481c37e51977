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


def fortnox_kind(invoice: dict[str, Any]) -> DocumentKind:
    """Fortnox marks credit invoices with ``Credit`` (and negative totals)."""
    credit = str(invoice.get("Credit", "")).lower() == "true" or invoice.get("Credit") is True
    total = invoice.get("Total")
    negative = total is not None and Decimal(str(total)) < 0
    return DocumentKind.CREDIT_NOTE if credit or negative else DocumentKind.INVOICE


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
