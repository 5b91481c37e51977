"""An invoice's journey: the steps the topics told, and the summary that follows from them.

The summary is a pure function of the *set* of steps (never of the order they arrived in),
so the read model is the same whatever order the topics' records are consumed in, and a
step recorded twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from nordflow_schemas.topics import (
    ERP_DOCUMENT_FETCHED,
    EVENT_DEAD_LETTERED,
    INVOICE_CREATED,
    INVOICE_DELIVERY_FAILED,
    INVOICE_DELIVERY_UNCERTAIN,
    INVOICE_DISTRIBUTED,
    INVOICE_REJECTED,
    INVOICE_TRANSFERRED,
    INVOICE_UPDATED,
    JOB_FAILED,
    LEDGER_ENTRY_POSTED,
    PAYMENT_RECEIVED,
)

FETCHED = ERP_DOCUMENT_FETCHED.name
CREATED = INVOICE_CREATED.name
UPDATED = INVOICE_UPDATED.name
REJECTED = INVOICE_REJECTED.name
TRANSFERRED = INVOICE_TRANSFERRED.name
DISTRIBUTED = INVOICE_DISTRIBUTED.name
DELIVERY_FAILED = INVOICE_DELIVERY_FAILED.name
DELIVERY_UNCERTAIN = INVOICE_DELIVERY_UNCERTAIN.name
PAID = PAYMENT_RECEIVED.name
POSTED = LEDGER_ENTRY_POSTED.name
JOB = JOB_FAILED.name
DEAD_LETTER = EVENT_DEAD_LETTERED.name
MAPPED = (CREATED, UPDATED)


class Status(StrEnum):
    """Where an invoice is, furthest step first (see ``status_of``)."""

    CLOSED = "closed"
    BOOKED = "booked"
    PAID = "paid"
    DISTRIBUTED = "distributed"
    UNCERTAIN = "uncertain"
    DELIVERY_FAILED = "delivery_failed"
    TRANSFERRED = "transferred"
    REJECTED = "rejected"
    CREATED = "created"
    FETCHED = "fetched"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ErrorItem:
    """One problem: the field to fix, the rule it breaks, and the message."""

    field: str
    rule: str
    message: str


@dataclass(frozen=True)
class Step:
    """One event of an invoice's journey. ``facts`` are JSON values (money as strings)."""

    event_id: str
    tenant_id: str
    invoice_id: str
    kind: str
    occurred_at: dt.datetime
    trace_id: str | None = None
    test_mode: bool = False
    facts: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[ErrorItem, ...] = ()

    @property
    def order(self) -> tuple[dt.datetime, str]:
        """A total order of steps that does not depend on their arrival."""
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True)
class Summary:
    """What the invoice list shows and searches, derived from every step."""

    number: str | None
    customer: str | None
    customer_key: str | None
    source_system: str | None
    connection_id: str | None
    document_id: str | None
    document_type: str | None
    currency: str | None
    amount: Decimal | None
    issue_date: dt.date | None
    due_date: dt.date | None
    status: Status
    channel: str | None
    partner_reference: str | None
    archive_sequence: int | None
    error_count: int
    test_mode: bool
    trace_id: str | None
    first_seen_at: dt.datetime
    last_event_at: dt.datetime


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return None
    trace = parts[1].lower()
    if trace.strip("0") == "" or any(c not in "0123456789abcdef" for c in trace):
        return None
    return trace


def _latest(steps: Iterable[Step], *kinds: str) -> Step | None:
    chosen = [s for s in steps if s.kind in kinds]
    return max(chosen, key=lambda s: s.order) if chosen else None


def _entries(steps: Sequence[Step], entry_kind: str) -> bool:
    return any(s.kind == POSTED and s.facts.get("entry_kind") == entry_kind for s in steps)


