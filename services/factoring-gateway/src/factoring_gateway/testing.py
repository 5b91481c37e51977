"""Fakes of factoring-gateway's repositories and provider, factories of agreements, and
``app_for``, for fast use-case tests and the integration tests (importable; never used by
production code)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.fernet import Fernet
from nordflow_references import ReferenceKind, ReferencePolicy
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import PERSONAL_DATA_KEY, FakeTenantProfiles
from nordflow_schemas.events import AgreementKind, Flow, PayeeAccount
from nordflow_schemas.invoice import DocumentType, Invoice
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain.agreements import Agreement, Transfer, TransferMethod
from .domain.batches import BatchState, InvoiceState, OfferedInvoice
from .domain.formats import OutFile, default_formats
from .domain.transfer import FactorAnswer, FileStatus, TransferSecret
from .service.ports import (
    Attempt,
    Batch,
    Change,
    FactorClient,
    Repositories,
    SettlementRecord,
    StoredAgreement,
)


def app_for(
    database_url: str, *, encryption_key: str | None = None, **settings: Any
) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none);
    the factor sandbox on loopback may be reached unless ``allow_internal_urls=False``."""
    settings.setdefault("allow_internal_urls", True)
    settings.setdefault("personal_data_key", SecretStr(PERSONAL_DATA_KEY))
    return create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(database_url),
            encryption_key=SecretStr(encryption_key or Fernet.generate_key().decode()),
            **settings,
        )
    )


def secret_box() -> SecretBox:
    """A box with a fresh key."""
    return SecretBox(SecretStr(Fernet.generate_key().decode()))


# -- factories ------------------------------------------------------------------------------
PAYEE = PayeeAccount(
    name="Nordic Factor AB", scheme="SE:BANKGIRO", account_id="5050-1055", company_id="5566778899"
)
ASSIGNMENT = {
    "sv": "Fordran har överlåtits till Nordic Factor AB. Betala endast till bankgiro 5050-1055.",
    "nb": "Fordringen er overdratt til Nordic Factor AB. Betal kun til konto 5050-1055.",
    "en": "This invoice has been assigned to Nordic Factor AB. Pay only to bankgiro 5050-1055.",
}
SE_OCR = ReferencePolicy(kind=ReferenceKind.SE_OCR)


def sftp_transfer(
    host: str = "127.0.0.1", port: int = 2222, host_key: str = "ssh-ed25519 AAAA"
) -> Transfer:
    """SFTP settings (a fake host key unless given)."""
    return Transfer(
        method=TransferMethod.SFTP, host=host, port=port, username="client", host_key=host_key
    )


def agreement(tenant_id: str, agreement_id: str | None = None, **changes: Any) -> Agreement:
    """A valid factoring agreement (CUSIN over SFTP, Swedish OCR, 1.5 % + 10 SEK a file)."""
    base = Agreement(
        agreement_id=agreement_id or f"{tenant_id}-factor",
        tenant_id=tenant_id,
        provider="Nordic Factor AB",
        kind=AgreementKind.FACTORING,
        client_number="1234",
        file_format="cusin-xml",
        transfer=sftp_transfer(),
        payee=PAYEE,
        assignment_text=ASSIGNMENT,
        reference=SE_OCR,
        recourse=True,
    )
    return dataclasses.replace(base, **changes)


# -- fakes ----------------------------------------------------------------------------------
@dataclass
class FakeAgreements:
    """Agreements in a dict."""

    stored: dict[str, StoredAgreement] = field(default_factory=dict)
    _tick: itertools.count[int] = field(default_factory=itertools.count)

    async def get(self, agreement_id: str) -> StoredAgreement | None:
        return self.stored.get(agreement_id)

    async def of_tenant(self, tenant_id: str) -> list[StoredAgreement]:
        return [s for s in self.stored.values() if s.agreement.tenant_id == tenant_id]

    async def of_tenants(self, tenant_ids: Sequence[str]) -> dict[str, list[StoredAgreement]]:
        found = {t: await self.of_tenant(t) for t in tenant_ids}
        return {t: stored for t, stored in found.items() if stored}

    async def save(self, agreement: Agreement, sealed_secret: bytes | None) -> None:
        old = self.stored.get(agreement.agreement_id)
        kept = sealed_secret if sealed_secret is not None else (old.sealed_secret if old else None)
        now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=next(self._tick))
        self.stored[agreement.agreement_id] = StoredAgreement(
            agreement, kept, old.created_at if old else now, now
        )


