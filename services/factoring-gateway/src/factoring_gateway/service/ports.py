"""What the use cases take: the repositories (PostgreSQL in ``adapters/``, fakes in
``testing.py``), the provider clients, the scheduler of durable jobs and the secret box."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.invoice import Invoice
from pydantic import SecretStr

from ..domain.agreements import Agreement
from ..domain.batches import BatchKind, BatchState, InvoiceState, OfferedInvoice, Trigger
from ..domain.formats import OutFile
from ..domain.settlements import SettlementLine
from ..domain.transfer import FactorAnswer, TransferSecret

# Durable job kinds (the runtime's jobs table).
WINDOW_JOB = "factoring-window"
RUN_JOB = "factoring-run"
UPLOAD_JOB = "factoring-upload"
SETTLEMENT_JOB = "factoring-settlements"


@dataclass(frozen=True)
class StoredAgreement:
    """An agreement with its sealed transfer secret (None: none stored)."""

    agreement: Agreement
    sealed_secret: bytes | None = field(default=None, repr=False)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class BatchInvoice:
    """One invoice of a batch with the terms it went under."""

    invoice_id: str
    number: str
    amount: Decimal
    currency: str
    fee: Decimal
    advance: Decimal | None
    payment_reference: str | None


@dataclass(frozen=True)
class BatchFile:
    """One file of a batch: its bytes and what the provider said."""

    seq: int
    name: str
    media_type: str
    content: bytes = field(repr=False)
    sha256: str = ""
    state: str = "pending"  # pending | received | refused
    receipt: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class Batch:
    """A batch as recorded: one serial, its files and invoices (or due-date changes)."""

    batch_id: str
    tenant_id: str
    agreement_id: str
    serial: int
    kind: BatchKind
    trigger: Trigger
    state: BatchState
    created_at: dt.datetime
    window_date: dt.date | None = None
    transferred_at: dt.datetime | None = None
    reason: str | None = None
    resubmits: str | None = None  # the refused batch this one corrects
    files: tuple[BatchFile, ...] = ()
    invoices: tuple[BatchInvoice, ...] = ()
    change_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Attempt:
    """One upload attempt of a file, committed before the provider is called."""

    key: str
    batch_id: str
    seq: int
    attempt: int
    state: str  # started | received | refused | absent
    started_at: dt.datetime | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Change:
    """A due date that moved after the invoice went to the provider."""

    change_id: int
    invoice_id: str
    agreement_id: str
    old_due_date: dt.date
    new_due_date: dt.date
    state: str  # pending | batched | sent
    batch_id: str | None = None


@dataclass(frozen=True)
class SettlementRecord:
    """A settlement line as recorded: matched to an invoice or waiting for an operator."""

    agreement_id: str
    file_name: str
    line: SettlementLine
    invoice_id: str | None
    state: str  # matched | unmatched
    recorded_at: dt.datetime | None = None


class AgreementRepository(Protocol):
    """The tenants' agreements (several per tenant)."""

    async def get(self, agreement_id: str) -> StoredAgreement | None: ...

    async def of_tenant(self, tenant_id: str) -> list[StoredAgreement]:
        """The tenant's agreements, oldest first (the order eligibility tries them in)."""
        ...

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, list[StoredAgreement]]:
        """``of_tenant`` of each of the tenants that has agreements (a batch's tenants)."""
        ...

    async def save(self, agreement: Agreement, sealed_secret: bytes | None) -> None:
        """Create or replace; ``sealed_secret`` None keeps the stored one."""
        ...


