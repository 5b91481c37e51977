"""Use cases on one Sirvoy account: bookings, invoices, receipts, payments, credits, listings.

Callers hold the state lock. Every change stamps `modified_at` on what it changed (and on the
booking), which the read API filters on and the webhook snapshot reflects.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.values import ZERO
from nordflow_sandboxes.sirvoy.domain import (
    Account,
    Booking,
    Invoice,
    InvoiceKind,
    InvoiceRow,
    Payment,
    Room,
)
from nordflow_sandboxes.sirvoy.errors import bad_request, conflict, not_found

# Swedish VAT on accommodation (Mervärdesskattelagen: 12 %); the default for room rows.
ACCOMMODATION_VAT = Decimal(12)
ACCOMMODATION_ACCOUNT = "3002"
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100

T = TypeVar("T", Invoice, Payment)


# ---------------------------------------------------------------------------- bookings


@dataclass(frozen=True)
class RoomSpec:
    """What the admin API takes for one room."""

    room_type_name: str = "Double room"
    room_name: str = "101"
    adults: int = 2
    quantity: int = 1
    price: Decimal = Decimal(1200)


def create_booking(
    account: Account,
    *,
    now: datetime,
    today: date,
    guest: dict[str, Any],
    arrival_date: date | None,
    nights: int,
    rooms: Sequence[RoomSpec],
    currency: str,
    booking_source: str,
    channel_booking_id: str | None,
) -> Booking:
    """A new booking; arrival defaults to today."""
    arrival = arrival_date or today
    departure = arrival + timedelta(days=max(1, nights))
    booking_id = account.take_booking_id()
    booking = Booking(
        booking_id=booking_id,
        booking_date=now,
        arrival_date=arrival,
        departure_date=departure,
        guest=guest,
        guest_reference=f"G{booking_id}",
        booking_source=booking_source,
        currency=currency,
        rooms=[
            Room(
                room_id=index + 1,
                room_type_name=spec.room_type_name,
                room_name=spec.room_name,
                arrival_date=arrival,
                departure_date=departure,
                adults=spec.adults,
                quantity=spec.quantity,
                price=money(spec.price),
            )
            for index, spec in enumerate(rooms or [RoomSpec()])
        ],
        modified_at=now,
        channel_booking_id=channel_booking_id,
    )
    account.bookings[booking_id] = booking
    return booking


def get_booking(account: Account, booking_id: int) -> Booking:
    """One booking, or 404."""
    booking = account.bookings.get(booking_id)
    if booking is None:
        raise not_found(f"No booking {booking_id}")
    return booking


def set_cancelled(account: Account, booking_id: int, cancelled: bool, now: datetime) -> Booking:
    """Cancel or restore a booking."""
    booking = get_booking(account, booking_id)
    if booking.cancelled == cancelled:
        raise conflict(f"Booking {booking_id} is already {'cancelled' if cancelled else 'active'}")
    booking.cancelled = cancelled
    booking.modified_at = now
    return booking


# ---------------------------------------------------------------------------- invoices


@dataclass(frozen=True)
class RowSpec:
    """What the admin API takes for one invoice row (unit price includes VAT)."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal = ACCOMMODATION_VAT
    account_code: str | None = ACCOMMODATION_ACCOUNT


def _rows_from_booking(booking: Booking) -> list[InvoiceRow]:
    return [
        InvoiceRow(
            description=f"{room.room_type_name} {room.room_name}, "
            f"{room.arrival_date.isoformat()} - {room.departure_date.isoformat()}",
            quantity=Decimal(room.nights * room.quantity),
            unit_price=room.price,
            vat_rate=ACCOMMODATION_VAT,
            account_code=ACCOMMODATION_ACCOUNT,
        )
        for room in booking.rooms
    ]


def _recipient_from_booking(booking: Booking) -> dict[str, Any]:
    guest = booking.guest
    name = " ".join(p for p in (guest.get("firstName"), guest.get("lastName")) if p)
    return {
        "name": name or None,
        "businessName": guest.get("businessName"),
        "organisationNumber": None,
        "address": guest.get("address"),
        "postcode": guest.get("postcode"),
        "city": guest.get("city"),
        "country": guest.get("country"),
        "email": guest.get("email"),
    }


