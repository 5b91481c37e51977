"""Batches: the invoices of one file (one serial), their fees and advances, and the states
an offered invoice, a batch and its files go through."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from nordflow_schemas.events import Flow
from nordflow_schemas.invoice import DocumentType, Invoice

from .agreements import Agreement
from .formats.base import BatchLine


class InvoiceState(StrEnum):
    """Where an invoice stands here."""

    NOT_OFFERED = "not_offered"  # the connection's flow excludes factoring
    INELIGIBLE = "ineligible"  # no agreement takes it (the reason says why)
    TEST = "test"  # from a connection in test mode: decided, never transferred
    PENDING = "pending"  # eligible, waiting for its window (or an on-demand run)
    WITHDRAWN = "withdrawn"  # paid or cancelled before its window
    BATCHED = "batched"  # in a recorded batch, being handed over
    TRANSFERRED = "transferred"  # the provider has it (receipt or acknowledgement)
    REFUSED = "refused"  # the provider refused its file; a resubmission takes it again


class BatchKind(StrEnum):
    """What a batch carries."""

    INVOICES = "invoices"
    CHANGES = "changes"  # due dates moved after transfer


class BatchState(StrEnum):
    """A batch's way to the provider."""

    RECORDED = "recorded"  # files and serial stored; the upload job will hand them over
    TRANSFERRED = "transferred"  # every file received
    REFUSED = "refused"  # the provider refused a file


class Trigger(StrEnum):
    """What made a batch."""

    WINDOW = "window"
    ON_DEMAND = "on_demand"
    RESUBMIT = "resubmit"


@dataclass(frozen=True)
class OfferedInvoice:
    """An invoice this service was offered, its newest version and where it stands."""

    invoice: Invoice
    state: InvoiceState
    reason: str
    flow: Flow = field(default_factory=Flow)
    agreement_id: str | None = None
    payment_reference: str | None = None
    version: str = ""
    decided_at: dt.datetime | None = None
    batch_id: str | None = None
    factor_due_date: dt.date | None = None  # the due date the provider was given
    trace: tuple[str | None, str | None] = (None, None)  # traceparent, tracestate of its creation

    @property
    def invoice_id(self) -> str:
        """The canonical invoice id."""
        return self.invoice.invoice_id

    @property
    def tenant_id(self) -> str:
        """The tenant."""
        return self.invoice.tenant_id


def line_for(agreement: Agreement, offered: OfferedInvoice) -> BatchLine:
    """An invoice's line in a batch: the fee on invoices (credit notes carry none) and the
    advance the agreement pays at transfer."""
    invoice = offered.invoice
    amount = invoice.totals.payable
    fee = (
        Decimal("0.00")
        if invoice.document_type is DocumentType.CREDIT_NOTE
        else agreement.fees.of(amount)
    )
    return BatchLine(
        invoice=invoice,
        payment_reference=offered.payment_reference,
        fee=fee,
        advance=agreement.advance_of(amount, fee),
    )


def file_order(offered: Sequence[OfferedInvoice]) -> list[OfferedInvoice]:
    """Invoices before credit notes (a credit note follows the invoice it credits), each in
    the order they were offered."""
    return sorted(offered, key=lambda o: o.invoice.document_type is DocumentType.CREDIT_NOTE)


def chunks(items: Sequence[OfferedInvoice], size: int) -> Iterator[list[OfferedInvoice]]:
    """Consecutive slices of at most ``size`` (a format's invoices per file)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def new_batch_id() -> str:
    """A batch id."""
    return f"bat_{uuid.uuid4().hex}"
