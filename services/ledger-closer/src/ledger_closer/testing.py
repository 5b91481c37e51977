"""Fakes of ledger-closer's repositories and of an ERP, test factories and ``app_for``, for
fast use-case tests and the integration tests (importable; never used by production code)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from cryptography.fernet import Fernet
from nordflow_runtime import db
from nordflow_runtime.app import Resources, ServiceApp
from nordflow_runtime.jobs import JobWorker
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import (
    AgreementKind,
    BookedRecord,
    DocumentKind,
    EntryKind,
    Flow,
    InvoiceCreated,
    InvoiceTransferred,
    PaymentReceived,
)
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    Party,
    PartyType,
    ProjectReference,
    Totals,
    VatBreakdown,
    VatCategory,
)
from nordflow_schemas.money import money
from nordflow_schemas.testing import simple_invoice
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain import (
    DEFAULT_ACCOUNTS,
    AccountMapping,
    Booking,
    ConnectionOfAnotherTenantError,
    Delivery,
    EntryRefusedError,
    ErpEntry,
    PlannedEntry,
    WriteConnection,
    Written,
    adoptable,
)
from .domain.booking import ADOPTED, CREATED, PLANNED
from .service import DocumentState, Repositories, TransferRecord


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
def source(
    connection_id: str = "conn-1",
    document_number: str | None = "7",
    system: SourceSystem = SourceSystem.FORTNOX,
    document_id: str | None = None,
) -> SourceRef:
    """The document in the source system an entry or booking is about."""
    return SourceRef(
        system=system,
        connection_id=connection_id,
        document_id=document_id or document_number or "doc-1",
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
    agreement_kind: AgreementKind = AgreementKind.FACTORING,
    advance_amount: Decimal | None = None,
    fee_amount: Decimal | None = None,
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
        agreement_kind=agreement_kind,
        transfer_id=f"tr_{uuid.uuid4().hex[:12]}",
        amount=amount,
        currency=currency,
        transferred_at=transferred_at or dt.datetime.now(dt.UTC),
        advance_amount=advance_amount,
        fee_amount=fee_amount,
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
    flow: Flow | None = None,
    fee_amount: Decimal | None = None,
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
        flow=flow or Flow(),
        fee_amount=fee_amount,
    )


def created(
    invoice: Invoice,
    *,
    flow: Flow | None = None,
    kind: DocumentKind | None = None,
    test_mode: bool = False,
) -> InvoiceCreated:
    """``invoice.created`` of a canonical invoice with its connection's flow."""
    return InvoiceCreated(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.invoice_id,
        test_mode=test_mode,
        version="v1",
        invoice=invoice,
        flow=flow or Flow(),
        source_kind=kind,
    )


def guest_invoice(
    tenant_id: str,
    connection_id: str,
    number: str,
    *,
    guest: str = "Anna Gäst",
    email: str | None = "anna@example.se",
    payable: Decimal = Decimal("1250.00"),
    issue_date: dt.date = dt.date(2026, 3, 2),
    credited: Invoice | None = None,
) -> Invoice:
    """A hotel's Sirvoy invoice to a private guest (a credit note of ``credited``)."""
    invoice = simple_invoice(
        tenant_id,
        issue_date=issue_date,
        payable=payable,
        number=number,
        document_type=DocumentType.INVOICE if credited is None else DocumentType.CREDIT_NOTE,
    )
    return invoice.model_copy(
        update={
            "invoice_id": canonical_invoice_id(tenant_id, "sirvoy", connection_id, number),
            "source": source(connection_id, number, SourceSystem.SIRVOY),
            "buyer": Party(
                name=guest,
                party_type=PartyType.PRIVATE,
                email=email,
                address=Address(
                    lines=("Storgatan 1",), postal_code="41101", city="Göteborg", country_code="SE"
                ),
            ),
            "preceding_invoice": None
            if credited is None
            else InvoiceReference(number=credited.number, invoice_id=credited.invoice_id),
        }
    )


