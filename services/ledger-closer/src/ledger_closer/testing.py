"""Fakes of ledger-closer's repositories and of an ERP, test factories and ``app_for``, for
fast use-case tests and the integration tests (importable; never used by production code)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from cryptography.fernet import Fernet
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind, InvoiceTransferred, PaymentReceived
from nordflow_schemas.invoice import DocumentType
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain import ConnectionOfAnotherTenantError, EntryRefusedError, PlannedEntry, WriteConnection
from .service import Repositories


def app_for(
    database_url: str, *, encryption_key: str | None = None, closing_delay_seconds: int = 0
) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none)."""
    return create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(database_url),
            encryption_key=SecretStr(encryption_key or Fernet.generate_key().decode()),
            closing_delay_seconds=closing_delay_seconds,
            allow_internal_urls=True,  # the Fortnox sandbox listens on loopback
        )
    )


# -- factories ------------------------------------------------------------------------------
def source(connection_id: str = "conn-1", document_number: str | None = "7") -> SourceRef:
    """The invoice in the source ERP an entry is booked on."""
    return SourceRef(
        system=SourceSystem.FORTNOX,
        connection_id=connection_id,
        document_id=document_number or "doc-1",
        document_number=document_number,
    )


def transferred(
    tenant_id: str,
    *,
    invoice_id: str | None = None,
    source_ref: SourceRef | None = None,
    document_type: DocumentType = DocumentType.INVOICE,
    amount: Decimal = Decimal("1250.00"),
    currency: str = "SEK",
    transferred_at: dt.datetime | None = None,
    test_mode: bool = False,
) -> InvoiceTransferred:
    """``invoice.transferred`` of one invoice (now, unless ``transferred_at``)."""
    ref = source_ref or source()
    return InvoiceTransferred(
        tenant_id=tenant_id,
        invoice_id=invoice_id or f"inv_{uuid.uuid4().hex[:12]}",
        test_mode=test_mode,
        source=ref,
        document_type=document_type,
        number=ref.document_number or "1",
        provider="nordea-finans",
        agreement_kind=AgreementKind.FACTORING,
        transfer_id=f"tr_{uuid.uuid4().hex[:12]}",
        amount=amount,
        currency=currency,
        transferred_at=transferred_at or dt.datetime.now(dt.UTC),
    )


def payment_received(
    tenant_id: str,
    *,
    invoice_id: str | None = None,
    source_ref: SourceRef | None = None,
    payment_id: str = "p1",
    amount: Decimal = Decimal("100.00"),
    paid_on: dt.date = dt.date(2026, 11, 20),
    test_mode: bool = False,
    recorded_at_source: bool = False,
) -> PaymentReceived:
    """``payment.received`` of one payment reported against an invoice."""
    return PaymentReceived(
        tenant_id=tenant_id,
        invoice_id=invoice_id or f"inv_{uuid.uuid4().hex[:12]}",
        test_mode=test_mode,
        source=source_ref or source(),
        payment_id=payment_id,
        amount=amount,
        currency="SEK",
        paid_on=paid_on,
        payer="Kund AB",
        recorded_at_source=recorded_at_source,
    )


def write_connection(
    tenant_id: str,
    connection_id: str = "conn-1",
    *,
    base_url: str = "http://fortnox.invalid",
    token_sealed: bytes = b"sealed",
    system: str = "fortnox",
    mode_of_payment: str = "FACT",
    factoring_account: int = 1512,
    bank_account: int = 1930,
    updated_at: dt.datetime | None = None,
) -> WriteConnection:
    """A tenant's write connection (by default: Fortnox, mode FACT, accounts 1512 and 1930)."""
    return WriteConnection(
        connection_id=connection_id,
        tenant_id=tenant_id,
        system=system,
        base_url=base_url,
        token_sealed=token_sealed,
        mode_of_payment=mode_of_payment,
        factoring_account=factoring_account,
        bank_account=bank_account,
        updated_at=updated_at,
    )


