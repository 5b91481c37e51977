"""Every topic into the read model: an invoice's steps (and its summary, recomputed from all
of them), the books' tables (holds and suggestions' decisions among them), failed jobs,
dead letters, actions and connections.

Each use case is idempotent (an event recorded twice changes nothing) and order-independent
(the summary is a function of the set of steps; newer-wins rows compare the events' own
times or revisions, never the arrival order).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from nordflow_runtime.dlq import DeadLetter
from nordflow_schemas.events import (
    ChannelSuggested,
    ChannelSuggestionDecided,
    ConnectionUpdated,
    DeliveryHoldUpdated,
    DocumentKind,
    ErpDocumentFetched,
    Event,
    EventBody,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    InvoiceDeliveryUncertain,
    InvoiceDistributed,
    InvoiceRejected,
    InvoiceTransferred,
    InvoiceUpdated,
    JobFailed,
    JobRetried,
    LedgerEntryPosted,
    OperatorActionCompleted,
    OperatorActionRequested,
    PaymentReceived,
    ValidationIssue,
)
from nordflow_schemas.invoice import Invoice
from nordflow_schemas.topics import BY_NAME, JOB_RETRIED, topic_for

from ..domain.journey import DEAD_LETTER, JOB, ErrorItem, Step, peek_customer, summarize
from ..domain.records import DeadLetterRow
from . import Repositories

MAX_FACT = 500  # longest text kept of a fact (a recipient, a reason)


@dataclass(frozen=True)
class Observed:
    """An event as consumed: its id, its CloudEvents time, its trace, and its body."""

    event_id: str
    time: dt.datetime
    trace_id: str | None
    body: Event


def _issues(errors: tuple[ValidationIssue, ...]) -> tuple[ErrorItem, ...]:
    return tuple(ErrorItem(e.field[:MAX_FACT], e.rule[:100], e.message[:2000]) for e in errors)


def _text(value: str | None) -> str | None:
    return value[:MAX_FACT] if value else value


def _clean(value: str | None, longest: int = MAX_FACT) -> str | None:
    """Text from raw bytes, as PostgreSQL can store it (no NUL), at most ``longest``."""
    return value.replace("\x00", "\ufffd")[:longest] if value else value


def invoice_facts(invoice: Invoice) -> dict[str, Any]:
    """What the list needs of a canonical invoice."""
    buyer = invoice.buyer
    return {
        "number": invoice.number,
        "customer": _text(buyer.name),
        # distribution-router's customer key: number, else company id, else name.
        "customer_key": _text(buyer.customer_number or buyer.company_id or buyer.name),
        "source_system": invoice.source.system.value,
        "connection_id": invoice.source.connection_id,
        "document_id": invoice.source.document_id,
        "document_type": invoice.document_type.value,
        "currency": invoice.currency,
        "amount": format(invoice.totals.payable, "f"),
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "lines": len(invoice.lines),
    }


def _source(body: Any) -> dict[str, Any]:
    source = body.source
    return {
        "source_system": source.system.value,
        "connection_id": source.connection_id,
        "document_id": source.document_id,
        "number": source.document_number,
    }


def step_of(seen: Observed) -> Step | None:
    """The journey step an event is, or None if it is no step of an invoice."""
    body = seen.body
    if not isinstance(body, EventBody):
        return None
    at = seen.time
    facts: dict[str, Any] = {}
    errors: tuple[ErrorItem, ...] = ()
    if isinstance(body, ErpDocumentFetched):
        if body.kind is DocumentKind.PAYMENT:
            # A payment document is no invoice: it shows on the paid invoice's journey, as
            # the payment.received the mapper makes of it.
            return None
        at = body.fetched_at
        facts = {
            **_source(body),
            "document_kind": body.kind.value,
            "version": body.version,
            "customer": peek_customer(body.payload, body.related),
        }
    elif isinstance(body, InvoiceCreated | InvoiceUpdated):
        facts = {**invoice_facts(body.invoice), "version": body.version}
    elif isinstance(body, InvoiceRejected):
        facts = {**_source(body), "version": body.version}
        errors = _issues(body.errors)
    elif isinstance(body, InvoiceTransferred):
        at = body.transferred_at
        facts = {
            "number": body.number,
            "provider": body.provider,
            "agreement_kind": body.agreement_kind.value,
            "transfer_id": body.transfer_id,
            "amount": format(body.amount, "f"),
            "currency": body.currency,
            "document_type": body.document_type.value,
            "source_system": body.source.system.value,
            "batch_id": _text(body.batch_id),
            "file_serial": body.file_serial,
        }
    elif isinstance(body, InvoiceDistributed):
        at = body.distributed_at
        facts = {
            "number": body.number,
            "channel": body.channel.value,
            "document_format": body.document_format,
            "recipient": _text(body.recipient),
            "partner_reference": _text(body.partner_reference),
            "archive_sequence": body.archive_sequence,
            "fallbacks": [
                {"channel": f.channel.value, "reason": _text(f.reason)} for f in body.fallbacks
            ],
            "cost": format(body.cost, "f") if body.cost is not None else None,
            "cost_currency": body.cost_currency,
        }
    elif isinstance(body, InvoiceDeliveryFailed):
        at = body.failed_at
        facts = {
            "number": body.number,
            "channel": body.channel.value,
            "document_format": body.document_format,
        }
        errors = _issues(body.errors)
    elif isinstance(body, InvoiceDeliveryUncertain):
        at = body.detected_at
        facts = {
            "number": body.number,
            "channel": body.channel.value,
            "document_format": body.document_format,
            "recipient": _text(body.recipient),
            "reference": _text(body.reference),
        }
        errors = (ErrorItem("delivery", "NF-DELIVERY-UNCERTAIN", body.reason[:2000]),)
    elif isinstance(body, ChannelSuggested):
        at = body.suggested_at
        facts = {
            "customer_key": _text(body.customer_key),
            "current_channel": body.current_channel.value,
            "suggested_channel": body.suggested_channel.value,
            "suggestion_id": body.suggestion_id,
        }
    elif isinstance(body, ChannelSuggestionDecided):
        at = body.decided_at
        facts = {
            "suggestion_id": body.suggestion_id,
            "decision": body.decision.value,
            "current_channel": body.current_channel.value,
            "suggested_channel": body.suggested_channel.value,
            "decided_by": _text(body.decided_by),
        }
    elif isinstance(body, DeliveryHoldUpdated):
        at = body.updated_at
        facts = {
            "number": body.number,
            "change": body.change.value,
            "revision": body.revision,
            "reason": body.reason.value if body.reason is not None else None,
            "held_until": body.held_until.isoformat(),
            "released_by": _text(body.released_by),
            "attachment": _text(body.attachment.filename) if body.attachment else None,
            "attachments": len(body.attachments),
        }
    elif isinstance(body, PaymentReceived):
        facts = {
            **_source(body),
            "payment_id": body.payment_id,
            "amount_paid": format(body.amount, "f"),
            "currency_paid": body.currency,
            "paid_on": body.paid_on.isoformat(),
            "payer": _text(body.payer),
            "recorded_at_source": body.recorded_at_source,
        }
        facts.pop("number")  # the payment's own source document, not the invoice's number
    elif isinstance(body, LedgerEntryPosted):
        at = body.posted_at
        facts = {
            "entry_kind": body.entry_kind.value,
            "erp_reference": body.erp_reference,
            "amount_posted": format(body.amount, "f"),
            "currency_posted": body.currency,
            "account": body.account,
        }
    return Step(
        event_id=seen.event_id,
        tenant_id=body.tenant_id,
        invoice_id=body.invoice_id,
        kind=topic_for(type(body)).name,
        occurred_at=at,
        trace_id=seen.trace_id,
        test_mode=body.test_mode,
        facts=facts,
        errors=errors,
    )


async def record_step(repos: Repositories, step: Step) -> bool:
    """Record a step and recompute its invoice's summary; False if it was recorded before."""
    if not await repos.journeys.add_step(step):
        return False
    steps = await repos.journeys.steps(step.tenant_id, step.invoice_id)
    await repos.journeys.save_summary(step.tenant_id, step.invoice_id, summarize(steps))
    return True


