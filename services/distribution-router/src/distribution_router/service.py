"""Use case: route each created invoice once and schedule its send (the send-invoice job).

Routing happens in the consumer's transaction: the recipient's reachability is looked up
(PEPPOL SMP, the banks' B2C registry), the tenant's override applied, a PEPPOL document
rendered and validated, and one `deliveries` row plus one `send-invoice` job recorded, due
when the customer's hold (quarantine) ends. Nothing is sent here, and nothing is announced
except a document that can never be sent (`invoice.delivery_failed`).

It also renders each channel's document with the hold attachments (`render_document`) and
keeps the tenant's paper options (`paper_options`), which the send job uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import asyncpg
from nordflow_documents.pdf import render_pdf
from nordflow_documents.printable import build_letter, media_type
from nordflow_documents.registry import Attachment as EmbeddedAttachment
from nordflow_documents.registry import RendererRegistry
from nordflow_documents.validation import ValidationReport
from nordflow_runtime import jobs
from nordflow_schemas.events import (
    Channel,
    EventBody,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    ValidationIssue,
)
from nordflow_schemas.invoice import ElectronicAddress, Invoice

from .channels.base import Attachment
from .domain import (
    FORMATS,
    Reachability,
    Route,
    RoutePlan,
    customer_key,
    document_type,
    participant_candidates,
    personal_number,
    plan_routes,
    public_recipient,
)

SEND_INVOICE = "send-invoice"

Postage = Literal["A", "B"]
# How an attachment went with the invoice: inside the UBL or the bank's PDF, beside the PDF in
# the e-mail, printed after the invoice in the letter, or named on the invoice as not printed.
Handling = Literal["embedded", "attached", "printed", "not_printed"]


class CapabilityLookup(Protocol):
    """Whether a participant accepts a document type (ParticipantLookup satisfies it)."""

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        """True when the participant is registered for the document type."""
        ...


class ConsumerRegistry(Protocol):
    """The banks' B2C e-invoice registry (the B2C bank adapter satisfies it)."""

    async def registered(self, personal_number: str) -> bool:
        """True when the consumer takes e-invoices from us in the internet bank."""
        ...


class DocumentValidator(Protocol):
    """Official rules for a rendered document (PeppolValidator satisfies it)."""

    def validate(self, document: bytes) -> ValidationReport:
        """Every rule violation found."""
        ...


class Holds(Protocol):
    """The quarantine rules (the ``holds`` module satisfies it)."""

    async def hold_until(
        self, conn: asyncpg.Connection, *, tenant_id: str, customer_key: str, now: dt.datetime
    ) -> dt.datetime | None:
        """When the hold of a new invoice of this customer ends, or None when not held."""
        ...

    async def start_hold(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: str,
        invoice_id: str,
        customer_key: str,
        until: dt.datetime,
    ) -> bool:
        """Record the held invoice (in the transaction that schedules its send job)."""
        ...


@dataclass(frozen=True)
class TravelledAttachment:
    """How one hold attachment went with the invoice on one channel (kept on the delivery)."""

    filename: str
    content_type: str
    size: int
    handling: Handling
    pages: int | None = None  # printed: its pages in the letter
    reason: str | None = None  # not printed: why

    def as_json(self) -> dict[str, Any]:
        """One entry of ``deliveries.attachments``."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "handling": self.handling,
            "pages": self.pages,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Rendered:
    """A document ready to send over one channel; ``errors`` are fatal rule violations.

    ``attachments`` says how each hold attachment travels with it on this channel.
    """

    content: bytes
    content_type: str
    filename: str
    errors: tuple[ValidationIssue, ...] = ()
    attachments: tuple[TravelledAttachment, ...] = ()

    @property
    def sha256(self) -> str:
        """The checksum recorded for what was (or would be) sent."""
        return hashlib.sha256(self.content).hexdigest()

    @property
    def not_printed(self) -> tuple[TravelledAttachment, ...]:
        """The attachments a letter could not carry (named on its invoice)."""
        return tuple(a for a in self.attachments if a.handling == "not_printed")


@dataclass(frozen=True)
class PaperOptions:
    """A tenant's choices for printed letters; None = the service's default (PRINT_POST_*)."""

    postage: Postage | None = None
    colour: bool | None = None
    duplex: bool | None = None
    updated_at: dt.datetime | None = None

    def channel_options(self) -> dict[str, str]:
        """As ``Outgoing.options`` for the print adapter: only what the tenant set."""
        options: dict[str, str] = {}
        if self.postage is not None:
            options["postage"] = self.postage
        if self.colour is not None:
            options["colour"] = "true" if self.colour else "false"
        if self.duplex is not None:
            options["duplex"] = "true" if self.duplex else "false"
        return options


async def find_participant(invoice: Invoice, lookup: CapabilityLookup) -> tuple[str, str] | None:
    """The first of the buyer's identifiers registered for this document type."""
    wanted = document_type(invoice)
    for scheme, value in participant_candidates(invoice.buyer):
        if await lookup.accepts(scheme, value, wanted):
            return scheme, value
    return None


