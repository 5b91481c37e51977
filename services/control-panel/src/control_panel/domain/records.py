"""What the read model answers with: plain rows for the pages and the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .journey import Status, Summary


@dataclass(frozen=True)
class InvoiceRow:
    """One invoice as the list shows it."""

    tenant_id: str
    invoice_id: str
    summary: Summary


class SearchError(ValueError):
    """A search that cannot be answered; the message starts with the field's name."""


@dataclass(frozen=True)
class InvoiceSearch:
    """Filters of the invoice list; each is optional and they combine."""

    text: str | None = None
    number: str | None = None
    customer: str | None = None
    source: str | None = None
    status: Status | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None

    def check(self) -> None:
        """Refuse contradictory filters, naming the field."""
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise SearchError("to: before from")
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and self.amount_max < self.amount_min
        ):
            raise SearchError("amount_max: below amount_min")


class JobState(StrEnum):
    """A failed job as the panel last heard of it."""

    FAILED = "failed"
    PENDING = "pending"  # retried: pending again in its service


@dataclass(frozen=True)
class FailedJob:
    """A durable job of a service that failed for good (and whether it was retried since)."""

    service: str
    job_id: int
    tenant_id: str
    kind: str
    job_key: str
    invoice_id: str | None
    state: JobState
    attempts: int
    error: str
    failed_at: dt.datetime
    retried_at: dt.datetime | None
    retried_by: str | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class DeadLetterRow:
    """A record a service could not process, where it sits, and why."""

    letter_id: str
    tenant_id: str
    consumer: str
    origin_topic: str
    origin_partition: str
    origin_offset: str
    position: str
    event_id: str | None
    event_type: str | None
    invoice_id: str | None
    subject: str | None
    reason: str
    dead_lettered_at: dt.datetime
    replayed_at: dt.datetime | None = None


@dataclass(frozen=True)
class ActionRow:
    """An operator action: what was asked, by whom, and how it ended (once it did)."""

    action_id: str
    tenant_id: str
    service: str
    action: str
    target_id: str
    requested_by: str | None
    requested_at: dt.datetime | None
    outcome: str | None
    message: str | None
    completed_at: dt.datetime | None


@dataclass(frozen=True)
class ConnectionRow:
    """A source connection's newest state."""

    tenant_id: str
    connection_id: str
    system: str
    mode: str
    revision: int
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    next_poll_at: dt.datetime | None
    removed: bool
    updated_at: dt.datetime


@dataclass(frozen=True)
class TransferRow:
    """An invoice handed to a factor."""

    tenant_id: str
    transfer_id: str
    invoice_id: str
    number: str
    provider: str
    agreement_kind: str
    amount: Decimal
    currency: str
    transferred_at: dt.datetime
    test_mode: bool
    batch_id: str | None = None  # the provider's file it went in (None from older events)
    file_serial: int | None = None  # that file's serial number


@dataclass(frozen=True)
class EntryRow:
    """A payment or closing entry written into the tenant's ERP."""

    tenant_id: str
    invoice_id: str
    number: str | None
    entry_kind: str
    erp_reference: str
    amount: Decimal
    currency: str
    account: str
    posted_at: dt.datetime


@dataclass(frozen=True)
class PaymentRow:
    """A payment against an invoice."""

    tenant_id: str
    payment_id: str
    invoice_id: str
    number: str | None
    amount: Decimal
    currency: str
    paid_on: dt.date
    payer: str
    recorded_at_source: bool
    received_at: dt.datetime


@dataclass(frozen=True)
class CustomerChannel:
    """The channel a customer's invoices went by last, and how many went."""

    tenant_id: str
    customer_key: str
    customer: str | None
    channel: str
    sent: int
    last_sent_at: dt.datetime


@dataclass(frozen=True)
class SuggestionRow:
    """A cheaper channel distribution-router found for a customer."""

    tenant_id: str
    suggestion_id: int
    invoice_id: str
    customer_key: str
    current_channel: str
    suggested_channel: str
    recipient: str
    suggested_at: dt.datetime
    decision: str | None = None  # accepted | dismissed; None while open
    decided_by: str | None = None
    decided_at: dt.datetime | None = None


@dataclass(frozen=True)
class HoldFile:
    """A file attached to a held invoice (its name, type and size; never its bytes)."""

    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class HoldNeeds:
    """What an open hold waits for: files of these types, at most so many of so many bytes."""

    what: str
    content_types: tuple[str, ...]
    max_files: int
    max_file_bytes: int


@dataclass(frozen=True)
class HoldRow:
    """An invoice held by distribution-router before it is sent, as its newest revision says."""

    tenant_id: str
    invoice_id: str
    number: str | None
    customer: str | None
    revision: int
    change: str
    reason: str | None
    held_at: dt.datetime
    held_until: dt.datetime
    released_at: dt.datetime | None
    released_by: str | None
    needed: HoldNeeds | None
    attachments: tuple[HoldFile, ...]
    updated_at: dt.datetime


@dataclass(frozen=True)
class Counts:
    """Raw counts of one statistics query: (period, label) → count."""

    sent: dict[tuple[dt.date, str], int]
    created: dict[tuple[dt.date, str], int]
    rejected: dict[dt.date, int]
    failed: dict[dt.date, int]
    # Of the sends: what those with a cost in the price list's currency cost, and how many
    # had none (older events, or another currency) and are estimated at the price list.
    cost: dict[tuple[dt.date, str], Decimal] = field(default_factory=dict)
    unpriced: dict[tuple[dt.date, str], int] = field(default_factory=dict)


JsonDict = dict[str, Any]