def create_invoice(
    account: Account,
    booking_id: int,
    *,
    kind: InvoiceKind,
    now: datetime,
    today: date,
    invoice_date: date | None,
    due_days: int,
    rows: Sequence[RowSpec] | None,
    recipient: dict[str, Any] | None,
    stripe_payment: bool,
    transfer_payment_ids: Sequence[int],
) -> Invoice:
    """An invoice or cash receipt on a booking (rows from the booking unless given).

    A cash receipt is paid at once: by the booking's earlier payments transferred to it, by
    a new Stripe card payment (`stripe_payment`), or otherwise by a new cash payment.
    """
    booking = get_booking(account, booking_id)
    if kind == "invoice" and stripe_payment:
        raise bad_request("stripePayment applies to a cashReceipt only")
    transfers = [_payment_to_transfer(account, booking, pid) for pid in transfer_payment_ids]
    issued = invoice_date or today
    invoice_id, number = account.take_invoice_ids()
    invoice = Invoice(
        invoice_id=invoice_id,
        invoice_number=number,
        booking_id=booking_id,
        kind=kind,
        invoice_date=issued,
        due_date=issued + timedelta(days=due_days) if kind == "invoice" else None,
        currency=booking.currency,
        recipient=recipient or _recipient_from_booking(booking),
        rows=[
            InvoiceRow(r.description, r.quantity, r.unit_price, r.vat_rate, r.account_code)
            for r in rows
        ]
        if rows
        else _rows_from_booking(booking),
        created_at=now,
        modified_at=now,
    )
    account.invoices[invoice_id] = invoice
    booking.invoice_ids.append(invoice_id)
    for payment in transfers:
        payment.invoice_id = invoice_id
        payment.modified_at = now
        invoice.payment_ids.append(payment.payment_id)
    if kind == "cashReceipt":
        outstanding = invoice.total - sum((p.effective_amount for p in transfers), ZERO)
        if outstanding != ZERO:
            register_payment(
                account,
                now=now,
                today=today,
                booking_id=booking_id,
                invoice_id=invoice_id,
                amount=outstanding,
                payment_date=issued,
                method="card" if stripe_payment else "cash",
                provider="stripe" if stripe_payment else None,
            )
    booking.modified_at = now
    return invoice


def _payment_to_transfer(account: Account, booking: Booking, payment_id: int) -> Payment:
    payment = account.payments.get(payment_id)
    if payment is None or payment.booking_id != booking.booking_id:
        raise bad_request(f"Payment {payment_id} is not a payment of booking {booking.booking_id}")
    if payment.invoice_id is not None:
        raise conflict(f"Payment {payment_id} is already on invoice {payment.invoice_id}")
    return payment


def get_invoice(account: Account, invoice_id: int) -> Invoice:
    """One invoice, receipt or credit invoice, or 404."""
    invoice = account.invoices.get(invoice_id)
    if invoice is None:
        raise not_found(f"No invoice {invoice_id}")
    return invoice


def credit_invoice(account: Account, invoice_id: int, *, now: datetime, today: date) -> Invoice:
    """A credit invoice crediting `invoice_id` in full (negated rows, same kind)."""
    original = get_invoice(account, invoice_id)
    if original.is_credit_invoice:
        raise conflict(f"Invoice {invoice_id} is a credit invoice")
    if original.credited_by_invoice_id is not None:
        raise conflict(
            f"Invoice {invoice_id} is already credited by {original.credited_by_invoice_id}"
        )
    credit_id, number = account.take_invoice_ids()
    credit = Invoice(
        invoice_id=credit_id,
        invoice_number=number,
        booking_id=original.booking_id,
        kind=original.kind,
        invoice_date=today,
        due_date=today if original.kind == "invoice" else None,
        currency=original.currency,
        recipient=dict(original.recipient),
        rows=[row.negated() for row in original.rows],
        created_at=now,
        modified_at=now,
        credited_invoice_id=original.invoice_id,
    )
    account.invoices[credit_id] = credit
    original.credited_by_invoice_id = credit_id
    original.modified_at = now
    booking = get_booking(account, original.booking_id)
    booking.invoice_ids.append(credit_id)
    booking.modified_at = now
    return credit


# ---------------------------------------------------------------------------- payments


def register_payment(
    account: Account,
    *,
    now: datetime,
    today: date,
    booking_id: int | None = None,
    invoice_id: int | None = None,
    amount: Decimal | None = None,
    payment_date: date | None = None,
    method: str = "bankTransfer",
    provider: str | None = None,
    provider_reference: str | None = None,
) -> Payment:
    """A payment on an invoice (amount defaults to its balance) or on a booking."""
    invoice = get_invoice(account, invoice_id) if invoice_id is not None else None
    if invoice is not None:
        if booking_id is not None and booking_id != invoice.booking_id:
            raise bad_request(f"Invoice {invoice.invoice_id} belongs to another booking")
        booking_id = invoice.booking_id
    if booking_id is None:
        raise bad_request("A payment needs a bookingId or an invoiceId")
    booking = get_booking(account, booking_id)
    if amount is None:
        if invoice is None:
            raise bad_request("A payment on a booking needs an amount")
        amount = invoice.total - sum(
            (account.payments[p].effective_amount for p in invoice.payment_ids), ZERO
        )
    amount = money(amount)
    if amount == ZERO:
        raise bad_request("The amount must not be zero")
    if provider == "stripe" and provider_reference is None:
        provider_reference = f"pi_{secrets.token_hex(12)}"
    payment_id = account.take_payment_id()
    payment = Payment(
        payment_id=payment_id,
        booking_id=booking_id,
        invoice_id=invoice.invoice_id if invoice else None,
        amount=amount,
        currency=booking.currency,
        payment_date=payment_date or today,
        method=method,
        provider=provider,
        provider_reference=provider_reference,
        created_at=now,
        modified_at=now,
    )
    account.payments[payment_id] = payment
    booking.payment_ids.append(payment_id)
    booking.modified_at = now
    if invoice is not None:
        invoice.payment_ids.append(payment_id)
        invoice.modified_at = now
    return payment


