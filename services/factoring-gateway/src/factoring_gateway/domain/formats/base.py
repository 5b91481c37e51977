"""What every file format takes and gives: a batch's header and lines, its named files."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from nordflow_schemas.events import PayeeAccount
from nordflow_schemas.invoice import DocumentType, Invoice, Party


@dataclass(frozen=True)
class OutFile:
    """One file of a batch, as it is handed to the provider."""

    name: str
    media_type: str
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class FileHeader:
    """What every file of one batch carries: who sends it, its serial and when it was made."""

    client_number: str
    company_name: str
    serial: int
    created_at: dt.datetime  # aware, in the tenant's zone
    payee: PayeeAccount | None = None


@dataclass(frozen=True)
class BatchLine:
    """One invoice or credit note of a batch, with the terms it goes under."""

    invoice: Invoice
    payment_reference: str | None
    fee: Decimal
    advance: Decimal | None

    @property
    def amount(self) -> Decimal:
        """The payable amount (positive for credit notes too)."""
        return self.invoice.totals.payable

    @property
    def is_credit(self) -> bool:
        """A credit note."""
        return self.invoice.document_type is DocumentType.CREDIT_NOTE


@dataclass(frozen=True)
class DueDateChange:
    """A transferred invoice whose due date moved afterwards."""

    invoice: Invoice  # the newest version
    old_due_date: dt.date
    new_due_date: dt.date
    payment_reference: str | None


class FileFormat(Protocol):
    """A provider's file format: the batch's invoices (and their customers) in, files out."""

    @property
    def format_id(self) -> str:
        """The id an agreement names the format by."""
        ...

    @property
    def max_invoices(self) -> int:
        """At most this many invoices in one batch (a bigger window makes several)."""
        ...

    def check(self, invoice: Invoice) -> str | None:
        """None if the invoice fits the format's fields, else why not (it is ineligible)."""
        ...

    def render(self, header: FileHeader, lines: list[BatchLine]) -> list[OutFile]:
        """The batch's files, in the order they are handed over."""
        ...

    def render_changes(self, header: FileHeader, changes: list[DueDateChange]) -> list[OutFile]:
        """A change batch: due dates moved after transfer."""
        ...


def customer_key(buyer: Party) -> str:
    """The buyer's number in the seller's ledger, else its organisation number, else name."""
    return buyer.customer_number or buyer.company_id or buyer.name


def digits(text: str | None) -> str:
    """Only the digits of ``text`` (an organisation number written with '-' …)."""
    return "".join(c for c in text or "" if c.isdigit())