def winner_order(
    tenant_id: str,
    connection_id: str,
    order_id: str,
    *,
    customer_number: str = "4711",
    groups: tuple[tuple[str, Decimal], ...] = (("Skap", Decimal("8000.00")),),
    vat_rate: Decimal = Decimal(25),
    due_date: dt.date = dt.date(2026, 3, 2),
    order_date: dt.date = dt.date(2026, 3, 2),
    country: str = "NO",
    currency: str = "NOK",
) -> Invoice:
    """One payment-calendar part of an accepted Winner quote, as mapper makes it: a line per
    product group (its article number), the kitchen project, the customer card's number."""
    lines = tuple(
        InvoiceLine(
            line_id=str(i + 1),
            description=group,
            article_number=group,
            quantity=Decimal(1),
            unit_price=amount,
            net_amount=amount,
            vat_category=VatCategory.STANDARD,
            vat_rate=vat_rate,
        )
        for i, (group, amount) in enumerate(groups)
    )
    net = sum((amount for _, amount in groups), Decimal(0))
    vat = money(net * vat_rate / 100)
    invoice = simple_invoice(tenant_id, number=order_id, country=country, currency=currency)
    return invoice.model_copy(
        update={
            "invoice_id": canonical_invoice_id(tenant_id, "winner", connection_id, order_id),
            "source": source(connection_id, order_id, SourceSystem.WINNER),
            "issue_date": order_date,
            "due_date": due_date,
            "buyer": Party(
                name="Kari Nordmann",
                party_type=PartyType.PRIVATE,
                email="kari@example.no",
                customer_number=customer_number,
                address=Address(
                    lines=("Storgata 1",), postal_code="0150", city="Oslo", country_code=country
                ),
            ),
            "lines": lines,
            "vat_breakdown": (
                VatBreakdown(
                    category=VatCategory.STANDARD, rate=vat_rate, taxable_amount=net, tax_amount=vat
                ),
            ),
            "totals": Totals(
                line_extension=net,
                tax_exclusive=net,
                tax_total=vat,
                tax_inclusive=net + vat,
                payable=net + vat,
            ),
            "order_reference": order_id.rsplit("-", 1)[0],
            "project": ProjectReference(number="P-2026-17", name="Kjøkken Nordmann"),
        }
    )


def write_connection(
    tenant_id: str,
    connection_id: str = "conn-1",
    *,
    base_url: str = "http://fortnox.invalid",
    token_sealed: bytes = b"sealed",
    system: str = "fortnox",
    mode_of_payment: str = "FACT",
    accounts: AccountMapping | None = None,
    updated_at: dt.datetime | None = None,
) -> WriteConnection:
    """A tenant's write connection (by default: Fortnox, mode FACT, Sweden's BAS accounts)."""
    return WriteConnection(
        connection_id=connection_id,
        tenant_id=tenant_id,
        system=system,
        base_url=base_url,
        token_sealed=token_sealed,
        mode_of_payment=mode_of_payment,
        accounts=accounts or DEFAULT_ACCOUNTS["SE"],
        updated_at=updated_at,
    )


# -- fakes of the repositories --------------------------------------------------------------
@dataclass
class FakeConnectionRepository:
    """Write connections in a dict by connection id; ``locked`` lists the connections whose
    writes were locked, in order."""

    connections: dict[str, WriteConnection] = field(default_factory=dict)
    locked: list[str] = field(default_factory=list)

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

    async def lock_writes(self, connection_id: str) -> None:
        """Noted (one process, one job at a time: nothing to wait for)."""
        self.locked.append(connection_id)