def get_payment(account: Account, payment_id: int) -> Payment:
    """One payment, or 404."""
    payment = account.payments.get(payment_id)
    if payment is None:
        raise not_found(f"No payment {payment_id}")
    return payment


def void_payment(account: Account, payment_id: int, now: datetime) -> Payment:
    """Void a payment: Sirvoy keeps it, with amount zero."""
    payment = get_payment(account, payment_id)
    if payment.voided:
        raise conflict(f"Payment {payment_id} is already voided")
    payment.voided = True
    payment.modified_at = now
    get_booking(account, payment.booking_id).modified_at = now
    if payment.invoice_id is not None:
        get_invoice(account, payment.invoice_id).modified_at = now
    return payment


# ----------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paged listing."""

    items: list[Any]
    next_cursor: str | None


def parse_instant(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 instant with a UTC offset (`Z` accepted), or a 400."""
    if raw is None or raw == "":
        return None
    # A "+" left unencoded in a query string arrives as a space: "…T11:15:30 01:00".
    text = re.sub(r" (\d{2}:\d{2})$", r"+\1", raw.replace("Z", "+00:00"))
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"{name} must be an ISO 8601 date-time, got {raw!r}") from exc
    if value.tzinfo is None:
        raise bad_request(f"{name} must carry a UTC offset (e.g. 2025-03-10T11:15:30Z)")
    return value


def parse_page_size(raw: str | None) -> int:
    """`pageSize`: 1..500, default 100."""
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError as exc:
        raise bad_request(f"pageSize must be an integer, got {raw!r}") from exc
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise bad_request(f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
    return size


def parse_id(name: str, raw: str | None) -> int | None:
    """An optional numeric id filter."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise bad_request(f"{name} must be a number, got {raw!r}")
    return int(raw)


def _encode_cursor(modified_at: datetime, item_id: int) -> str:
    raw = f"{modified_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, item_id = raw.rpartition("|")
        return datetime.fromisoformat(stamp), int(item_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise bad_request("cursor is not one this API returned") from exc


def keyset_page(
    items: Iterable[T],
    key: Callable[[T], int],
    *,
    modified_since: datetime | None,
    cursor: str | None,
    page_size: int,
) -> Page:
    """Items ordered by (modifiedAt, id), from `modifiedSince` (inclusive) and past `cursor`.

    ASSUMPTION (confirm with Sirvoy): the ordering and the opaque cursor are the sandbox's
    design. Keyset paging cannot skip a record that changes while a client pages: the change
    moves it behind the cursor, so it shows up again later instead of shifting others away.
    """
    ordered = sorted(items, key=lambda item: (item.modified_at, key(item)))
    if modified_since is not None:
        ordered = [item for item in ordered if item.modified_at >= modified_since]
    if cursor is not None:
        after = _decode_cursor(cursor)
        ordered = [item for item in ordered if (item.modified_at, key(item)) > after]
    page = ordered[:page_size]
    more = len(ordered) > page_size
    last = page[-1] if page else None
    return Page(
        items=page,
        next_cursor=_encode_cursor(last.modified_at, key(last)) if more and last else None,
    )


def list_invoices(account: Account, query: dict[str, str]) -> Page:
    """`GET /api/v1/invoices`: invoices, cash receipts and credit invoices."""
    booking_id = parse_id("bookingId", query.get("bookingId"))
    items: Iterable[Invoice] = account.invoices.values()
    if booking_id is not None:
        items = [i for i in items if i.booking_id == booking_id]
    return keyset_page(
        items,
        lambda i: i.invoice_id,
        modified_since=parse_instant("modifiedSince", query.get("modifiedSince")),
        cursor=query.get("cursor") or None,
        page_size=parse_page_size(query.get("pageSize")),
    )


def list_payments(account: Account, query: dict[str, str]) -> Page:
    """`GET /api/v1/payments`: payments on bookings and on invoices."""
    booking_id = parse_id("bookingId", query.get("bookingId"))
    invoice_id = parse_id("invoiceId", query.get("invoiceId"))
    items: Iterable[Payment] = account.payments.values()
    if booking_id is not None:
        items = [p for p in items if p.booking_id == booking_id]
    if invoice_id is not None:
        items = [p for p in items if p.invoice_id == invoice_id]
    return keyset_page(
        items,
        lambda p: p.payment_id,
        modified_since=parse_instant("modifiedSince", query.get("modifiedSince")),
        cursor=query.get("cursor") or None,
        page_size=parse_page_size(query.get("pageSize")),
    )