@dataclass
class FakeInvoices:
    """Offered invoices in a dict (insertion order is the decision order), and the newer
    versions of invoices not seen created yet in ``early``."""

    rows: dict[str, OfferedInvoice] = field(default_factory=dict)
    early: dict[str, tuple[Invoice, str]] = field(default_factory=dict)  # not created yet

    async def get(self, invoice_id: str) -> OfferedInvoice | None:
        return self.rows.get(invoice_id)

    async def get_many(self, invoice_ids: Sequence[str]) -> dict[str, OfferedInvoice]:
        return {i: self.rows[i] for i in invoice_ids if i in self.rows}

    async def by_number(
        self, tenant_id: str, number: str, agreement_id: str | None = None
    ) -> OfferedInvoice | None:
        for o in reversed(self.rows.values()):
            if (
                o.tenant_id == tenant_id
                and o.invoice.number == number
                and o.invoice.document_type is DocumentType.INVOICE
                and (agreement_id is None or o.agreement_id == agreement_id)
            ):
                return o
        return None

    async def by_reference(self, agreement_id: str, reference: str) -> OfferedInvoice | None:
        for o in reversed(self.rows.values()):
            if o.agreement_id == agreement_id and o.payment_reference == reference:
                return o
        return None

    async def record(self, offered: Sequence[OfferedInvoice]) -> set[str]:
        kept = set()
        for o in offered:
            if o.invoice_id not in self.rows:
                self.rows[o.invoice_id] = o
                kept.add(o.invoice_id)
        return kept

    async def update_invoices(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        for invoice_id, invoice, version in versions:
            self.rows[invoice_id] = dataclasses.replace(
                self.rows[invoice_id], invoice=invoice, version=version
            )

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        """One process, one transaction at a time: nothing to wait for."""

    async def keep_early_versions(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        for invoice_id, invoice, version in versions:
            self.early[invoice_id] = (invoice, version)

    async def take_early_versions(
        self, invoice_ids: Sequence[str]
    ) -> dict[str, tuple[Invoice, str]]:
        return {i: self.early.pop(i) for i in invoice_ids if i in self.early}

    async def set_state(
        self,
        invoice_ids: Sequence[str],
        state: InvoiceState,
        reason: str,
        *,
        batch_id: str | None = None,
    ) -> None:
        for invoice_id in invoice_ids:
            row = self.rows[invoice_id]
            self.rows[invoice_id] = dataclasses.replace(
                row, state=state, reason=reason, batch_id=batch_id or row.batch_id
            )

    async def set_factor_due_date(self, invoice_id: str, due_date: dt.date | None) -> None:
        self.rows[invoice_id] = dataclasses.replace(self.rows[invoice_id], factor_due_date=due_date)

    async def pending(self, agreement_id: str) -> list[OfferedInvoice]:
        return [
            o
            for o in self.rows.values()
            if o.agreement_id == agreement_id and o.state is InvoiceState.PENDING
        ]

    async def listing(
        self, tenant_id: str, *, state: InvoiceState | None, limit: int, offset: int
    ) -> list[OfferedInvoice]:
        found = [
            o
            for o in reversed(self.rows.values())
            if o.tenant_id == tenant_id and (state is None or o.state is state)
        ]
        return found[offset : offset + limit]


@dataclass
class FakeBatches:
    """Batches, serials and windows in dicts."""

    batches: dict[str, Batch] = field(default_factory=dict)
    serials: dict[str, int] = field(default_factory=dict)
    windows: dict[tuple[str, dt.date], tuple[int, int]] = field(default_factory=dict)

    async def next_serial(self, agreement_id: str) -> int:
        self.serials[agreement_id] = self.serials.get(agreement_id, 0) + 1
        return self.serials[agreement_id]

    async def record(self, batch: Batch) -> None:
        self.batches[batch.batch_id] = batch

    async def get(self, batch_id: str) -> Batch | None:
        return self.batches.get(batch_id)

    async def earlier_unfinished(self, agreement_id: str, serial: int) -> Batch | None:
        waiting = [
            b
            for b in self.batches.values()
            if b.agreement_id == agreement_id
            and b.serial < serial
            and b.state is BatchState.RECORDED
        ]
        return min(waiting, key=lambda b: b.serial) if waiting else None

    async def file_answered(self, batch_id: str, seq: int, answer: FactorAnswer) -> None:
        batch = self.batches[batch_id]
        state = "received" if answer.status is FileStatus.RECEIVED else "refused"
        files = tuple(
            dataclasses.replace(f, state=state, receipt=answer.receipt, reason=answer.reason)
            if f.seq == seq
            else f
            for f in batch.files
        )
        self.batches[batch_id] = dataclasses.replace(batch, files=files)

    async def finish(
        self, batch_id: str, state: BatchState, at: dt.datetime, reason: str | None
    ) -> None:
        self.batches[batch_id] = dataclasses.replace(
            self.batches[batch_id],
            state=state,
            transferred_at=at if state is BatchState.TRANSFERRED else None,
            reason=reason,
        )

    async def record_window(self, agreement_id: str, day: dt.date, at: dt.datetime) -> bool:
        if (agreement_id, day) in self.windows:
            return False
        self.windows[(agreement_id, day)] = (0, 0)
        return True

    async def window_done(
        self, agreement_id: str, day: dt.date, batches: int, invoices: int
    ) -> None:
        self.windows[(agreement_id, day)] = (batches, invoices)

    async def listing(self, tenant_id: str, *, agreement_id: str | None, limit: int) -> list[Batch]:
        found = [
            b
            for b in reversed(self.batches.values())
            if b.tenant_id == tenant_id and (agreement_id is None or b.agreement_id == agreement_id)
        ]
        return found[:limit]


@dataclass
class FakeAttempts:
    """Upload attempts in a dict."""

    attempts: dict[str, Attempt] = field(default_factory=dict)

    async def begin(self, key: str, batch_id: str, seq: int, attempt: int) -> None:
        self.attempts[key] = Attempt(key, batch_id, seq, attempt, "started")

    async def finish(self, key: str, state: str, detail: str | None) -> None:
        self.attempts[key] = dataclasses.replace(self.attempts[key], state=state, detail=detail)

    async def of_file(self, batch_id: str, seq: int) -> list[Attempt]:
        return [a for a in self.attempts.values() if a.batch_id == batch_id and a.seq == seq]


@dataclass
class FakeChanges:
    """Due-date changes in a dict."""

    invoices: FakeInvoices
    changes: dict[int, Change] = field(default_factory=dict)
    versions: set[tuple[str, str]] = field(default_factory=set)

    async def record(
        self,
        invoice_id: str,
        agreement_id: str,
        version: str,
        old_due_date: dt.date,
        new_due_date: dt.date,
    ) -> bool:
        if (invoice_id, version) in self.versions:
            return False
        self.versions.add((invoice_id, version))
        change_id = len(self.changes) + 1
        self.changes[change_id] = Change(
            change_id, invoice_id, agreement_id, old_due_date, new_due_date, "pending"
        )
        return True

    async def pending(self, agreement_id: str) -> list[Change]:
        return [
            c
            for c in self.changes.values()
            if c.agreement_id == agreement_id
            and c.state == "pending"
            and self.invoices.rows[c.invoice_id].state is InvoiceState.TRANSFERRED
        ]

    async def batched(self, change_ids: Sequence[int], batch_id: str) -> None:
        for change_id in change_ids:
            self.changes[change_id] = dataclasses.replace(
                self.changes[change_id], state="batched", batch_id=batch_id
            )

    async def finish(self, batch_id: str, state: str) -> None:
        for change_id, c in list(self.changes.items()):
            if c.batch_id == batch_id:
                self.changes[change_id] = dataclasses.replace(c, state=state)

    async def reopen(self, batch_id: str) -> None:
        for change_id, c in list(self.changes.items()):
            if c.batch_id == batch_id and c.state == "refused":
                self.changes[change_id] = dataclasses.replace(c, state="pending", batch_id=None)


@dataclass
class FakeSettlements:
    """Settlement files and lines in memory."""

    agreements: FakeAgreements
    files: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    lines: dict[tuple[str, str, int], SettlementRecord] = field(default_factory=dict)

    async def known_files(self, agreement_id: str) -> set[str]:
        return {name for a, name in self.files if a == agreement_id}

    async def record_file(
        self, agreement_id: str, name: str, lines: int, error: str | None
    ) -> bool:
        if (agreement_id, name) in self.files:
            return False
        self.files[(agreement_id, name)] = (lines, error)
        return True

    async def record_line(self, record: SettlementRecord) -> bool:
        key = (record.agreement_id, record.file_name, record.line.line_no)
        if key in self.lines:
            return False
        self.lines[key] = record
        return True

    async def listing(
        self, tenant_id: str, *, state: str | None, limit: int
    ) -> list[SettlementRecord]:
        mine = {a for a, s in self.agreements.stored.items() if s.agreement.tenant_id == tenant_id}
        found = [
            r
            for r in self.lines.values()
            if r.agreement_id in mine and (state is None or r.state == state)
        ]
        return found[:limit]


@dataclass(frozen=True)
class ScheduledJob:
    """A job the fake scheduler holds."""

    kind: str
    key: str
    tenant_id: str
    payload: dict[str, Any]
    due_at: dt.datetime


@dataclass
class FakeScheduler:
    """Scheduled jobs in a dict by (kind, key)."""

    jobs: dict[tuple[str, str], ScheduledJob] = field(default_factory=dict)

    async def schedule(
        self,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool:
        if (kind, key) in self.jobs:
            return False
        self.jobs[(kind, key)] = ScheduledJob(kind, key, tenant_id, payload, due_at)
        return True

    async def cancel_pending(self, kind: str, key_prefix: str) -> int:
        gone = [k for k in self.jobs if k[0] == kind and k[1].startswith(key_prefix)]
        for k in gone:
            del self.jobs[k]
        return len(gone)

    def of_kind(self, kind: str) -> list[ScheduledJob]:
        """The jobs of a kind, in the order they were scheduled."""
        return [j for j in self.jobs.values() if j.kind == kind]


def fake_repositories(profiles: FakeTenantProfiles | None = None) -> Repositories:
    """Empty fakes of every repository."""
    agreements = FakeAgreements()
    invoices = FakeInvoices()
    return Repositories(
        agreements=agreements,
        invoices=invoices,
        batches=FakeBatches(),
        attempts=FakeAttempts(),
        changes=FakeChanges(invoices),
        settlements=FakeSettlements(agreements),
        jobs=FakeScheduler(),
        profiles=profiles or FakeTenantProfiles(),
    )


@dataclass
class FakeFactor:
    """A provider in memory: what it received (every arrival), its answers, its faults.

    ``refuse`` refuses the next files with that reason; ``crash_after_upload`` raises after
    the provider took a file (the answer is lost); ``hold_receipts`` leaves files without a
    receipt (pending) until cleared.
    """

    received: list[OutFile] = field(default_factory=list)
    answers: dict[str, FactorAnswer] = field(default_factory=dict)
    settlements: dict[str, bytes] = field(default_factory=dict)
    refuse: str | None = None
    crash_after_upload: int = 0
    hold_receipts: bool = False
    lookups: list[str] = field(default_factory=list)

    def _answer(self, file: OutFile) -> FactorAnswer:
        if self.refuse is not None:
            return FactorAnswer(FileStatus.REFUSED, reason=self.refuse)
        return FactorAnswer(FileStatus.RECEIVED, receipt={"FileName": file.name})

    def release(self) -> None:
        """Answer every held file now."""
        self.hold_receipts = False
        for file in self.received:
            if self.answers[file.name].status is FileStatus.PENDING:
                self.answers[file.name] = self._answer(file)

    async def lookup(self, name: str) -> FactorAnswer:
        self.lookups.append(name)
        return self.answers.get(name, FactorAnswer(FileStatus.ABSENT))

    async def upload(self, file: OutFile, *, key: str) -> FactorAnswer:
        if file.name in self.answers:
            raise AssertionError(f"{file.name} uploaded a second time")
        self.received.append(file)
        held = FactorAnswer(FileStatus.PENDING)
        self.answers[file.name] = held if self.hold_receipts else self._answer(file)
        if self.crash_after_upload:
            self.crash_after_upload -= 1
            raise ConnectionResetError("the connection dropped after the upload")
        return self.answers[file.name]

    async def wait_for_answer(self, name: str, timeout: float) -> FactorAnswer:
        return await self.lookup(name)

    async def settlement_files(self) -> list[str]:
        return sorted(self.settlements)

    async def settlement(self, name: str) -> bytes:
        return self.settlements[name]


@dataclass
class FakeClients:
    """Connects every agreement to one fake provider; remembers the secrets it was given."""

    factor: FakeFactor = field(default_factory=FakeFactor)
    secrets: list[TransferSecret] = field(default_factory=list)

    @asynccontextmanager
    async def connect(
        self, agreement: Agreement, secret: TransferSecret
    ) -> AsyncIterator[FactorClient]:
        self.secrets.append(secret)
        yield self.factor


def fake_deps(
    repos: Repositories | None = None, clients: FakeClients | None = None, **changes: Any
) -> Deps:
    """Deps on fakes (the same repositories for every connection)."""
    repos = repos or fake_repositories()
    return Deps(
        repositories=lambda _conn: repos,
        formats=default_formats(),
        clients=clients or FakeClients(),
        sealer=secret_box(),
        **changes,
    )


def flow(**changes: Any) -> Flow:
    """A flow (factoring on by default)."""
    return Flow(**changes)


ZERO = Decimal("0.00")


def sample_invoice(
    tenant_id: str,
    number: str,
    *,
    customer_number: str = "100017",
    amount_lines: Sequence[tuple[str, str]] = (("10", "950.00"),),
    document_type: DocumentType = DocumentType.INVOICE,
    credited: Invoice | None = None,
    issue_date: dt.date = dt.date(2025, 3, 10),
    reference: str | None = None,
    currency: str = "NOK",
) -> Invoice:
    """A Norwegian invoice (or credit note) that every format can carry, with a fixed id
    (golden files depend on nothing random)."""
    from nordflow_documents.testing.invoices import (
        line,
        make_invoice,
        norwegian_buyer,
        norwegian_seller,
    )
    from nordflow_references import make_ocr
    from nordflow_schemas.invoice import InvoiceReference, PaymentInstructions

    lines = [line(str(n), "Konsulenttime", q, p) for n, (q, p) in enumerate(amount_lines, 1)]
    preceding = (
        InvoiceReference(
            number=credited.number, issue_date=credited.issue_date, invoice_id=credited.invoice_id
        )
        if credited is not None
        else None
    )
    invoice = make_invoice(
        lines,
        document_type=document_type,
        number=number,
        currency=currency,
        seller=norwegian_seller(),
        buyer=norwegian_buyer(customer_number=customer_number),
        payment=PaymentInstructions(
            payment_reference=reference or make_ocr(number, length_digit=False)
        ),
        preceding_invoice=preceding,
        order_reference=f"ORD-{number}",
    )
    return invoice.model_copy(
        update={
            "invoice_id": f"inv_{tenant_id}_{number}",
            "tenant_id": tenant_id,
            "issue_date": issue_date,
            "due_date": issue_date + dt.timedelta(days=30),
        }
    )
