"""Use cases of payments and closings: plan them from invoice.transferred (by agreement kind)
and payment.received, check a closing's invoice reached its buyer, and write each entry into
the ERP exactly once."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal

from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import (
    AgreementKind,
    BookingTarget,
    EntryKind,
    InvoiceClosingHeld,
    InvoiceTransferred,
    LedgerEntryPosted,
    PaymentReceived,
)
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.tenant import local_date

from ..domain import (
    CLOSE_INVOICE,
    POST_ENTRY,
    AccountRole,
    Delivery,
    ErpEntry,
    Hold,
    NotBookedYetError,
    PlannedEntry,
    UnpostableError,
    Wait,
    WriteConnection,
    WriteConnectionMissingError,
    WriteSystem,
    advance_key,
    booking_key,
    closing_amount,
    closing_key,
    closing_zone,
    delivered_check,
    legacy_payment_key,
    payment_key,
)
from ..domain.delivery import WAITING
from ..domain.errors import BookingSkippedError
from .ports import LedgerWriters, Repositories, TransferRecord

log = logging.getLogger(__name__)
ZERO = Decimal(0)


def _fee_of(event: InvoiceTransferred) -> Decimal:
    """A factor's fee: as reported, else what the advance leaves of the amount."""
    if event.document_type is DocumentType.CREDIT_NOTE:
        return ZERO
    if event.fee_amount is not None:
        return event.fee_amount
    if event.advance_amount is not None:
        return max(event.amount - event.advance_amount, ZERO)
    return ZERO


async def schedule_closing(
    repos: Repositories, event: InvoiceTransferred, delay: dt.timedelta
) -> bool:
    """Plan what a transfer writes, by the agreement's kind (a durable timer, once each).

    Factoring closes the full amount against the factoring receivable, its fee on the fee
    account (``close-invoice``, once the invoice reached its buyer). Financing books the
    advance as a liability (``post-entry``, a voucher) and closes when the buyer's payment is
    reported. Invoice service writes nothing until then. The business date is the day of
    ``transferred_at`` in the tenant's zone, fixed now. Nothing is planned in test mode.
    """
    if event.test_mode:
        return False
    await repos.transfers.save(
        event.tenant_id,
        TransferRecord(
            invoice_id=event.invoice_id,
            agreement_kind=event.agreement_kind,
            amount=event.amount,
            advance=event.advance_amount,
            fee=event.fee_amount,
        ),
    )
    paid_on = local_date(
        event.transferred_at, closing_zone(await repos.profiles.get(event.tenant_id))
    )
    due = event.transferred_at + delay
    if event.agreement_kind is AgreementKind.FACTORING:
        entry = PlannedEntry(
            invoice_id=event.invoice_id,
            kind=EntryKind.CLOSING_ENTRY,
            source=event.source,
            amount=closing_amount(event.amount, event.document_type),
            currency=event.currency,
            paid_on=paid_on,
            account_role=AccountRole.FACTORING,
            fee=_fee_of(event),
            document_type=event.document_type,
        )
        key, kind = closing_key(event.invoice_id), CLOSE_INVOICE
    elif event.agreement_kind is AgreementKind.FINANCING and event.advance_amount:
        entry = PlannedEntry(
            invoice_id=event.invoice_id,
            kind=EntryKind.FINANCING_ADVANCE,
            source=event.source,
            amount=event.advance_amount,
            currency=event.currency,
            paid_on=paid_on,
            account_role=AccountRole.BANK,
            document_type=event.document_type,
        )
        key, kind = advance_key(event.invoice_id), POST_ENTRY
    else:
        return False
    return await repos.jobs.schedule(
        kind=kind, key=key, tenant_id=event.tenant_id, payload=entry.payload(), due_at=due
    )


async def schedule_payment(repos: Repositories, event: PaymentReceived, now: dt.datetime) -> bool:
    """Plan booking a payment, due now (once per invoice, payment id and target).

    A payment of a document its flow books into another system is booked there (a Sirvoy
    payment in Fortnox), also when it was picked up from its source. Otherwise a payment
    picked up from the ERP itself (``recorded_at_source``) is not booked again, nor one of
    a factored invoice (closed against the factor at transfer). A financed invoice's payment
    clears the advance's liability; a provider's fee goes on the fee account. Nothing is
    planned in test mode.
    """
    if event.test_mode:
        return False
    target = event.flow.book_into
    advance = fee = ZERO
    if target is None:
        if event.recorded_at_source:
            return False
        transfer = await repos.transfers.get(event.invoice_id)
        # The transfer's agreement kind, else the one a provider's settlement reports.
        kind = transfer.agreement_kind if transfer is not None else event.agreement_kind
        if kind is AgreementKind.FACTORING:
            log.info(
                "payment %s of factored invoice %s: closed at transfer, not booked",
                event.payment_id,
                event.invoice_id,
            )
            return False
        if transfer is not None and kind is AgreementKind.FINANCING:
            advance = transfer.advance or ZERO
            fee = transfer.fee or ZERO
    fee = event.fee_amount if event.fee_amount is not None else fee
    entry = PlannedEntry(
        invoice_id=event.invoice_id,
        kind=EntryKind.INVOICE_PAYMENT,
        source=event.source,
        amount=event.amount,
        currency=event.currency,
        paid_on=event.paid_on,
        account_role=AccountRole.BANK,
        fee=fee,
        advance=advance,
        target=target,
    )
    # Scheduled before the key named the invoice: the same payment, not another one.
    if await repos.jobs.exists(
        kind=POST_ENTRY,
        key=legacy_payment_key(event.payment_id, target),
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
    ):
        return False
    return await repos.jobs.schedule(
        kind=POST_ENTRY,
        key=payment_key(event.invoice_id, event.payment_id, target),
        tenant_id=event.tenant_id,
        payload=entry.payload(),
        due_at=now,
    )


