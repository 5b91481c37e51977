"""The records one Sirvoy sandbox account holds: bookings, invoices, receipts, payments."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.state import RequestRecord
from nordflow_sandboxes.kit.values import ZERO

# Sirvoy's invoicing module makes two kinds of documents (Sirvoy article "The difference between
# registering a payment and creating an invoice"): invoices, paid later, and cash receipts,
# "considered paid immediately". A credit invoice is a further document that credits one of them.
InvoiceKind = Literal["invoice", "cashReceipt"]
# The booking event webhook's documented event names.
BookingEvent = Literal["new", "modified", "cancelled", "restored"]


@dataclass
class Room:
    """One room of a booking; `price` is per night, `quantity` the number of such rooms."""

    room_id: int
    room_type_name: str
    room_name: str
    arrival_date: date
    departure_date: date
    adults: int
    quantity: int
    price: Decimal

    @property
    def nights(self) -> int:
        """Nights between arrival and departure (at least one)."""
        return max(1, (self.departure_date - self.arrival_date).days)

    @property
    def total(self) -> Decimal:
        """Price * nights * quantity."""
        return money(self.price * self.nights * self.quantity)


@dataclass
class Booking:
    """A booking; the webhook sends it whole, invoices and payments included."""

    booking_id: int
    booking_date: datetime
    arrival_date: date
    departure_date: date
    guest: dict[str, Any]
    guest_reference: str
    booking_source: str
    currency: str
    rooms: list[Room]
    modified_at: datetime
    channel_booking_id: str | None = None
    eta: str | None = None
    internal_comment: str | None = None
    cancelled: bool = False
    invoice_ids: list[int] = field(default_factory=list)
    payment_ids: list[int] = field(default_factory=list)

    @property
    def total_price(self) -> Decimal:
        """Sum of the room totals (the sandbox has no extras or surcharges)."""
        return sum((room.total for room in self.rooms), ZERO)

    @property
    def total_adults(self) -> int:
        """Adults over all rooms."""
        return sum(room.adults * room.quantity for room in self.rooms)


@dataclass
class InvoiceRow:
    """One line; `unit_price` includes VAT, as hotel prices to consumers do."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal
    account_code: str | None = None

    @property
    def amount(self) -> Decimal:
        """Quantity * unit price, VAT included."""
        return money(self.quantity * self.unit_price)

    @property
    def vat_amount(self) -> Decimal:
        """The VAT contained in `amount`."""
        return money(self.amount * self.vat_rate / (100 + self.vat_rate))

    def negated(self) -> InvoiceRow:
        """The same line with the quantity negated (for a credit invoice)."""
        return InvoiceRow(
            self.description, -self.quantity, self.unit_price, self.vat_rate, self.account_code
        )


@dataclass
class Invoice:
    """An invoice or cash receipt; a credit invoice names the document it credits."""

    invoice_id: int
    invoice_number: int
    booking_id: int
    kind: InvoiceKind
    invoice_date: date
    due_date: date | None
    currency: str
    recipient: dict[str, Any]
    rows: list[InvoiceRow]
    created_at: datetime
    modified_at: datetime
    credited_invoice_id: int | None = None
    credited_by_invoice_id: int | None = None
    payment_ids: list[int] = field(default_factory=list)

    @property
    def is_credit_invoice(self) -> bool:
        """True for a credit invoice."""
        return self.credited_invoice_id is not None

    @property
    def total(self) -> Decimal:
        """Sum of the rows, VAT included."""
        return sum((row.amount for row in self.rows), ZERO)

    @property
    def total_vat(self) -> Decimal:
        """Sum of the rows' VAT."""
        return sum((row.vat_amount for row in self.rows), ZERO)


@dataclass
class Payment:
    """A payment on a booking, possibly transferred to an invoice or receipt.

    `provider` names the online payment solution that took the money (e.g. "stripe");
    Sirvoy cannot delete a payment, only void it (its amount becomes zero).
    """

    payment_id: int
    booking_id: int
    invoice_id: int | None
    amount: Decimal
    currency: str
    payment_date: date
    method: str
    provider: str | None
    provider_reference: str | None
    created_at: datetime
    modified_at: datetime
    voided: bool = False

    @property
    def effective_amount(self) -> Decimal:
        """The amount, or zero once voided."""
        return ZERO if self.voided else self.amount


DeliveryOutcome = Literal["delivered", "failed", "gave_up", "dropped"]


@dataclass(frozen=True)
class DeliveryRecord:
    """One webhook delivery attempt (or a deliberately dropped event)."""

    at: datetime
    delivery_id: str
    url: str
    event: str
    booking_id: int
    copy: int
    attempt: int
    outcome: DeliveryOutcome
    status: int | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The admin view of the attempt."""
        return {
            "at": self.at.isoformat(),
            "delivery_id": self.delivery_id,
            "url": self.url,
            "event": self.event,
            "booking_id": self.booking_id,
            "copy": self.copy,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class WebhookSettings:
    """How the account's webhook deliveries behave (sandbox switches, not Sirvoy settings).

    `max_attempts` 11 = the first try and Sirvoy's documented "up to 10" retries;
    retry n waits `backoff_seconds * 2^(n-1)`. `duplicates` extra copies of every event
    are sent (at-least-once); `drop` discards events unsent (a missed webhook).
    """

    duplicates: int = 0
    drop: bool = False
    max_attempts: int = 11
    backoff_seconds: float = 1.0

    def as_json(self) -> dict[str, Any]:
        """The admin view of the settings."""
        return {
            "duplicates": self.duplicates,
            "drop": self.drop,
            "max_attempts": self.max_attempts,
            "backoff_seconds": self.backoff_seconds,
        }


@dataclass
class Account:
    """One Sirvoy account (one property) with its records, webhooks and logs."""

    account_id: str
    property_id: int
    name: str
    webhook_secret: str
    created: datetime
    webhook: WebhookSettings
    webhook_urls: list[str] = field(default_factory=list)
    bookings: dict[int, Booking] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    payments: dict[int, Payment] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: deque[RequestRecord] = field(default_factory=deque)
    deliveries: deque[DeliveryRecord] = field(default_factory=deque)
    next_booking_id: int = 26001
    next_invoice_id: int = 700001
    next_invoice_number: int = 1
    next_payment_id: int = 900001

    def take_booking_id(self) -> int:
        """The next booking id."""
        self.next_booking_id += 1
        return self.next_booking_id - 1

    def take_invoice_ids(self) -> tuple[int, int]:
        """The next invoice id and number (invoices, receipts and credits share one series)."""
        self.next_invoice_id += 1
        self.next_invoice_number += 1
        return self.next_invoice_id - 1, self.next_invoice_number - 1

    def take_payment_id(self) -> int:
        """The next payment id."""
        self.next_payment_id += 1
        return self.next_payment_id - 1
