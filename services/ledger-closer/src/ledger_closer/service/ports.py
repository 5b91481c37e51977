"""What the use cases take: the repositories (one transaction; the intent log apart) and the
writers of the accounting systems, as Protocols."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.common import SourceRef
from nordflow_schemas.events import AgreementKind, BookedRecord

from ..domain import Booking, Delivery, ErpEntry, PlannedEntry, WriteConnection, Written


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

    async def exists(self, *, kind: str, key: str, tenant_id: str, invoice_id: str) -> bool:
        """Whether the tenant has a job of that kind and key for that invoice (in any state)."""
        ...


class ConnectionRepository(Protocol):
    """The tenants' write connections (one per erp-poller connection id)."""

    async def find(self, tenant_id: str, connection_id: str) -> WriteConnection | None:
        """The tenant's write connection of that id, if any."""
        ...

    async def save(self, connection: WriteConnection) -> None:
        """Create or replace a connection (not its system); raises
        ``ConnectionOfAnotherTenantError`` if the id is another tenant's."""
        ...

    async def lock_writes(self, connection_id: str) -> None:
        """Until the transaction ends, only this one writes through the connection: a job of
        the same connection in any process waits for it."""
        ...


class IntentLog(Protocol):
    """The intent to write, committed on its own before the ERP is called, and what an
    earlier attempt noted of the ERP's state before it wrote."""

    async def record(
        self, entry_key: str, tenant_id: str, entry: PlannedEntry, account: int
    ) -> None:
        """Insert the entry's intent row (once per key), or count one more attempt on it."""
        ...

    async def note_state(self, entry_key: str, state: str) -> None:
        """Keep what the ERP held before the first create (only the first note stays)."""
        ...

    async def state(self, entry_key: str) -> str | None:
        """The noted state, if any."""
        ...

    async def begin_booking(
        self, key: str, tenant_id: str, invoice_id: str, action: str, target: str
    ) -> None:
        """Insert a booking's intent row (once per key), or count one more attempt on it."""
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


class BookingRepository(Protocol):
    """The documents written into targets, in the job's transaction."""

    async def record_booked(
        self,
        key: str,
        erp_reference: str | None,
        records: tuple[BookedRecord, ...],
        booked_at: dt.datetime,
    ) -> None:
        """Store the outcome on the booking's intent row."""
        ...

    async def reference_of(self, key: str) -> str | None:
        """The target's number or id of a finished booking (e.g. ``book:<invoice id>``)."""
        ...

    async def record_skipped(
        self,
        key: str,
        tenant_id: str,
        invoice_id: str,
        target: str,
        reason: str,
        skipped_at: dt.datetime,
    ) -> None:
        """Keep that the document was deliberately not written, and why."""
        ...

    async def skipped_reason(self, key: str) -> str | None:
        """Why the document was not written, when its booking was skipped."""
        ...


@dataclass(frozen=True)
class TransferRecord:
    """An invoice handed to a provider, as far as closing and payments need it."""

    invoice_id: str
    agreement_kind: AgreementKind
    amount: Decimal
    advance: Decimal | None
    fee: Decimal | None


class TransferRepository(Protocol):
    """The transfers ledger-closer has seen (invoice.transferred), per invoice."""

    async def save(self, tenant_id: str, transfer: TransferRecord) -> None:
        """Keep the first transfer of an invoice."""
        ...

    async def get(self, invoice_id: str) -> TransferRecord | None:
        """The invoice's transfer, if any."""
        ...


@dataclass(frozen=True)
class DocumentState:
    """What ledger-closer knows of a created invoice: its flow's distribution and where the
    send stands; a closing held back because it did not reach its buyer."""

    invoice_id: str
    tenant_id: str
    number: str
    source: SourceRef
    delivery: Delivery
    held: dict[str, Any] | None = None  # the closing's job payload, while it is held


class DocumentRepository(Protocol):
    """The created invoices and their delivery, from invoice.created and distribution."""

    async def record_created(
        self, tenant_id: str, invoice_id: str, number: str, source: SourceRef, delivery: Delivery
    ) -> None:
        """Keep a created invoice (once; a later copy changes nothing)."""
        ...

    async def set_delivery(
        self, tenant_id: str, invoice_id: str, delivery: Delivery
    ) -> DocumentState | None:
        """Record distribution's report (a send beats an earlier failure); the document, or
        None when ledger-closer has not seen it created yet — then the report is kept, and
        ``record_created`` starts the document from it (the topics come in any order)."""
        ...

    async def get(self, invoice_id: str, *, lock: bool = False) -> DocumentState | None:
        """The document, if it was seen created; with ``lock``, its row stays locked until
        the transaction ends (a closing deciding on it is not raced by a delivery report)."""
        ...

    async def hold(self, invoice_id: str, payload: dict[str, Any]) -> None:
        """Keep a closing's payload until distribution reports the send (``waiting``) or,
        held, until the invoice reaches its buyer."""
        ...

    async def release(self, invoice_id: str) -> dict[str, Any] | None:
        """The held closing's payload, no longer held; None when none was held."""
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
    bookings: BookingRepository
    transfers: TransferRepository
    documents: DocumentRepository


class LedgerWriter(Protocol):
    """Payments, closings and vouchers in one ERP company.

    Raises ``EntryRefusedError`` or ``AuthorizationRefusedError`` when the ERP refuses for
    good; any other error is transient (the job retries, looking up first). ``fee_booked``
    says whether a fee is written with the entry (else the entry closes the whole amount).
    """

    fee_booked: bool

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """The reference of what an earlier attempt wrote for the entry, if the ERP holds it
        (not one of ``known``, already recorded as another entry; ``state`` is what the
        ERP held before that attempt, where the ERP cannot be asked more directly)."""
        ...

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """What the ERP holds before the first create, for ``find_entry`` (None: not needed)."""
        ...

    async def create_entry(self, entry: ErpEntry) -> str:
        """Write the entry (retried only on 429); its reference."""
        ...

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """Finish a created or adopted entry (bookkeep it, release it) unless it is done."""
        ...

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """The ERP's own send status of an invoice (None: not known in this ERP)."""
        ...


class Booker(Protocol):
    """Customers, invoices, credits, projects, products and orders in one accounting system.

    Every create is looked up first by our reference (or the record's own number), so an
    attempt after a crash or timeout finds what the earlier one made. With ``dry_run``
    nothing is written: the records say what would be (``planned``) or is there (``found``).
    """

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """Write the document (its customer, project and products first)."""
        ...

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """Invoice a booked order (once)."""
        ...


class LedgerWriters(Protocol):
    """The writer and booker of each write connection (kept across jobs, closed at shutdown)."""

    async def writer_for(self, connection: WriteConnection) -> LedgerWriter:
        """The payments writer of a connection."""
        ...

    async def booker_for(self, connection: WriteConnection) -> Booker:
        """The document writer of a connection."""
        ...

    async def aclose(self) -> None:
        """Close every writer."""
        ...