@dataclass
class FakeEntryRepository:
    """``entries`` and ``bookings`` rows in dicts by key: both the intent log (which, like
    the real one, outlives a failed attempt) and what a successful attempt stored."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            "erp_state": None,
        }

    async def note_state(self, entry_key: str, state: str) -> None:
        """Keep the first note."""
        if self.rows[entry_key]["erp_state"] is None:
            self.rows[entry_key]["erp_state"] = state

    async def state(self, entry_key: str) -> str | None:
        """The noted state."""
        row = self.rows.get(entry_key)
        return None if row is None else row["erp_state"]

    async def begin_booking(
        self, key: str, tenant_id: str, invoice_id: str, action: str, target: str
    ) -> None:
        """Insert a booking's intent row, or count one more attempt on it."""
        if key in self.bookings:
            self.bookings[key]["attempts"] += 1
            return
        self.bookings[key] = {
            "tenant_id": tenant_id,
            "invoice_id": invoice_id,
            "action": action,
            "target": target,
            "attempts": 0,
            "erp_reference": None,
            "records": None,
            "booked_at": None,
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

    async def record_booked(
        self,
        key: str,
        erp_reference: str | None,
        records: tuple[BookedRecord, ...],
        booked_at: dt.datetime,
    ) -> None:
        """Store the outcome on the booking's intent row."""
        if key in self.bookings:
            self.bookings[key].update(
                erp_reference=erp_reference, records=records, booked_at=booked_at
            )

    async def record_skipped(
        self,
        key: str,
        tenant_id: str,
        invoice_id: str,
        target: str,
        reason: str,
        skipped_at: dt.datetime,
    ) -> None:
        """Keep the skip (the first one stays)."""
        self.bookings.setdefault(
            key,
            {
                "tenant_id": tenant_id,
                "invoice_id": invoice_id,
                "action": "skipped",
                "target": target,
                "attempts": 0,
                "erp_reference": None,
                "records": (),
                "booked_at": skipped_at,
                "skipped_reason": reason,
            },
        )

    async def skipped_reason(self, key: str) -> str | None:
        """Why the booking was skipped, if it was."""
        row = self.bookings.get(key)
        return None if row is None else row.get("skipped_reason")

    async def reference_of(self, key: str) -> str | None:
        """The target's reference of a finished booking."""
        row = self.bookings.get(key)
        return None if row is None or row["booked_at"] is None else row["erp_reference"]


@dataclass
class FakeTransferRepository:
    """Transfers by invoice id (the first stays)."""

    transfers: dict[str, TransferRecord] = field(default_factory=dict)

    async def save(self, tenant_id: str, transfer: TransferRecord) -> None:
        """Keep the first transfer of an invoice."""
        self.transfers.setdefault(transfer.invoice_id, transfer)

    async def get(self, invoice_id: str) -> TransferRecord | None:
        """The invoice's transfer."""
        return self.transfers.get(invoice_id)


@dataclass
class FakeDocumentRepository:
    """Created invoices and their delivery by invoice id."""

    documents: dict[str, DocumentState] = field(default_factory=dict)
    early_reports: dict[str, Delivery] = field(default_factory=dict)

    async def record_created(
        self, tenant_id: str, invoice_id: str, number: str, source: SourceRef, delivery: Delivery
    ) -> None:
        """Keep a created invoice once; a report that came first is its delivery."""
        early = self.early_reports.pop(invoice_id, None)
        if early is not None and delivery is Delivery.PENDING:
            delivery = early
        self.documents.setdefault(
            invoice_id, DocumentState(invoice_id, tenant_id, number, source, delivery)
        )

    async def set_delivery(
        self, tenant_id: str, invoice_id: str, delivery: Delivery
    ) -> DocumentState | None:
        """Record distribution's report (a send is never undone); kept for later when the
        invoice was not seen created yet."""
        found = self.documents.get(invoice_id)
        if found is None:
            kept = self.early_reports.get(invoice_id)
            if kept is not Delivery.DELIVERED or delivery is Delivery.DELIVERED:
                self.early_reports[invoice_id] = delivery
            return None
        if found.delivery is not Delivery.DELIVERED or delivery is Delivery.DELIVERED:
            found = dataclasses.replace(found, delivery=delivery)
            self.documents[invoice_id] = found
        return found

    async def get(self, invoice_id: str, *, lock: bool = False) -> DocumentState | None:
        """The document (one process: nothing to lock)."""
        return self.documents.get(invoice_id)

    async def hold(self, invoice_id: str, payload: dict[str, Any]) -> None:
        """Keep a held closing's payload."""
        self.documents[invoice_id] = dataclasses.replace(self.documents[invoice_id], held=payload)

    async def release(self, invoice_id: str) -> dict[str, Any] | None:
        """The held payload, no longer held."""
        found = self.documents.get(invoice_id)
        if found is None or found.held is None:
            return None
        self.documents[invoice_id] = dataclasses.replace(found, held=None)
        return found.held


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

    async def exists(self, *, kind: str, key: str, tenant_id: str, invoice_id: str) -> bool:
        """Whether the tenant has a job of that kind and key for that invoice."""
        job = self.jobs.get((kind, key))
        return (
            job is not None
            and job.tenant_id == tenant_id
            and job.payload.get("invoice_id") == invoice_id
        )


def fake_repositories(
    profiles: FakeTenantProfiles | None = None,
    connections: list[WriteConnection] | None = None,
) -> Repositories:
    """Fakes of every repository (the entries' one serves as intent log and bookings too)."""
    entries = FakeEntryRepository()
    return Repositories(
        connections=FakeConnectionRepository({c.connection_id: c for c in connections or []}),
        entries=entries,
        intents=entries,
        jobs=FakeJobScheduler(),
        profiles=profiles or FakeTenantProfiles(),
        bookings=entries,
        transfers=FakeTransferRepository(),
        documents=FakeDocumentRepository(),
    )


# -- a fake ERP -----------------------------------------------------------------------------
class ErpUnavailableError(Exception):
    """A transient failure of the fake ERP (a timeout, a 5xx)."""


@dataclass
class FakeLedger:
    """One ERP company's invoice payments and booked documents, as Fortnox would answer.

    ``fail_after_apply`` writes fail with ``ErpUnavailableError`` after they were applied (the
    outcome a caller cannot know); ``refuse`` makes every write raise ``EntryRefusedError``;
    ``sent`` is the ERP's own send status of every invoice.
    """

    payments: list[dict[str, Any]] = field(default_factory=list)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_after_apply: int = 0
    refuse: str | None = None
    creates: int = 0
    sent_status: bool | None = None
    fee_booked: bool = True

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
            "InvoiceNumber": document_number,
            "Amount": float(amount),
            "PaymentDate": payment_date.isoformat(),
            "ModeOfPayment": mode_of_payment,
            "ModeOfPaymentAccount": account,
            "WriteOffs": [],
        }
        self.payments.append(payment)
        return dict(payment)

    def _applied(self) -> None:
        self.creates += 1
        if self.refuse is not None:
            raise EntryRefusedError(self.refuse)

    def _answer(self) -> None:
        if self.fail_after_apply > 0:
            self.fail_after_apply -= 1
            raise ErpUnavailableError("HTTP 500: applied, but answered with an error")

    async def find_entry(self, entry: ErpEntry, known: set[str], state: str | None) -> str | None:
        """A payment with every detail that no entry of ours holds."""
        on_invoice = [p for p in self.payments if str(p["InvoiceNumber"]) == entry.document_number]
        found = adoptable(
            on_invoice,
            amount=entry.cash,
            mode=entry.mode_of_payment,
            account=entry.account,
            paid_on=entry.paid_on,
            known=known,
        )
        return None if found is None else str(found["Number"])

    async def prepare_entry(self, entry: ErpEntry) -> str | None:
        """Nothing to note."""
        return None

    async def create_entry(self, entry: ErpEntry) -> str:
        """Register one payment (or refuse, or apply it and answer with an error)."""
        self._applied()
        if entry.kind is EntryKind.FINANCING_ADVANCE:
            payment = self.add(
                entry.document_number,
                entry.amount,
                entry.paid_on,
                mode_of_payment="VOUCHER",
                account=entry.accounts.liability,
            )
        else:
            payment = self.add(
                entry.document_number,
                entry.cash,
                entry.paid_on,
                mode_of_payment=entry.mode_of_payment,
                account=entry.account,
            )
            self.payments[-1]["WriteOffs"] = [
                {"AccountNumber": a, "Amount": float(x)}
                for a, x in (
                    (entry.accounts.fee, entry.fee),
                    (entry.accounts.liability, entry.advance),
                )
                if x
            ]
        self._answer()
        return str(payment["Number"])

    async def settle_entry(self, entry: ErpEntry, reference: str) -> None:
        """Mark a payment booked into this ERP for another source as booked."""
        if entry.bookkeep:
            for payment in self.payments:
                if str(payment["Number"]) == reference:
                    payment["Booked"] = True

    async def sent(self, document_id: str, document_number: str) -> bool | None:
        """The ERP's own send status."""
        return self.sent_status

    async def book(self, booking: Booking, original: str | None, *, dry_run: bool) -> Written:
        """A document by our reference: adopted when there, else created (or planned)."""
        written = Written([])
        found = self.documents.get(booking.reference)
        if found is not None:
            written.add(found["resource"], found["number"], ADOPTED)
            written.erp_reference = found["number"]
            return written
        resource = booking.action.value
        if dry_run:
            written.add(resource, None, PLANNED)
            return written
        self._applied()
        number = str(len(self.documents) + 1001)
        self.documents[booking.reference] = {
            "resource": resource,
            "number": number,
            "original": original,
            "invoiced": None,
        }
        written.add(resource, number, CREATED)
        written.erp_reference = number
        self._answer()
        return written

    async def invoice_order(
        self, order: str, booking: Booking, invoice_date: dt.date, *, dry_run: bool
    ) -> Written:
        """The order's invoice, once."""
        written = Written([])
        document = self.documents[booking.reference]
        if document["invoiced"] is not None:
            written.add("invoice", document["invoiced"], ADOPTED)
        else:
            self._applied()
            document["invoiced"] = f"F{order}"
            document["invoice_date"] = invoice_date
            written.add("invoice", document["invoiced"], CREATED)
            self._answer()
        written.erp_reference = document["invoiced"]
        return written

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

    async def booker_for(self, connection: WriteConnection) -> FakeLedger:
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
    """The payments a Fortnox (sandbox) company holds for an invoice, each in full."""
    response = httpx.get(
        f"{base_url}/3/invoicepayments", params={"invoicenumber": number}, headers=headers
    )
    return [
        httpx.get(f"{base_url}/3/invoicepayments/{p['Number']}", headers=headers).json()[
            "InvoicePayment"
        ]
        for p in response.json()["InvoicePayments"]
        if str(p["InvoiceNumber"]) == number
    ]