async def reachability(
    invoice: Invoice, lookup: CapabilityLookup | None, registry: ConsumerRegistry | None
) -> Reachability:
    """Ask the networks whether they reach this buyer: PEPPOL for companies, the bank for
    consumers (by personal number). A missing collaborator means "not reachable there".
    """
    participant = await find_participant(invoice, lookup) if lookup is not None else None
    number = personal_number(invoice.buyer)
    registered = False
    if registry is not None and number is not None:
        registered = await registry.registered(number)
    return Reachability(participant=participant, b2c_registered=registered)


def with_endpoint(invoice: Invoice, recipient: str) -> Invoice:
    """The invoice addressed to the PEPPOL participant ``scheme:value`` found (BT-49)."""
    scheme, _, value = recipient.partition(":")
    buyer = invoice.buyer.model_copy(
        update={"electronic_address": ElectronicAddress(scheme=scheme, value=value)}
    )
    return invoice.model_copy(update={"buyer": buyer})


def render_document(
    route: Route,
    invoice: Invoice,
    *,
    renderers: RendererRegistry,
    validator: DocumentValidator,
    attachments: Sequence[Attachment] = (),
) -> Rendered:
    """The document for a channel: validated UBL for PEPPOL, else the invoice PDF.

    The attachments travel on every channel: inside the UBL for PEPPOL (BG-24), embedded in
    the PDF for the bank (listed on its last page), as separate files beside the PDF by
    e-mail (the adapter gets them in ``Outgoing.attachments``), and printed after the
    invoice in the one PDF of a letter (what cannot be printed is named on the invoice).
    """
    if route.channel is Channel.PEPPOL:
        embedded = [EmbeddedAttachment(a.filename, a.content_type, a.content) for a in attachments]
        content = renderers.render(
            route.document_format, with_endpoint(invoice, route.recipient), embedded
        )
        errors = tuple(
            ValidationIssue(field=v.location or "document", rule=v.rule_id, message=v.message)
            for v in validator.validate(content).fatal
        )
        return Rendered(
            content,
            "application/xml",
            f"{invoice.number}.xml",
            errors,
            _travelled(attachments, "embedded"),
        )
    filename = f"invoice-{invoice.number}.pdf"
    if route.channel is Channel.PAPER:
        letter = build_letter(invoice, attachments)
        placed = tuple(
            TravelledAttachment(
                p.filename,
                p.content_type,
                p.size,
                "printed" if p.printed else "not_printed",
                pages=p.pages if p.printed else None,
                reason=p.reason,
            )
            for p in letter.placed
        )
        return Rendered(letter.content, "application/pdf", filename, attachments=placed)
    if route.channel is Channel.B2C_BANK:
        content = render_pdf(invoice, attachments=[(a.filename, a.content) for a in attachments])
        return Rendered(
            content, "application/pdf", filename, attachments=_travelled(attachments, "embedded")
        )
    return Rendered(
        render_pdf(invoice),
        "application/pdf",
        filename,
        attachments=_travelled(attachments, "attached"),
    )


def _travelled(
    attachments: Sequence[Attachment], handling: Handling
) -> tuple[TravelledAttachment, ...]:
    return tuple(
        TravelledAttachment(a.filename, media_type(a.content_type), len(a.content), handling)
        for a in attachments
    )


async def paper_options(conn: asyncpg.Connection, tenant_id: str) -> PaperOptions:
    """The tenant's paper options (all None when it set none: the service's defaults)."""
    row = await conn.fetchrow(
        "SELECT postage, colour, duplex, updated_at FROM paper_options WHERE tenant_id = $1",
        tenant_id,
    )
    if row is None:
        return PaperOptions()
    return PaperOptions(row["postage"], row["colour"], row["duplex"], row["updated_at"])


async def set_paper_options(
    conn: asyncpg.Connection, tenant_id: str, options: PaperOptions
) -> PaperOptions:
    """Replace the tenant's paper options; a None leaves that choice to the service default."""
    row = await conn.fetchrow(
        "INSERT INTO paper_options (tenant_id, postage, colour, duplex) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tenant_id) DO UPDATE SET postage = EXCLUDED.postage, "
        "colour = EXCLUDED.colour, duplex = EXCLUDED.duplex, updated_at = now() "
        "RETURNING postage, colour, duplex, updated_at",
        tenant_id,
        options.postage,
        options.colour,
        options.duplex,
    )
    assert row is not None
    return PaperOptions(row["postage"], row["colour"], row["duplex"], row["updated_at"])