# -- fakes of the repositories --------------------------------------------------------------
@dataclass
class FakeConnectionRepository:
    """Write connections in a dict by connection id."""

    connections: dict[str, WriteConnection] = field(default_factory=dict)

    async def find(self, tenant_id: str, connection_id: str) -> WriteConnection | None:
        """The tenant's write connection, if any."""
        found = self.connections.get(connection_id)
        return found if found is not None and found.tenant_id == tenant_id else None

    async def save(self, connection: WriteConnection) -> None:
        """Create or replace (not the system); refused if the id is another tenant's."""
        old = self.connections.get(connection.connection_id)
        if old is not None and old.tenant_id != connection.tenant_id:
            raise ConnectionOfAnotherTenantError(connection.connection_id)
        system = old.system if old is not None else connection.system
        self.connections[connection.connection_id] = dataclasses.replace(
            connection, system=system, updated_at=dt.datetime.now(dt.UTC)
        )


@dataclass
class FakeEntryRepository:
    """``entries`` rows in a dict by entry key: both the intent log (which, like the real
    one, outlives a failed attempt) and the references stored by a successful one."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def record(
        self, entry_key: str, tenant_id: str, entry: PlannedEntry, account: int
    ) -> None:
        """Insert the intent row, or count one more attempt on it."""
        if entry_key in self.rows:
            self.rows[entry_key]["attempts"] += 1
            return
        self.rows[entry_key] = {
            "tenant_id": tenant_id,
            "invoice_id": entry.invoice_id,
            "kind": entry.kind.value,
            "amount": entry.amount,
            "currency": entry.currency,
            "account": account,
            "attempts": 0,
            "erp_reference": None,
            "adopted": False,
            "posted_at": None,
        }

    async def known_references(self, invoice_id: str) -> set[str]:
        """The ERP references already recorded for the invoice's entries."""
        return {
            r["erp_reference"]
            for r in self.rows.values()
            if r["invoice_id"] == invoice_id and r["erp_reference"] is not None
        }

    async def record_posted(
        self, entry_key: str, erp_reference: str, adopted: bool, posted_at: dt.datetime
    ) -> None:
        """Store the reference on the intent row (only if there is one, like the real update)."""
        if entry_key in self.rows:
            self.rows[entry_key].update(
                erp_reference=erp_reference, adopted=adopted, posted_at=posted_at
            )


@dataclass(frozen=True)
class ScheduledJob:
    """A job the fake scheduler holds."""

    kind: str
    key: str
    tenant_id: str
    payload: dict[str, Any]
    due_at: dt.datetime


@dataclass
class FakeJobScheduler:
    """Jobs in a dict by (kind, key); a second one with the same key is ignored."""

    jobs: dict[tuple[str, str], ScheduledJob] = field(default_factory=dict)

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
        if (kind, key) in self.jobs:
            return False
        self.jobs[kind, key] = ScheduledJob(kind, key, tenant_id, payload, due_at)
        return True


def fake_repositories(
    profiles: FakeTenantProfiles | None = None,
    connections: list[WriteConnection] | None = None,
) -> Repositories:
    """Fakes of every repository (the entries' one serves as the intent log too)."""
    entries = FakeEntryRepository()
    return Repositories(
        connections=FakeConnectionRepository({c.connection_id: c for c in connections or []}),
        entries=entries,
        intents=entries,
        jobs=FakeJobScheduler(),
        profiles=profiles or FakeTenantProfiles(),
    )


# -- a fake ERP -----------------------------------------------------------------------------
class ErpUnavailableError(Exception):
    """A transient failure of the fake ERP (a timeout, a 5xx)."""


