"""Use cases: schedule closings and reported payments, and write each entry into the ERP
exactly once. Repositories (``Repositories``) and the ERP writers are passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.events import (
    EntryKind,
    InvoiceTransferred,
    LedgerEntryPosted,
    PaymentReceived,
)
from nordflow_schemas.tenant import local_date

from .domain import (
    POST_ENTRY,
    AccountRole,
    PlannedEntry,
    UnpostableError,
    WriteConnection,
    WriteConnectionMissingError,
    WriteSystem,
    adoptable,
    closing_amount,
    closing_key,
    closing_zone,
    payment_key,
)


class JobScheduler(Protocol):
    """Durable jobs, recorded in the caller's transaction."""

    async def schedule(
        self,
        *,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool:
        """Record a job; False if one with the same kind and key exists already."""
        ...


class ConnectionRepository(Protocol):
    """The tenants' write connections (one per source connection id)."""

    async def find(self, tenant_id: str, connection_id: str) -> WriteConnection | None:
        """The tenant's write connection for a source connection, if any."""
        ...

    async def save(self, connection: WriteConnection) -> None:
        """Create or replace a connection (not its system); raises
        ``ConnectionOfAnotherTenantError`` if the id is another tenant's."""
        ...


class IntentLog(Protocol):
    """The intent to write, committed on its own before the ERP is called."""

    async def record(
        self, entry_key: str, tenant_id: str, entry: PlannedEntry, account: int
    ) -> None:
        """Insert the intent row (once per entry key), or count one more attempt on it; it
        survives whatever happens to the job's transaction."""
        ...


class EntryRepository(Protocol):
    """The entries written into the ERP, in the job's transaction."""

    async def known_references(self, invoice_id: str) -> set[str]:
        """The ERP references already recorded for the invoice's entries."""
        ...

    async def record_posted(
        self, entry_key: str, erp_reference: str, adopted: bool, posted_at: dt.datetime
    ) -> None:
        """Store what the ERP holds for the entry on its intent row."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case of this service reads or writes, on one transaction (the intent
    log apart: it commits on a connection of its own)."""

    connections: ConnectionRepository
    entries: EntryRepository
    intents: IntentLog
    jobs: JobScheduler
    profiles: TenantProfiles


class LedgerWriter(Protocol):
    """What writing an entry needs from one ERP company.

    Raises ``EntryRefusedError`` or ``AuthorizationRefusedError`` when the ERP refuses for good; any
    other error is transient (the job retries, looking up first).
    """

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        """Every payment registered on an invoice, in full."""
        ...

    async def create_payment(
        self,
        *,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        mode_of_payment: str,
        account: int,
    ) -> dict[str, Any]:
        """Register one payment; the ERP's record of it (``Number`` is its reference)."""
        ...


class LedgerWriters(Protocol):
    """The writer of each write connection (kept across jobs, closed at shutdown)."""

    async def writer_for(self, connection: WriteConnection) -> LedgerWriter:
        """The writer of a connection."""
        ...

    async def aclose(self) -> None:
        """Close every writer."""
        ...


async def schedule_closing(
    repos: Repositories, event: InvoiceTransferred, delay: dt.timedelta
) -> bool:
    """Plan the closing entry of a transferred invoice (a durable timer, once per invoice).

    The payment date is the day of ``transferred_at`` in the tenant's zone (``closing_zone``),
    fixed now, so every attempt looks up and writes the same date. Nothing is planned in
    test mode.
    """
    if event.test_mode:
        return False
    zone = closing_zone(await repos.profiles.get(event.tenant_id))
    entry = PlannedEntry(
        invoice_id=event.invoice_id,
        kind=EntryKind.CLOSING_ENTRY,
        source=event.source,
        amount=closing_amount(event.amount, event.document_type),
        currency=event.currency,
        paid_on=local_date(event.transferred_at, zone),
        account_role=AccountRole.FACTORING,
    )
    return await repos.jobs.schedule(
        kind=POST_ENTRY,
        key=closing_key(event.invoice_id),
        tenant_id=event.tenant_id,
        payload=entry.payload(),
        due_at=event.transferred_at + delay,
    )


async def schedule_payment(repos: Repositories, event: PaymentReceived, now: dt.datetime) -> bool:
    """Plan booking a reported payment on its invoice, due now (once per payment id).

    Nothing is planned in test mode, nor for a payment picked up from the ERP itself
    (``recorded_at_source``): booking it again would pay the invoice twice.
    """
    if event.test_mode or event.recorded_at_source:
        return False
    entry = PlannedEntry(
        invoice_id=event.invoice_id,
        kind=EntryKind.INVOICE_PAYMENT,
        source=event.source,
        amount=event.amount,
        currency=event.currency,
        paid_on=event.paid_on,
        account_role=AccountRole.BANK,
    )
    return await repos.jobs.schedule(
        kind=POST_ENTRY,
        key=payment_key(event.payment_id),
        tenant_id=event.tenant_id,
        payload=entry.payload(),
        due_at=now,
    )


async def post_entry(
    repos: Repositories,
    writers: LedgerWriters,
    *,
    entry_key: str,
    tenant_id: str,
    entry: PlannedEntry,
    clock: Callable[[], dt.datetime],
) -> LedgerEntryPosted:
    """Write one entry into the ERP exactly once and return the event saying so.

    The intent row is committed before the ERP is called. The ERP has no idempotency keys,
    so the payments already on the invoice are looked up before every create: one with every
    detail equal that no entry of ours holds yet (an earlier attempt whose outcome was
    unknown: a crash, a timeout, a 5xx after applying) is adopted instead of created again.

    Raises ``WriteConnectionMissingError`` (retried: an operator may still add the connection),
    ``UnpostableError`` and its ``EntryRefusedError``/``AuthorizationRefusedError`` (the job fails).
    """
    connection = await repos.connections.find(tenant_id, entry.source.connection_id)
    if connection is None:
        raise WriteConnectionMissingError(tenant_id, entry.source.connection_id)
    if connection.system not in {system.value for system in WriteSystem}:
        raise UnpostableError(f"no ledger writer for {connection.system!r} yet")
    writer = await writers.writer_for(connection)
    document_number = entry.source.document_number
    if not document_number:
        raise UnpostableError("the source invoice has no document number to book against")
    account = connection.account_for(entry.account_role)
    mode = connection.mode_of_payment
    await repos.intents.record(entry_key, tenant_id, entry, account)
    # Always look first: a killed attempt rolls back our records but not the ERP's. Payments
    # already recorded as another entry of ours are not candidates for adoption.
    known = await repos.entries.known_references(entry.invoice_id)
    found: Mapping[str, Any] | None = adoptable(
        await writer.payments_for_invoice(document_number),
        amount=entry.amount,
        mode=mode,
        account=account,
        paid_on=entry.paid_on,
        known=known,
    )
    payment = found
    if payment is None:
        payment = await writer.create_payment(
            document_number=document_number,
            amount=entry.amount,
            payment_date=entry.paid_on,
            mode_of_payment=mode,
            account=account,
        )
    reference = str(payment.get("Number"))
    posted_at = clock()
    await repos.entries.record_posted(entry_key, reference, found is not None, posted_at)
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
    )


async def add_connection(connections: ConnectionRepository, connection: WriteConnection) -> None:
    """Create or replace where ledger-closer writes for a source connection (its credentials
    sealed already); ``ConnectionOfAnotherTenantError`` if the id is another tenant's."""
    await connections.save(connection)
