"""Use case: route each created invoice once; an e-invoice is rendered and validated first."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Protocol

import asyncpg
from nordflow_schemas.events import (
    Channel,
    EventBody,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    InvoiceDistributed,
    ValidationIssue,
)
from nordflow_schemas.invoice import ElectronicAddress, Invoice

from .documents.registry import RendererRegistry
from .documents.validation import ValidationReport
from .domain import Route, choose_channel, document_type, participant_candidates


class CapabilityLookup(Protocol):
    """Whether a participant accepts a document type (ParticipantLookup satisfies it)."""

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        """True when the participant is registered for the document type."""
        ...


class DocumentValidator(Protocol):
    """Official rules for a rendered document (PeppolValidator satisfies it)."""

    def validate(self, document: bytes) -> ValidationReport:
        """Every rule violation found."""
        ...


async def find_participant(invoice: Invoice, lookup: CapabilityLookup) -> tuple[str, str] | None:
    """The first of the buyer's identifiers registered for this document type."""
    wanted = document_type(invoice)
    for scheme, value in participant_candidates(invoice.buyer):
        if await lookup.accepts(scheme, value, wanted):
            return scheme, value
    return None


def with_endpoint(invoice: Invoice, participant: tuple[str, str]) -> Invoice:
    """The invoice addressed to the participant the lookup found (BT-49)."""
    scheme, value = participant
    buyer = invoice.buyer.model_copy(
        update={"electronic_address": ElectronicAddress(scheme=scheme, value=value)}
    )
    return invoice.model_copy(update={"buyer": buyer})


async def distribute_invoice(
    conn: asyncpg.Connection,
    event: InvoiceCreated,
    now: dt.datetime,
    *,
    lookup: CapabilityLookup,
    renderers: RendererRegistry,
    validator: DocumentValidator,
) -> EventBody | None:
    """Route once; return invoice.distributed, invoice.delivery_failed or None.

    A PEPPOL document with a fatal rule violation is never sent: its rule ids and messages
    go to the user. A test-mode invoice is routed, rendered and validated, and only its
    failures are reported.
    """
    seen = await conn.fetchval("SELECT 1 FROM deliveries WHERE invoice_id = $1", event.invoice_id)
    if seen:
        return None
    invoice = event.invoice
    participant = await find_participant(invoice, lookup)
    route = choose_channel(invoice, participant)
    checksum: str | None = None
    errors: tuple[ValidationIssue, ...] = ()
    if route.channel is Channel.PEPPOL and participant is not None:
        document = renderers.render(route.document_format, with_endpoint(invoice, participant))
        checksum = hashlib.sha256(document).hexdigest()
        errors = tuple(
            ValidationIssue(field=v.location or "document", rule=v.rule_id, message=v.message)
            for v in validator.validate(document).fatal
        )
    await _record(conn, event, route, now, checksum, errors)
    if errors:
        return InvoiceDeliveryFailed(
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            test_mode=event.test_mode,
            number=invoice.number,
            channel=route.channel,
            document_format=route.document_format,
            errors=errors,
            failed_at=now,
        )
    if event.test_mode:
        return None
    return InvoiceDistributed(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        number=invoice.number,
        channel=route.channel,
        document_format=route.document_format,
        recipient=route.recipient,
        distributed_at=now,
    )


async def _record(
    conn: asyncpg.Connection,
    event: InvoiceCreated,
    route: Route,
    now: dt.datetime,
    checksum: str | None,
    errors: tuple[ValidationIssue, ...],
) -> None:
    await conn.execute(
        "INSERT INTO deliveries (invoice_id, tenant_id, number, channel, recipient, test_mode, "
        "distributed_at, status, document_sha256, errors) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)",
        event.invoice_id,
        event.tenant_id,
        event.invoice.number,
        route.channel.value,
        route.recipient,
        event.test_mode,
        now,
        "failed" if errors else "sent",
        checksum,
        json.dumps([e.model_dump() for e in errors]) if errors else None,
    )