async def apply_event(repos: Repositories, seen: Observed) -> None:
    """Record what an event of any topic says (the one use case every topic goes through)."""
    body = seen.body
    if isinstance(body, JobFailed | JobRetried):
        await _job_event(repos, seen, body)
        return
    if isinstance(body, OperatorActionRequested):
        await repos.operations.action_requested(body)
        return
    if isinstance(body, OperatorActionCompleted):
        await repos.operations.action_completed(body)
        return
    if isinstance(body, ConnectionUpdated):
        await repos.operations.connection_updated(body)
        return
    step = step_of(seen)
    if step is None:
        return
    if not await record_step(repos, step):
        return
    if isinstance(body, InvoiceCreated | InvoiceUpdated):
        await repos.journeys.keep_document(
            body.tenant_id,
            body.invoice_id,
            seen.event_id,
            step.occurred_at,
            body.invoice.model_dump(mode="json"),
        )
    elif isinstance(body, InvoiceTransferred):
        await repos.books.add_transfer(body)
    elif isinstance(body, InvoiceDistributed | InvoiceDeliveryFailed | InvoiceDeliveryUncertain):
        await repos.books.add_delivery(seen.event_id, body)
    elif isinstance(body, ChannelSuggested):
        await repos.books.add_suggestion(body)
    elif isinstance(body, ChannelSuggestionDecided):
        await repos.books.add_suggestion_decision(body)
    elif isinstance(body, DeliveryHoldUpdated):
        await repos.books.hold_updated(body)
    elif isinstance(body, PaymentReceived):
        await repos.books.add_payment(body, seen.time)
    elif isinstance(body, LedgerEntryPosted):
        await repos.books.add_entry(body)