async def _connection(repos: Repositories, tenant_id: str, connection_id: str) -> WriteConnection:
    connection = await repos.connections.find(tenant_id, connection_id)
    if connection is None:
        raise WriteConnectionMissingError(tenant_id, connection_id)
    if connection.system not in {s.value for s in WriteSystem}:
        raise UnpostableError(f"no ledger writer for {connection.system!r}")
    return connection


async def _document(repos: Repositories, entry: PlannedEntry) -> tuple[str, str]:
    """The document's id and number in the ERP written into."""
    if entry.target is not None:
        key = booking_key(entry.invoice_id)
        reference = await repos.bookings.reference_of(key)
        if reference is None:
            skipped = await repos.bookings.skipped_reason(key)
            if skipped is not None:
                raise BookingSkippedError(entry.invoice_id, skipped)
            raise NotBookedYetError(entry.invoice_id)
        return reference, reference
    number = entry.source.document_number
    if not number:
        raise UnpostableError("the source invoice has no document number to book against")
    return entry.source.document_id, number


async def post_entry(
    repos: Repositories,
    writers: LedgerWriters,
    *,
    entry_key: str,
    tenant_id: str,
    entry: PlannedEntry,
    clock: Callable[[], dt.datetime],
    payload: dict[str, object] | None = None,
) -> LedgerEntryPosted | InvoiceClosingHeld | None:
    """Write one entry into the ERP exactly once and return the event saying so.

    A closing first checks the invoice reached its buyer (``delivered_check``, on the
    document's row locked): not yet reported → the closing waits, kept with the document,
    and None is returned (``record_delivery`` plans it again as soon as distribution
    reports, so no retry backoff delays it); it did not → the closing is held (kept until
    distribution reports a send) and ``invoice.closing_held`` returned. Then the intent
    row is committed before the ERP is called, and before every create the ERP is asked for
    what an earlier attempt (a crash, a timeout, a 5xx after applying) may have written; that
    is adopted instead of written again. Writes through one connection run one at a time
    (``lock_writes``, until the job's transaction ends), so another entry's write is never
    taken for an earlier attempt's.

    Raises ``WriteConnectionMissingError``, ``NotBookedYetError`` (retried),
    ``BookingSkippedError`` (a payment of a document whose booking was skipped:
    nothing to write, ever) and ``UnpostableError`` with its refusals (the job fails).
    """
    key = entry.entry_key or entry_key
    connection = await _connection(repos, tenant_id, entry.connection_id)
    # One write through a connection at a time (every replica): what it looks up below
    # includes every other entry's committed record.
    await repos.connections.lock_writes(connection.connection_id)
    writer = await writers.writer_for(connection)
    document_id, document_number = await _document(repos, entry)
    if entry.kind is EntryKind.CLOSING_ENTRY:
        document = await repos.documents.get(entry.invoice_id, lock=True)
        erp_sent = None
        if document is not None and document.delivery is Delivery.BY_ERP:
            erp_sent = await writer.sent(document_id, document_number)
        decision = delivered_check(document.delivery if document else None, erp_sent)
        held = payload if payload is not None else entry.payload()
        if isinstance(decision, Wait):
            await repos.documents.hold(entry.invoice_id, {**held, "entry_key": key, WAITING: True})
            return None
        if isinstance(decision, Hold):
            await repos.documents.hold(entry.invoice_id, {**held, "entry_key": key})
            return InvoiceClosingHeld(
                tenant_id=tenant_id,
                invoice_id=entry.invoice_id,
                number=document_number,
                source=entry.source,
                reason=decision.reason,
                held_at=clock(),
            )
    account = connection.account_for(entry.account_role)
    erp = ErpEntry(
        key=key,
        kind=entry.kind,
        document_id=document_id,
        document_number=document_number,
        credit_note=entry.document_type is DocumentType.CREDIT_NOTE,
        amount=entry.amount,
        cash=entry.cash,
        fee=entry.fee,
        advance=entry.advance,
        currency=entry.currency,
        paid_on=entry.paid_on,
        account=account,
        accounts=connection.accounts,
        mode_of_payment=connection.mode_of_payment,
        bookkeep=entry.target is not None,
    )
    await repos.intents.record(key, tenant_id, entry, account)
    # Always look first: a killed attempt rolls back our records but not the ERP's. What is
    # recorded as another entry of ours is never a candidate.
    known = await repos.entries.known_references(entry.invoice_id)
    state = await repos.intents.state(key)
    reference = await writer.find_entry(erp, known, state)
    adopted = reference is not None
    if reference is None:
        if state is None and (noted := await writer.prepare_entry(erp)) is not None:
            await repos.intents.note_state(key, noted)
        reference = await writer.create_entry(erp)
    await writer.settle_entry(erp, reference)
    posted_at = clock()
    await repos.entries.record_posted(key, reference, adopted, posted_at)
    target = (
        BookingTarget(system=SourceSystem(connection.system), connection_id=entry.target)
        if entry.target is not None
        else None
    )
    return LedgerEntryPosted(
        tenant_id=tenant_id,
        invoice_id=entry.invoice_id,
        source=entry.source,
        entry_kind=entry.kind,
        erp_reference=reference,
        amount=entry.amount,
        currency=entry.currency,
        account=str(account),
        posted_at=posted_at,
        fee_amount=(entry.fee or None) if writer.fee_booked else None,
        target=target,
    )