def status_of(steps: Sequence[Step]) -> Status:
    """The furthest step reached; between mapping outcomes the newest counts (a document
    rejected, fixed at the source and created is created; created, then changed at the
    source into something invalid, is rejected until it reaches a later step)."""
    kinds = {s.kind for s in steps}
    ranked = (
        (_entries(steps, "closing_entry"), Status.CLOSED),
        (_entries(steps, "invoice_payment"), Status.BOOKED),
        (PAID in kinds, Status.PAID),
        (DISTRIBUTED in kinds, Status.DISTRIBUTED),
        (DELIVERY_UNCERTAIN in kinds, Status.UNCERTAIN),
        (DELIVERY_FAILED in kinds, Status.DELIVERY_FAILED),
        (TRANSFERRED in kinds, Status.TRANSFERRED),
    )
    for reached, status in ranked:
        if reached:
            return status
    mapping = _latest(steps, CREATED, UPDATED, REJECTED)
    if mapping is not None:
        return Status.REJECTED if mapping.kind == REJECTED else Status.CREATED
    return Status.FETCHED if FETCHED in kinds else Status.UNKNOWN


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        found = Decimal(str(value))
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _first(ordered: Sequence[Step], name: str) -> Any:
    """The fact from the earliest step that has it."""
    for step in ordered:
        value = step.facts.get(name)
        if value not in (None, ""):
            return value
    return None


def summarize(steps: Sequence[Step]) -> Summary:
    """The invoice's summary from all of its steps (at least one)."""
    if not steps:
        raise ValueError("an invoice has at least one step")
    ordered = sorted(steps, key=lambda s: s.order)
    document = _latest(ordered, *MAPPED)
    delivered = _latest(ordered, DISTRIBUTED)
    facts: Mapping[str, Any] = document.facts if document is not None else {}

    def pick(name: str) -> Any:
        return facts.get(name) if facts.get(name) not in (None, "") else _first(ordered, name)

    fetched = [s for s in ordered if s.kind == FETCHED and s.trace_id]
    traced = fetched or [s for s in ordered if s.trace_id]
    sequence = delivered.facts.get("archive_sequence") if delivered is not None else None
    return Summary(
        number=pick("number"),
        customer=pick("customer"),
        customer_key=pick("customer_key"),
        source_system=pick("source_system"),
        connection_id=pick("connection_id"),
        document_id=pick("document_id"),
        document_type=pick("document_type"),
        currency=pick("currency"),
        amount=_decimal(pick("amount")),
        issue_date=_date(pick("issue_date")),
        due_date=_date(pick("due_date")),
        status=status_of(ordered),
        channel=delivered.facts.get("channel") if delivered is not None else None,
        partner_reference=(
            delivered.facts.get("partner_reference") if delivered is not None else None
        ),
        archive_sequence=int(sequence) if isinstance(sequence, int) else None,
        error_count=sum(len(s.errors) for s in ordered),
        test_mode=any(s.test_mode for s in ordered),
        trace_id=traced[0].trace_id if traced else None,
        first_seen_at=ordered[0].occurred_at,
        last_event_at=ordered[-1].occurred_at,
    )


# Where source documents keep the customer's name, for a document never mapped (rejected).
_CUSTOMER_KEYS = ("CustomerName", "InvoiceCustomerName", "customerName", "customer_name")


def peek_customer(payload: Mapping[str, Any], related: Mapping[str, Any]) -> str | None:
    """The customer's name from a raw source document, if it is where sources keep it."""
    for holder in (payload, payload.get("Invoice"), payload.get("invoice")):
        if isinstance(holder, Mapping):
            for key in _CUSTOMER_KEYS:
                if isinstance(holder.get(key), str) and holder[key].strip():
                    return str(holder[key]).strip()[:200]
    recipient = payload.get("recipient")
    if isinstance(recipient, Mapping):
        for key in ("businessName", "name"):
            if isinstance(recipient.get(key), str) and recipient[key].strip():
                return str(recipient[key]).strip()[:200]
    customer = related.get("customer")
    if isinstance(customer, Mapping):
        for key in ("Name", "name"):
            if isinstance(customer.get(key), str) and customer[key].strip():
                return str(customer[key]).strip()[:200]
    return None