async def _job_event(repos: Repositories, seen: Observed, body: JobFailed | JobRetried) -> None:
    errors: tuple[ErrorItem, ...] = ()
    if isinstance(body, JobFailed):
        await repos.operations.job_failed(body)
        at = body.failed_at
        errors = (ErrorItem(body.kind, f"JOB {body.service}", body.error),)
        facts: dict[str, Any] = {"service": body.service, "job_id": body.job_id}
        facts |= {"job_kind": body.kind, "attempts": body.attempts}
    else:
        await repos.operations.job_retried(body)
        at = body.retried_at
        facts = {"service": body.service, "job_id": body.job_id, "job_kind": body.kind}
        facts["requested_by"] = body.requested_by
    if body.invoice_id:
        await record_step(
            repos,
            Step(
                event_id=seen.event_id,
                tenant_id=body.tenant_id,
                invoice_id=body.invoice_id,
                kind=JOB if isinstance(body, JobFailed) else JOB_RETRIED.name,
                occurred_at=at,
                trace_id=seen.trace_id,
                facts=facts,
                errors=errors,
            ),
        )


def dead_letter_row(
    letter: DeadLetter, letter_id: str, tenant_id: str, at: dt.datetime
) -> DeadLetterRow:
    """The read model's row of a dead letter; its invoice when the origin is keyed by one."""
    attrs = {k: v.decode("utf-8", "replace") for k, v in letter.headers}
    origin = BY_NAME.get(letter.origin_topic)
    keyed_by_invoice = origin is not None and origin.key == "invoice_id"
    key = letter.key.decode("utf-8", "replace") if letter.key else None
    return DeadLetterRow(
        letter_id=_clean(letter_id, 1000) or letter_id,
        tenant_id=_clean(tenant_id, 64) or "unknown",
        consumer=_clean(letter.consumer, 64) or "?",
        origin_topic=_clean(letter.origin_topic, 200) or "?",
        origin_partition=_clean(letter.origin_partition, 20) or "?",
        origin_offset=_clean(letter.origin_offset, 20) or "?",
        position=letter.position,
        event_id=_clean(letter.event_id),
        event_type=_clean(attrs.get("ce_type")),
        invoice_id=_clean(key, 200) if keyed_by_invoice and key else None,
        subject=_clean(attrs.get("ce_subject")),
        reason=_clean(letter.reason, 2000) or "",
        dead_lettered_at=at,
    )


async def apply_dead_letter(repos: Repositories, row: DeadLetterRow, trace_id: str | None) -> None:
    """Record a dead letter; on its invoice's journey too, when it names one of a tenant."""
    await repos.operations.add_dead_letter(row)
    if row.invoice_id and row.tenant_id != "unknown":
        await record_step(
            repos,
            Step(
                event_id=row.letter_id,
                tenant_id=row.tenant_id,
                invoice_id=row.invoice_id,
                kind=DEAD_LETTER,
                occurred_at=row.dead_lettered_at,
                trace_id=trace_id,
                facts={"consumer": row.consumer, "origin_topic": row.origin_topic},
                errors=(ErrorItem(row.origin_topic, f"DLQ {row.consumer}", row.reason),),
            ),
        )
