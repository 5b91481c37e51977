"""A delivery as it is recorded and shown: its attempts, overrides and suggestions (values)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from nordflow_schemas.events import Channel, ValidationIssue
from nordflow_schemas.invoice import Invoice

from .channels import Route

DeliveryStatus = Literal["scheduled", "sent", "failed", "uncertain", "test", "not_sent"]
SuggestionState = Literal["open", "dismissed", "accepted"]


@dataclass(frozen=True)
class Attempt:
    """One send attempt (its key is what the partner dedupes and is asked about)."""

    idempotency_key: str
    channel: Channel
    attempt: int
    state: str
    recipient: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    partner_reference: str | None = None
    cost: Decimal | None = None
    error: str | None = None


@dataclass(frozen=True)
class NewDelivery:
    """What routing records for an invoice (one row per invoice id)."""

    invoice_id: str
    tenant_id: str
    number: str
    channel: Channel
    recipient: str  # as shown: a personal number only masked
    test_mode: bool
    routed_at: dt.datetime
    status: DeliveryStatus
    document_sha256: str | None
    errors: tuple[ValidationIssue, ...]
    document_format: str
    customer_key: str
    routes: tuple[Route, ...]
    route_reason: str | None
    invoice: Invoice
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    not_sent_reason: str | None = None


def not_sent_reason(distribute: bool, invoice: Invoice) -> str | None:
    """Why an invoice is never sent, or None: its connection's flow excludes distribution (the
    ERP or the tenant sends it, or it is only booked or recorded), or it is a cash receipt
    already paid through a provider, which must never reach the buyer as payable."""
    if not distribute:
        return "the connection's flow excludes distribution"
    if invoice.settled_by is not None and invoice.totals.payable == 0:
        return (
            f"a cash receipt already paid via {invoice.settled_by}: nothing is payable, so it "
            "is not sent"
        )
    return None


@dataclass(frozen=True)
class SentDelivery:
    """What the send job records of an accepted send."""

    route: Route
    now: dt.datetime
    reference: str
    cost: Decimal
    archive_sequence: int
    sha256: str
    attachments: list[dict[str, object]]


@dataclass(frozen=True)
class NewSuggestion:
    """A cheaper channel a customer could take, as the send job found it."""

    tenant_id: str
    customer_key: str
    invoice_id: str
    current: Channel
    suggested: Channel
    recipient: str
    now: dt.datetime
    snooze: dt.timedelta


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery under the send job's row lock."""

    status: str
    customer_key: str
    invoice: Invoice
    routes: tuple[Route, ...]
    # The routed document's SHA-256 when the official rules passed it at routing (PEPPOL).
    document_sha256: str | None = None


@dataclass(frozen=True)
class DeliveryView:
    """What happened to one invoice's distribution (the API's view)."""

    invoice_id: str
    number: str
    status: str
    test_mode: bool
    channel: Channel
    recipient: str
    document_format: str | None
    customer_key: str | None
    routed_at: dt.datetime
    due_at: dt.datetime | None
    completed_at: dt.datetime | None
    routes: tuple[Route, ...]
    route_reason: str | None
    partner_reference: str | None
    cost: Decimal | None
    archive_sequence: int | None
    errors: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    attempts: list[Attempt] = field(default_factory=list)
    not_sent_reason: str | None = None

    @property
    def fallbacks(self) -> list[tuple[Channel, str]]:
        """The channels that refused the invoice for good, with the reason."""
        return [(a.channel, a.error or "refused") for a in self.attempts if a.state == "fallback"]


@dataclass(frozen=True)
class Override:
    """The tenant's default channel (``customer_key`` None) or one customer's channel."""

    customer_key: str | None
    channel: Channel
    updated_at: dt.datetime


@dataclass(frozen=True)
class Suggestion:
    """A cheaper channel found for a customer."""

    suggestion_id: int
    customer_key: str
    invoice_id: str
    current_channel: Channel
    suggested_channel: Channel
    recipient: str
    state: SuggestionState
    suggested_at: dt.datetime
    decided_at: dt.datetime | None
