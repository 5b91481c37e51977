"""Use cases of booking documents into the accounting system a connection's flow names
(Sirvoy invoices, payments and credits into Fortnox; Winner orders into Fortnox or Tripletex),
exactly once; and of what distribution reports (the delivered check's facts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import (
    BookingAction,
    BookingTarget,
    EventBody,
    InvoiceBooked,
    InvoiceBookingSkipped,
    InvoiceCreated,
)

from ..domain import (
    BOOK_DOCUMENT,
    CLOSE_INVOICE,
    INVOICE_ORDER,
    Booking,
    Delivery,
    NotBookedYetError,
    Skip,
    UnpostableError,
    WriteConnectionMissingError,
    Written,
    booking_key,
    closing_key,
    closing_zone,
    invoicing_key,
    plan_booking,
)
from ..domain.booking import booking_payload, order_invoice_due
from ..domain.delivery import WAITING
from .ports import LedgerWriters, Repositories

Clock = Callable[[], dt.datetime]


async def record_created(repos: Repositories, event: InvoiceCreated, now: dt.datetime) -> bool:
    """Keep the invoice for the delivered check, and plan writing it into the system its
    flow books it into (a ``book-document`` job, once per invoice; test mode too: the job
    then writes nothing and says what it would have done)."""
    delivery = Delivery.PENDING if event.flow.distribute else Delivery.BY_ERP
    await repos.documents.record_created(
        event.tenant_id, event.invoice_id, event.invoice.number, event.invoice.source, delivery
    )
    if event.flow.book_into is None:
        return False
    return await repos.jobs.schedule(
        kind=BOOK_DOCUMENT,
        key=booking_key(event.invoice_id),
        tenant_id=event.tenant_id,
        payload=booking_payload(event),
        due_at=now,
    )


async def record_delivery(
    repos: Repositories, tenant_id: str, invoice_id: str, delivery: Delivery, now: dt.datetime
) -> bool:
    """Keep what distribution reported (also before the invoice was seen created: then it is
    the document's delivery from the start); a closing that waited for the report, or was
    held because the invoice had not reached its buyer and now has, is planned again (due
    now). True when one was."""
    document = await repos.documents.set_delivery(tenant_id, invoice_id, delivery)
    if document is None or document.held is None or delivery is Delivery.PENDING:
        return False
    waited = bool(document.held.get(WAITING))
    if not waited and delivery is not Delivery.DELIVERED:
        return False
    payload = await repos.documents.release(invoice_id)
    if payload is None:
        return False
    payload.pop(WAITING, None)
    return await repos.jobs.schedule(
        kind=CLOSE_INVOICE,
        key=f"{closing_key(invoice_id)}:{'reported' if waited else 'delivered'}",
        tenant_id=document.tenant_id,
        payload=payload,
        due_at=now,
    )


def _target(system: str, connection_id: str) -> BookingTarget:
    return BookingTarget(system=SourceSystem(system), connection_id=connection_id)


async def book_document(
    repos: Repositories, writers: LedgerWriters, event: InvoiceCreated, *, key: str, clock: Clock
) -> list[EventBody]:
    """Write one document into its target exactly once; the events saying what happened.

    A skip (a paid cash receipt, or a credit of one) is kept and announced, nothing written.
    In test mode the writer only reads and the event lists what it would write. Otherwise the
    booking's intent row is committed before the first call, every record is looked up by our
    reference before it is created, and a booked order gets its invoicing planned for when
    its part is due. Writes through one connection run one at a time (``lock_writes``), so
    two documents of one new customer never both create it.
    Raises ``WriteConnectionMissingError`` and ``NotBookedYetError`` (a credit of an invoice
    not booked yet; both retried) and ``UnpostableError`` (the job fails).
    """
    target_id = event.flow.book_into
    assert target_id is not None
    connection = await repos.connections.find(event.tenant_id, target_id)
    if connection is None:
        raise WriteConnectionMissingError(event.tenant_id, target_id)
    await repos.connections.lock_writes(target_id)  # one write through it at a time
    target = _target(connection.system, target_id)
    plan = plan_booking(event)
    original = None
    if isinstance(plan, Booking) and plan.action is BookingAction.CREDIT_INVOICE:
        if plan.credited_invoice_id is None:
            raise UnpostableError("the credit note names no invoice it credits")
        credited = booking_key(plan.credited_invoice_id)
        original = await repos.bookings.reference_of(credited)
        if original is None and not event.test_mode:
            skipped = await repos.bookings.skipped_reason(credited)
            if skipped is None:
                raise NotBookedYetError(plan.credited_invoice_id)
            plan = Skip(f"the invoice it credits was not booked either: {skipped}")
    if isinstance(plan, Skip):
        skipped_at = clock()
        if not event.test_mode:
            # Kept, so a payment or credit of it is not waited for (there is nothing to book
            # it on in the target, and there never will be).
            await repos.bookings.record_skipped(
                key, event.tenant_id, event.invoice_id, target_id, plan.reason, skipped_at
            )
        return [
            InvoiceBookingSkipped(
                tenant_id=event.tenant_id,
                invoice_id=event.invoice_id,
                test_mode=event.test_mode,
                number=event.invoice.number,
                source=event.invoice.source,
                target=target,
                reason=plan.reason,
                skipped_at=skipped_at,
            )
        ]
    booker = await writers.booker_for(connection)
    if not event.test_mode:
        await repos.intents.begin_booking(
            key, event.tenant_id, event.invoice_id, plan.action.value, target_id
        )
    written = await booker.book(plan, original, dry_run=event.test_mode)
    booked_at = clock()
    if not event.test_mode:
        await repos.bookings.record_booked(
            key, written.erp_reference, tuple(written.records), booked_at
        )
        if plan.action is BookingAction.ORDER and written.erp_reference is not None:
            await repos.jobs.schedule(
                kind=INVOICE_ORDER,
                key=invoicing_key(event.invoice_id),
                tenant_id=event.tenant_id,
                payload={"invoice_id": event.invoice_id, "event": event.model_dump(mode="json")},
                due_at=order_invoice_due(plan, booked_at),
            )
    return [_booked(event, plan, target, written.action or plan.action, written, booked_at)]


def _booked(
    event: InvoiceCreated,
    plan: Booking,
    target: BookingTarget,
    action: BookingAction,
    written: Written,
    booked_at: dt.datetime,
) -> InvoiceBooked:
    return InvoiceBooked(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        test_mode=event.test_mode,
        number=plan.number,
        source=event.invoice.source,
        target=target,
        action=action,
        erp_reference=written.erp_reference,
        records=tuple(written.records),
        booked_at=booked_at,
    )


async def invoice_order(
    repos: Repositories, writers: LedgerWriters, event: InvoiceCreated, *, key: str, clock: Clock
) -> InvoiceBooked:
    """Invoice a booked order in its target, once (its part of the payment calendar is due).

    The intent row is committed first; the writer asks the target whether the order was
    invoiced already (an earlier attempt's) before invoicing it.
    """
    target_id = event.flow.book_into
    assert target_id is not None
    connection = await repos.connections.find(event.tenant_id, target_id)
    if connection is None:
        raise WriteConnectionMissingError(event.tenant_id, target_id)
    await repos.connections.lock_writes(target_id)  # one write through it at a time
    order = await repos.bookings.reference_of(booking_key(event.invoice_id))
    if order is None:
        raise NotBookedYetError(event.invoice_id)
    plan = plan_booking(event)
    assert isinstance(plan, Booking)
    booker = await writers.booker_for(connection)
    await repos.intents.begin_booking(
        key, event.tenant_id, event.invoice_id, BookingAction.ORDER_INVOICED.value, target_id
    )
    # Without a due date the order is invoiced today: the tenant's date, not UTC's (from
    # 22:00 or 23:00 UTC it is already tomorrow in the Nordic countries).
    zone = closing_zone(await repos.profiles.get(event.tenant_id))
    invoice_date = plan.due_date or clock().astimezone(zone).date()
    written = await booker.invoice_order(order, plan, invoice_date, dry_run=False)
    booked_at = clock()
    await repos.bookings.record_booked(
        key, written.erp_reference, tuple(written.records), booked_at
    )
    target = _target(connection.system, target_id)
    return _booked(event, plan, target, BookingAction.ORDER_INVOICED, written, booked_at)
