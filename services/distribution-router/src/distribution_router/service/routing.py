"""Use case: route each created invoice once and schedule its send (the send-invoice job).

Routing happens in the consumer's transaction: the recipient's reachability is looked up
(PEPPOL SMP, the banks' B2C registry), the tenant's override applied, a PEPPOL document
rendered and validated, and one `deliveries` row plus one `send-invoice` job recorded, due
when the customer's hold (quarantine) ends. Nothing is sent here, and nothing is announced
except a document that can never be sent (`invoice.delivery_failed`, returned) and a hold
(`delivery.hold_updated`, written to the outbox by `holds.start_hold`).

It also renders each channel's document with the hold attachments (`render_document`), which
the send job uses too.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from nordflow_documents.pdf import render_pdf
from nordflow_documents.printable import build_letter, media_type
from nordflow_documents.registry import Attachment as EmbeddedAttachment
from nordflow_documents.registry import RendererRegistry, default_registry
from nordflow_documents.validation import shared_validator
from nordflow_schemas.events import (
    Channel,
    EventBody,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    ValidationIssue,
)
from nordflow_schemas.invoice import ElectronicAddress, Invoice

from ..domain.channels import (
    FORMATS,
    Reachability,
    Route,
    RoutePlan,
    customer_key,
    document_type,
    participant_candidates,
    plan_routes,
    public_recipient,
)
from ..domain.deliveries import DeliveryStatus, NewDelivery, not_sent_reason
from ..domain.documents import Handling, Rendered, TravelledAttachment
from ..domain.masking import personal_number
from ..domain.sending import Attachment, never_sendable
from . import holds
from .ports import CapabilityLookup, ConsumerRegistry, DocumentValidator, Partners, Repositories


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


async def render(
    partners: Partners,
    route: Route,
    invoice: Invoice,
    attachments: Sequence[Attachment] = (),
    *,
    validated: str | None = None,
) -> Rendered:
    """`render_document` off the event loop: in the renderer processes when the service has
    them (rendering and the official rules are CPU work that would stall every other
    invoice), else here. ``validated``: see `render_document`."""
    if partners.processes is None:
        return render_document(
            route,
            invoice,
            renderers=partners.renderers,
            validator=partners.validator,
            attachments=attachments,
            validated=validated,
        )
    # The invoice travels as its JSON: pickling the model, nested model by nested model,
    # cost this process about 0.15 ms more per hand-over (docs/performance.md, change 17).
    return await partners.processes.call(
        _render_in_worker,
        route,
        invoice.model_dump_json(),
        tuple(attachments),
        validated,
    )


def _render_in_worker(
    route: Route,
    invoice_json: str,
    attachments: tuple[Attachment, ...],
    validated: str | None,
) -> Rendered:
    """`render_document` in a renderer process, with that process's registry and validator
    (compiled once per process), of the invoice read back from its JSON."""
    return render_document(
        route,
        Invoice.model_validate_json(invoice_json),
        renderers=default_registry(),
        validator=shared_validator(),
        attachments=attachments,
        validated=validated,
    )


def render_document(
    route: Route,
    invoice: Invoice,
    *,
    renderers: RendererRegistry,
    validator: DocumentValidator,
    attachments: Sequence[Attachment] = (),
    validated: str | None = None,
) -> Rendered:
    """The document for a channel: validated UBL for PEPPOL, else the invoice PDF.

    ``validated`` is the SHA-256 of a UBL document the official rules already passed (at
    routing): the renderer is deterministic, so the same bytes are not validated again.

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
        errors: tuple[ValidationIssue, ...] = ()
        if validated is None or hashlib.sha256(content).hexdigest() != validated:
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


async def record_not_sent(
    repos: Repositories,
    event: InvoiceCreated,
    key: str,
    override: Channel | None,
    reason: str,
    now: dt.datetime,
) -> None:
    """Record an invoice that is never sent, with the reason; no job, nothing asked of the
    networks (its channel is the cheapest one reachable without asking them)."""
    invoice = event.invoice
    plan = plan_routes(invoice, Reachability(participant=None, b2c_registered=False), override)
    first = plan.first
    await repos.deliveries.record(
        NewDelivery(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            number=invoice.number,
            channel=first.channel,
            recipient=public_recipient(first),
            test_mode=event.test_mode,
            routed_at=now,
            status="not_sent",
            document_sha256=None,
            errors=(),
            document_format=first.document_format or FORMATS[first.channel],
            customer_key=key,
            routes=plan.routes,
            route_reason=plan.reason,
            invoice=invoice,
            due_at=None,
            completed_at=now,
            not_sent_reason=reason,
        )
    )


# How many invoices of a batch ask the networks (SMP, the banks' registry) at once.
LOOKUPS_AT_ONCE = 16

Scope = Callable[[int], AbstractContextManager[object]]
"""What the work for the event at an index of a batch runs in (its trace, its log context)."""


def no_scope(index: int) -> AbstractContextManager[object]:
    """Nothing around an event's work (use cases called without a consumer)."""
    return contextlib.nullcontext()


@dataclass(frozen=True)
class _Routable:
    """An invoice of a batch to route: not routed before, and to be distributed."""

    index: int
    event: InvoiceCreated
    key: str
    override: Channel | None