async def delete_paper_options(conn: asyncpg.Connection, tenant_id: str) -> bool:
    """Back to the service's defaults; False when the tenant had set none."""
    deleted: bool | None = await conn.fetchval(
        "DELETE FROM paper_options WHERE tenant_id = $1 RETURNING true", tenant_id
    )
    return bool(deleted)


async def channel_override(
    conn: asyncpg.Connection, tenant_id: str, customer: str
) -> Channel | None:
    """The customer's own channel, else the tenant's default, else None."""
    value: str | None = await conn.fetchval(
        "SELECT channel FROM channel_overrides WHERE tenant_id = $1 AND customer_key IN ($2, '') "
        "ORDER BY customer_key = '' LIMIT 1",
        tenant_id,
        customer,
    )
    return Channel(value) if value else None


async def distribute_invoice(
    conn: asyncpg.Connection,
    event: InvoiceCreated,
    now: dt.datetime,
    *,
    lookup: CapabilityLookup,
    renderers: RendererRegistry,
    validator: DocumentValidator,
    registry: ConsumerRegistry | None = None,
    holds: Holds | None = None,
) -> EventBody | None:
    """Route once; schedule the send; return invoice.delivery_failed or None.

    A PEPPOL document with a fatal rule violation is never sent: its rule ids and messages
    go to the user. A test-mode invoice is routed, rendered and validated but gets no send
    job; only its failures are reported (with ``test_mode``).
    """
    seen = await conn.fetchval("SELECT 1 FROM deliveries WHERE invoice_id = $1", event.invoice_id)
    if seen:
        return None
    invoice = event.invoice
    key = customer_key(invoice.buyer)
    override = await channel_override(conn, event.tenant_id, key)
    plan = plan_routes(invoice, await reachability(invoice, lookup, registry), override)
    first = plan.first
    rendered: Rendered | None = None
    if first.channel is Channel.PEPPOL or event.test_mode:
        rendered = render_document(first, invoice, renderers=renderers, validator=validator)
    errors = rendered.errors if rendered is not None else ()
    due_at: dt.datetime | None = None
    if errors:
        status = "failed"
    elif event.test_mode:
        status = "test"
    else:
        status = "scheduled"
        if holds is not None:
            due_at = await holds.hold_until(
                conn, tenant_id=event.tenant_id, customer_key=key, now=now
            )
        if due_at is not None and due_at > now and holds is not None:
            await holds.start_hold(
                conn,
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                customer_key=key,
                until=due_at,
            )
        due_at = max(due_at or now, now)
    await _record(conn, event, plan, key, now, status, due_at, rendered, errors)
    if due_at is not None:
        await jobs.schedule(
            conn,
            kind=SEND_INVOICE,
            key=event.invoice_id,
            tenant_id=event.tenant_id,
            payload={"invoice_id": event.invoice_id},
            due_at=due_at,
        )
    if errors:
        return InvoiceDeliveryFailed(
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            test_mode=event.test_mode,
            number=invoice.number,
            channel=first.channel,
            document_format=first.document_format,
            errors=errors,
            failed_at=now,
        )
    return None


def routes_json(routes: Sequence[Route]) -> str:
    """The route plan as stored in ``deliveries.route``."""
    return json.dumps(
        [
            {
                "channel": r.channel.value,
                "recipient": r.recipient,
                "document_format": r.document_format,
            }
            for r in routes
        ]
    )


def routes_from(value: str | list[dict[str, str]]) -> tuple[Route, ...]:
    """The stored route plan back as routes."""
    items = json.loads(value) if isinstance(value, str) else value
    return tuple(
        Route(Channel(i["channel"]), i["recipient"], i.get("document_format") or "") for i in items
    )


async def _record(
    conn: asyncpg.Connection,
    event: InvoiceCreated,
    plan: RoutePlan,
    key: str,
    now: dt.datetime,
    status: str,
    due_at: dt.datetime | None,
    rendered: Rendered | None,
    errors: tuple[ValidationIssue, ...],
) -> None:
    first = plan.first
    await conn.execute(
        "INSERT INTO deliveries (invoice_id, tenant_id, number, channel, recipient, test_mode, "
        "distributed_at, status, document_sha256, errors, document_format, customer_key, route, "
        "route_reason, invoice, due_at, completed_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::jsonb, $14, "
        "$15::jsonb, $16, $17)",
        event.invoice_id,
        event.tenant_id,
        event.invoice.number,
        first.channel.value,
        public_recipient(first),  # a consumer's personal number only masked
        event.test_mode,
        now,
        status,
        rendered.sha256 if rendered is not None else None,
        json.dumps([e.model_dump() for e in errors]) if errors else None,
        first.document_format or FORMATS[first.channel],
        key,
        routes_json(plan.routes),
        plan.reason,
        event.invoice.model_dump_json(),
        due_at,
        now if status == "failed" else None,
    )