# -- a worker process to kill (crash tests) ---------------------------------------------------
CRASH_WORKER = "from ledger_closer.testing import crash_worker_main; crash_worker_main()"


async def _work(database_url: str, schema: str, key: str, kind: str) -> None:
    app = app_for(database_url, encryption_key=key)
    pool = await db.create_pool(database_url, schema, min_size=1, max_size=4)
    deps = await app.build_deps(Resources(app.name, app.settings, pool, lambda: None))
    handler, options = app.job_handlers[kind]
    options = {k: v for k, v in options.items() if k != "idle_seconds"}
    worker = JobWorker(pool, app.name, kind, handler, deps=deps, **options)
    while True:
        if not await worker.run_one():
            await asyncio.sleep(0.1)


def crash_worker_main() -> None:
    """Run the due jobs of one kind on an existing schema until the process is killed: what
    ``ledger-closer run`` does with them, in a process a crash test can SIGKILL mid-call
    (``NF_DATABASE_URL``, ``NF_SCHEMA``, ``NF_ENCRYPTION_KEY``, ``NF_JOB_KIND``)."""
    env = os.environ
    asyncio.run(
        _work(
            env["NF_DATABASE_URL"], env["NF_SCHEMA"], env["NF_ENCRYPTION_KEY"], env["NF_JOB_KIND"]
        )
    )