class InvoiceRepository(Protocol):
    """The invoices offered to this service and their states."""

    async def get(self, invoice_id: str) -> OfferedInvoice | None: ...

    async def get_many(self, invoice_ids: Sequence[str]) -> dict[str, OfferedInvoice]:
        """Those of the invoices offered here, by id (a batch's invoices)."""
        ...

    async def by_number(
        self, tenant_id: str, number: str, agreement_id: str | None = None
    ) -> OfferedInvoice | None:
        """The tenant's invoice (not credit note) with that number."""
        ...

    async def by_reference(self, agreement_id: str, reference: str) -> OfferedInvoice | None:
        """The agreement's invoice with that KID/OCR."""
        ...

    async def record(self, offered: Sequence[OfferedInvoice]) -> set[str]:
        """Keep first decisions; the ids of those kept (not those decided before)."""
        ...

    async def update_invoices(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        """Keep newer versions: (invoice id, invoice, version), one per invoice."""
        ...

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        """Until the transaction ends, these invoices' creations and versions are applied by
        this transaction alone (another replica's waits), so that neither misses a version
        the other is keeping."""
        ...

    async def keep_early_versions(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        """Keep newer versions of invoices not seen created yet: (invoice id, invoice,
        version), one per invoice; each replaces the one kept before (the last that came)."""
        ...

    async def take_early_versions(
        self, invoice_ids: Sequence[str]
    ) -> dict[str, tuple[Invoice, str]]:
        """The versions kept of these invoices (invoice, version), by id, no longer kept."""
        ...

    async def set_state(
        self,
        invoice_ids: Sequence[str],
        state: InvoiceState,
        reason: str,
        *,
        batch_id: str | None = None,
    ) -> None: ...

    async def set_factor_due_date(self, invoice_id: str, due_date: dt.date | None) -> None: ...

    async def pending(self, agreement_id: str) -> list[OfferedInvoice]:
        """The agreement's pending invoices, locked for this transaction, oldest first."""
        ...

    async def listing(
        self, tenant_id: str, *, state: InvoiceState | None, limit: int, offset: int
    ) -> list[OfferedInvoice]: ...


class BatchRepository(Protocol):
    """Batches, their files and invoices, the serials and the windows that ran."""

    async def next_serial(self, agreement_id: str) -> int:
        """Allocate the agreement's next file serial in the caller's transaction."""
        ...

    async def record(self, batch: Batch) -> None:
        """Store a batch with its files and invoices."""
        ...

    async def get(self, batch_id: str) -> Batch | None: ...

    async def earlier_unfinished(self, agreement_id: str, serial: int) -> Batch | None:
        """A batch of the agreement with a lower serial still being handed over."""
        ...

    async def file_answered(self, batch_id: str, seq: int, answer: FactorAnswer) -> None:
        """Record the provider's receipt or refusal of a file."""
        ...

    async def finish(
        self, batch_id: str, state: BatchState, at: dt.datetime, reason: str | None
    ) -> None: ...

    async def record_window(self, agreement_id: str, day: dt.date, at: dt.datetime) -> bool:
        """Note that the window of ``day`` ran; False when it had run before."""
        ...

    async def window_done(
        self, agreement_id: str, day: dt.date, batches: int, invoices: int
    ) -> None: ...

    async def listing(
        self, tenant_id: str, *, agreement_id: str | None, limit: int
    ) -> list[Batch]: ...


class AttemptLog(Protocol):
    """Upload attempts, written on their own connection so they survive a rollback."""

    async def begin(self, key: str, batch_id: str, seq: int, attempt: int) -> None: ...

    async def finish(self, key: str, state: str, detail: str | None) -> None: ...

    async def of_file(self, batch_id: str, seq: int) -> list[Attempt]: ...


class ChangeRepository(Protocol):
    """Due-date changes of transferred invoices."""

    async def record(
        self,
        invoice_id: str,
        agreement_id: str,
        version: str,
        old_due_date: dt.date,
        new_due_date: dt.date,
    ) -> bool: ...

    async def pending(self, agreement_id: str) -> list[Change]:
        """Pending changes whose invoice the provider has, locked, oldest first."""
        ...

    async def batched(self, change_ids: Sequence[int], batch_id: str) -> None: ...

    async def finish(self, batch_id: str, state: str) -> None:
        """The batch's changes are ``sent`` or ``refused``."""
        ...

    async def reopen(self, batch_id: str) -> None:
        """A refused change batch's changes are pending again (a resubmission)."""
        ...


class SettlementRepository(Protocol):
    """Settlement files fetched and their lines."""

    async def known_files(self, agreement_id: str) -> set[str]: ...

    async def record_file(
        self, agreement_id: str, name: str, lines: int, error: str | None
    ) -> bool:
        """Note a fetched file (``error`` when it could not be read); False if known."""
        ...

    async def record_line(self, record: SettlementRecord) -> bool: ...

    async def listing(
        self, tenant_id: str, *, state: str | None, limit: int
    ) -> list[SettlementRecord]: ...


class Scheduler(Protocol):
    """Durable jobs and timers in the caller's transaction."""

    async def schedule(
        self,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool: ...

    async def cancel_pending(self, kind: str, key_prefix: str) -> int:
        """Drop pending jobs of a kind whose key starts with ``key_prefix``."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case reads or writes, on one transaction."""

    agreements: AgreementRepository
    invoices: InvoiceRepository
    batches: BatchRepository
    attempts: AttemptLog
    changes: ChangeRepository
    settlements: SettlementRepository
    jobs: Scheduler
    profiles: TenantProfiles


class FactorClient(Protocol):
    """One provider connection (SFTP session or HTTPS API) for an agreement."""

    async def lookup(self, name: str) -> FactorAnswer:
        """What the provider has of the file ``name`` (its final name)."""
        ...

    async def upload(self, file: OutFile, *, key: str) -> FactorAnswer:
        """Hand the file over once (SFTP: under a temporary name, then renamed; HTTPS: with
        ``key`` as its Idempotency-Key); what is known right after."""
        ...

    async def wait_for_answer(self, name: str, timeout: float) -> FactorAnswer:
        """Poll until the file is received or refused, or ``timeout`` seconds pass."""
        ...

    async def settlement_files(self) -> list[str]:
        """The names of the settlement files the provider offers."""
        ...

    async def settlement(self, name: str) -> bytes:
        """One settlement file's bytes."""
        ...


class FactorClients(Protocol):
    """Opens a client for an agreement with its (opened) secret."""

    def connect(
        self, agreement: Agreement, secret: TransferSecret
    ) -> AbstractAsyncContextManager[FactorClient]: ...


class SecretSealer(Protocol):
    """Seals and opens secrets (``nordflow_runtime.crypto.SecretBox``)."""

    def seal(self, secret: str) -> bytes: ...

    def open(self, sealed: bytes) -> SecretStr: ...
