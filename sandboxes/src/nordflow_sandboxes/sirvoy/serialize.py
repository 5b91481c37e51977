"""JSON shapes: Sirvoy's documented booking event payload, and the sandbox's assumed read API.

The booking fields, their order and their quirks (a room's `adults` and `price` are strings,
`RoomTypeName`/`RoomName` are capitalised) follow the example callbacks Sirvoy publishes
(version 1.0, support article and blog "Adding a booking event webhook"). Version 2.0 (from
2024-06-10) adds `generatedAt`; the further 2.0 fields used here (`guestReference`,
`bookingSource`, `totalSurcharges`, `totalPriceIncludingSurcharges`, `payments[]`,
`invoices[]`) are as third-party receivers of Sirvoy's callbacks read them. The items of
`payments[]` and `invoices[]` are not documented anywhere we found: their shape is the
sandbox's ASSUMPTION, shared with the read API so a consumer parses both with one model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nordflow_sandboxes.sirvoy.domain import Account, Booking, Invoice, InvoiceRow, Payment

PAYLOAD_VERSION = "2.0"


def instant(moment: datetime) -> str:
    """UTC ISO 8601 with microseconds, e.g. `2025-03-10T11:15:30.123456+00:00` (modifiedAt)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def seconds(moment: datetime) -> str:
    """UTC ISO 8601 to the second, as Sirvoy's example shows `bookingDate`/`generatedAt`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def money(value: Decimal) -> int | float:
    """A JSON number: integral amounts without decimals (Sirvoy's example: `"totalPrice":2020`)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _row(row: InvoiceRow) -> dict[str, Any]:
    return {
        "description": row.description,
        "quantity": money(row.quantity),
        "unitPrice": money(row.unit_price),
        "vatRate": money(row.vat_rate),
        "accountCode": row.account_code,
        "amount": money(row.amount),
        "vatAmount": money(row.vat_amount),
    }


def payment(item: Payment) -> dict[str, Any]:
    """A payment (ASSUMED shape, see the module docstring)."""
    return {
        "paymentId": item.payment_id,
        "bookingId": item.booking_id,
        "invoiceId": item.invoice_id,
        "amount": money(item.effective_amount),
        "currency": item.currency,
        "paymentDate": item.payment_date.isoformat(),
        "method": item.method,
        "provider": item.provider,
        "providerReference": item.provider_reference,
        "voided": item.voided,
        "modifiedAt": instant(item.modified_at),
    }


def invoice(account: Account, item: Invoice) -> dict[str, Any]:
    """An invoice, cash receipt or credit invoice (ASSUMED shape, see the module docstring)."""
    payments = [account.payments[pid] for pid in item.payment_ids]
    paid = sum((p.effective_amount for p in payments), Decimal(0))
    credited = account.invoices.get(item.credited_invoice_id or 0)
    return {
        "invoiceId": item.invoice_id,
        "invoiceNumber": item.invoice_number,
        "bookingId": item.booking_id,
        "type": item.kind,
        "isCreditInvoice": item.is_credit_invoice,
        "creditedInvoiceId": item.credited_invoice_id,
        "creditedInvoiceNumber": credited.invoice_number if credited else None,
        "creditedByInvoiceId": item.credited_by_invoice_id,
        "invoiceDate": item.invoice_date.isoformat(),
        "dueDate": item.due_date.isoformat() if item.due_date else None,
        "currency": item.currency,
        "recipient": dict(item.recipient),
        "rows": [_row(row) for row in item.rows],
        "totalAmount": money(item.total),
        "totalVat": money(item.total_vat),
        "paidAmount": money(paid),
        "balance": money(item.total - paid),
        "payments": [
            {
                "paymentId": p.payment_id,
                "amount": money(p.effective_amount),
                "method": p.method,
                "provider": p.provider,
                "providerReference": p.provider_reference,
            }
            for p in payments
        ],
        "modifiedAt": instant(item.modified_at),
    }


def booking(account: Account, item: Booking) -> dict[str, Any]:
    """The booking as Sirvoy's webhook documents it, invoices and payments included."""
    total = money(item.total_price)
    return {
        "propertyId": account.property_id,
        "bookingId": item.booking_id,
        "channelBookingId": item.channel_booking_id,
        "bookingDate": seconds(item.booking_date),
        "arrivalDate": item.arrival_date.isoformat(),
        "departureDate": item.departure_date.isoformat(),
        "cancelled": item.cancelled,
        "eta": item.eta,
        "totalAdults": item.total_adults,
        "guest": dict(item.guest),
        "guestReference": item.guest_reference,
        "bookingSource": item.booking_source,
        "internalComment": item.internal_comment,
        "couponCode": None,
        "rooms": [
            {
                "RoomTypeName": room.room_type_name,
                "RoomTypeDescription": None,
                "RoomName": room.room_name,
                "RoomId": room.room_id,
                "arrivalDate": room.arrival_date.isoformat(),
                "departureDate": room.departure_date.isoformat(),
                "adults": str(room.adults),
                "quantity": room.quantity,
                "price": str(money(room.price)),
                "roomTotal": money(room.total),
                "guestName": None,
                "comment": None,
            }
            for room in item.rooms
        ],
        "additionalItems": [],
        "currency": item.currency,
        "totalPrice": total,
        "totalSurcharges": 0,
        "totalPriceIncludingSurcharges": total,
        "payments": [payment(account.payments[pid]) for pid in item.payment_ids],
        "invoices": [invoice(account, account.invoices[iid]) for iid in item.invoice_ids],
    }


def booking_event(
    account: Account, item: Booking, event: str, generated_at: datetime
) -> dict[str, Any]:
    """One webhook callback: `version`, `generatedAt`, `event`, then the whole booking."""
    return {
        "version": PAYLOAD_VERSION,
        "generatedAt": seconds(generated_at),
        "event": event,
        **booking(account, item),
    }