@dataclass
class FakeLedger:
    """One ERP company's invoice payments, as Fortnox answers them (``LedgerWriter``).

    ``fail_after_apply`` creates fail with ``ErpUnavailableError`` after the payment was applied
    (the outcome a caller cannot know); ``refuse`` makes every create raise ``EntryRefusedError``.
    """

    payments: list[dict[str, Any]] = field(default_factory=list)
    fail_after_apply: int = 0
    refuse: str | None = None
    creates: int = 0

    def add(
        self,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        *,
        mode_of_payment: str = "FACT",
        account: int = 1512,
    ) -> dict[str, Any]:
        """A payment registered in the ERP (by us, by hand, or by anyone)."""
        payment = {
            "Number": len(self.payments) + 1,
            "InvoiceNumber": int(document_number),
            "Amount": float(amount),
            "PaymentDate": payment_date.isoformat(),
            "ModeOfPayment": mode_of_payment,
            "ModeOfPaymentAccount": account,
        }
        self.payments.append(payment)
        return dict(payment)

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        """Every payment on the invoice, in full."""
        return [dict(p) for p in self.payments if str(p["InvoiceNumber"]) == document_number]

    async def create_payment(
        self,
        *,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        mode_of_payment: str,
        account: int,
    ) -> dict[str, Any]:
        """Register one payment (or refuse, or apply it and answer with an error)."""
        self.creates += 1
        if self.refuse is not None:
            raise EntryRefusedError(self.refuse)
        payment = self.add(
            document_number, amount, payment_date, mode_of_payment=mode_of_payment, account=account
        )
        if self.fail_after_apply > 0:
            self.fail_after_apply -= 1
            raise ErpUnavailableError("HTTP 500: applied, but answered with an error")
        return payment

    def of(self, document_number: str) -> list[dict[str, Any]]:
        """The invoice's payments (for assertions)."""
        return [p for p in self.payments if str(p["InvoiceNumber"]) == document_number]


@dataclass
class FakeLedgerWriters:
    """``LedgerWriters``: one ``FakeLedger`` per connection id, created on first use."""

    ledgers: dict[str, FakeLedger] = field(default_factory=dict)
    closed: bool = False

    def ledger(self, connection_id: str = "conn-1") -> FakeLedger:
        """The fake ERP company of a connection."""
        return self.ledgers.setdefault(connection_id, FakeLedger())

    async def writer_for(self, connection: WriteConnection) -> FakeLedger:
        """The connection's fake ERP company."""
        return self.ledger(connection.connection_id)

    async def aclose(self) -> None:
        """Nothing to close; remembers it was asked."""
        self.closed = True


# -- the Fortnox sandbox, for integration tests -------------------------------------------
def sandbox_invoice(
    base_url: str, headers: dict[str, str], *, invoice_date: dt.date | None = None
) -> tuple[str, Decimal]:
    """A new customer and invoice (2 x 500 + 25 % VAT, dated today unless ``invoice_date``)
    in a Fortnox (sandbox) company; its document number and total."""
    with httpx.Client(base_url=f"{base_url}/3/", headers=headers) as http:
        customer = http.post("customers", json={"Customer": {"Name": "Kund AB"}}).json()
        rows = [{"Description": "Tjänst", "DeliveredQuantity": 2, "Price": 500, "VAT": 25}]
        body: dict[str, Any] = {
            "CustomerNumber": customer["Customer"]["CustomerNumber"],
            "InvoiceRows": rows,
        }
        if invoice_date is not None:
            body["InvoiceDate"] = invoice_date.isoformat()
        invoice = http.post("invoices", json={"Invoice": body}).json()["Invoice"]
    return str(invoice["DocumentNumber"]), Decimal(str(invoice["Total"]))


def sandbox_payments(base_url: str, headers: dict[str, str], number: str) -> list[dict[str, Any]]:
    """The payments a Fortnox (sandbox) company holds for an invoice."""
    response = httpx.get(
        f"{base_url}/3/invoicepayments", params={"invoicenumber": number}, headers=headers
    )
    return [p for p in response.json()["InvoicePayments"] if str(p["InvoiceNumber"]) == number]