async def distribute_invoice(
    repos: Repositories, partners: Partners, event: InvoiceCreated, now: dt.datetime
) -> EventBody | None:
    """Route once; schedule the send; return invoice.delivery_failed or None.

    An invoice whose flow excludes distribution, or a cash receipt already paid through a
    provider, is recorded as ``not_sent`` with the reason and never scheduled. A PEPPOL
    document with a fatal rule violation is never sent: its rule ids and messages go to the
    user. A test-mode invoice is routed, rendered and validated but gets no send
    job; only its failures are reported (with ``test_mode``). A held invoice is announced
    by `holds.start_hold` itself (``delivery.hold_updated``, placed).
    """
    return (await distribute_many(repos, partners, [event], now))[0]


async def distribute_many(
    repos: Repositories,
    partners: Partners,
    events: Sequence[InvoiceCreated],
    now: dt.datetime,
    *,
    scope: Scope = no_scope,
) -> list[EventBody | None]:
    """`distribute_invoice` for a consumed batch; the outcome of each event, in order.

    Each invoice is routed exactly as on its own, in three steps: the transaction's reads
    (routed before? the customer's override, not to be sent?), then the networks' lookups
    and the renders of every invoice at once (`LOOKUPS_AT_ONCE` lookups, the renderer
    processes' queue), then the transaction's writes in the batch's order. Routing one
    invoice never depends on another's (holds and overrides are read, not written), so a
    batch waits for its slowest lookup and its renders spread over the renderer processes,
    instead of waiting for the sum of them one after the other. An invoice twice in the
    batch is routed once. ``scope(i)`` is what the writes of ``events[i]`` run in: the
    consumer continues that event's trace there, so its send job carries it.
    """
    outcomes: list[EventBody | None] = [None] * len(events)
    routable: list[_Routable] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        if event.invoice_id in seen or await repos.deliveries.exists(event.invoice_id):
            continue
        seen.add(event.invoice_id)
        key = customer_key(event.invoice.buyer)
        override = await repos.overrides.for_customer(event.tenant_id, key)
        reason = not_sent_reason(event.flow.distribute, event.invoice)
        if reason is not None:
            await record_not_sent(repos, event, key, override, reason, now)
            continue
        routable.append(_Routable(index, event, key, override))
    if not routable:
        return outcomes
    lookups = asyncio.Semaphore(LOOKUPS_AT_ONCE)
    tasks = [asyncio.ensure_future(_plan(partners, item, lookups)) for item in routable]
    try:
        planned = await asyncio.gather(*tasks)
    except BaseException:
        # The first failure is raised as it is (a lookup's error names its partner); the
        # rest of the batch's lookups are not left running.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for item, (plan, rendered) in zip(routable, planned, strict=True):
        with scope(item.index):
            outcomes[item.index] = await _record(repos, item, plan, rendered, now)
    return outcomes


async def _plan(
    partners: Partners, item: _Routable, lookups: asyncio.Semaphore
) -> tuple[RoutePlan, Rendered | None]:
    """The invoice's routes, from what the networks say; the first route's document when it
    is checked now (PEPPOL, or a test-mode invoice)."""
    invoice = item.event.invoice
    async with lookups:
        reach = await reachability(invoice, partners.lookup, partners.registry)
    plan = plan_routes(invoice, reach, item.override)
    if plan.first.channel is Channel.PEPPOL or item.event.test_mode:
        return plan, await render(partners, plan.first, invoice)
    return plan, None


async def _record(
    repos: Repositories,
    item: _Routable,
    plan: RoutePlan,
    rendered: Rendered | None,
    now: dt.datetime,
) -> EventBody | None:
    """Record the routed invoice and schedule its send (or its failure); the event to emit."""
    event, key = item.event, item.key
    invoice = event.invoice
    first = plan.first
    errors = (*never_sendable(invoice), *(rendered.errors if rendered is not None else ()))
    due_at: dt.datetime | None = None
    status: DeliveryStatus
    if errors:
        status = "failed"
    elif event.test_mode:
        status = "test"
    else:
        status = "scheduled"
        held = await holds.hold_for(
            repos.holds, tenant_id=event.tenant_id, customer_key=key, now=now
        )
        if held is not None and held[0] > now:
            await holds.start_hold(  # announces delivery.hold_updated (placed)
                repos,
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                customer_key=key,
                until=held[0],
                number=invoice.number,
                reason=held[1],
            )
        due_at = max(held[0] if held is not None else now, now)
    await repos.deliveries.record(
        NewDelivery(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            number=invoice.number,
            channel=first.channel,
            recipient=public_recipient(first),  # a consumer's personal number only masked
            test_mode=event.test_mode,
            routed_at=now,
            status=status,
            document_sha256=rendered.sha256 if rendered is not None else None,
            errors=errors,
            document_format=first.document_format or FORMATS[first.channel],
            customer_key=key,
            routes=plan.routes,
            route_reason=plan.reason,
            invoice=invoice,
            due_at=due_at,
            completed_at=now if status == "failed" else None,
        )
    )
    if due_at is not None:
        await repos.deliveries.schedule_send(event.tenant_id, event.invoice_id, due_at)
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
