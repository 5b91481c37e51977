"""The benchmark's workload: many tenants and connections, buyers per channel, and the events
each stage is fed (made here, put straight onto the stage's input topic).

Every invoice is a Fortnox document of 1-8 lines mapped by the mapper's own code, so the
invoices the later stages get are the ones the pipeline really produces.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from mapper.service import map_document
from mapper.testing import related_tenant, seller_profile
from nordflow_references import make_ocr
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import (
    AgreementKind,
    DocumentKind,
    ErpDocumentFetched,
    Flow,
    InvoiceTransferred,
    PaymentReceived,
    TenantUpdated,
)
from nordflow_schemas.invoice import DocumentType, Invoice
from nordflow_schemas.tenant import TenantProfile
from nordflow_schemas.testing import created

# Fortnox's dates are Swedish dates: an invoice the sandbox dates "today" after 23:00 UTC in
# winter is dated tomorrow's UTC date, and a payment dated before its invoice is refused.
SWEDEN = ZoneInfo("Europe/Stockholm")

CHANNELS = ("peppol", "b2c_bank", "email", "paper")
RATES = (25, 12, 6)
BIS3_INVOICE = (
    "busdox-docid-qns::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##"
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
)
# Valid Swedish organisation numbers (check digit) for the company buyers.
ORG_NUMBERS = ("556677-8899", "559012-3450", "556123-4567", "556036-0793")

Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def _luhn_digit(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def gln(n: int) -> str:
    """A GLN (13 digits, GS1 mod-10 check digit) of the bench's own range."""
    body = f"735999{n:06d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def personal_number(n: int) -> str:
    """A valid Swedish personal number (YYYYMMDD-NNNC) of someone born in 1970-1999."""
    rng = random.Random(n)
    year, month, day = 1970 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28)
    serial = f"{rng.randrange(1000):03d}"
    ten = f"{year % 100:02d}{month:02d}{day:02d}{serial}"
    return f"{year}{month:02d}{day:02d}-{serial}{_luhn_digit(ten)}"


def buyers(channel: str, count: int) -> list[dict[str, Any]]:
    """`count` Fortnox customer cards whose invoices go out by `channel`."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        address = {"Address1": f"Storgatan {i + 1}", "ZipCode": "90326", "City": "Umeå"}
        if channel == "peppol":
            card = {"Type": "COMPANY", "OrganisationNumber": ORG_NUMBERS[i % 4], "GLN": gln(i)}
            name = f"E-faktura {i} AB"
        elif channel == "b2c_bank":
            card = {"Type": "PRIVATE", "OrganisationNumber": personal_number(i)}
            name = f"Konsument {i}"
        elif channel == "email":
            card = {
                "Type": "COMPANY",
                "OrganisationNumber": ORG_NUMBERS[i % 4],
                "EmailInvoice": f"ekonomi{i}@kund{i}.example",
            }
            name = f"Mejlkund {i} AB"
        elif channel == "paper":
            card = {"Type": "COMPANY", "OrganisationNumber": ORG_NUMBERS[i % 4]}
            name = f"Papperskund {i} AB"
        else:
            raise ValueError(f"unknown channel {channel!r}")
        out.append({"Name": name, "CustomerNumber": str(100 + i), **card, **address})
    return out


@dataclass(frozen=True)
class Tenant:
    """A tenant of the workload, its profile and its connections (source systems)."""

    tenant_id: str
    profile: TenantProfile
    connections: tuple[str, ...]


def make_tenants(run: str, count: int, connections: int = 2) -> list[Tenant]:
    """`count` Swedish tenants with `connections` Fortnox connections each."""
    tenants = []
    for i in range(count):
        tenant_id = f"bench-{run}-t{i:04d}"
        profile = seller_profile(
            "SE",
            name=f"Bench {run} {i} AB",
            company_id="556036-0793",
            vat_id="SE556036079301",
            street="Sveavägen 1",
            postal_code="11157",
            city="Stockholm",
            bankgiro="5050-1055",
        )
        conns = tuple(f"{tenant_id}-c{c}" for c in range(connections))
        tenants.append(Tenant(tenant_id, profile, conns))
    return tenants


def profile_records(tenants: list[Tenant]) -> list[Record]:
    """`tenant.updated` for every tenant (what erp-poller publishes when a profile is set)."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for t in tenants:
        body = TenantUpdated(tenant_id=t.tenant_id, revision=1, profile=t.profile, updated_at=now)
        out.append(_record(envelope(body, source="/bench")))
    return out


def _record(env: Envelope[Any]) -> Record:
    key, value, headers = encode(env)
    return env.topic, key, value, headers


@dataclass
class Batch:
    """Invoices of one run: the fetched documents and, mapped, the canonical invoices."""

    fetched: list[ErpDocumentFetched] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # invoice id → channel

    @property
    def ids(self) -> set[str]:
        return {f.invoice_id for f in self.fetched}


def fortnox_document(number: str, customer: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A Fortnox invoice (as `GET /3/invoices/{n}` answers) of 1-8 lines, dated today."""
    rows, net, vat = [], 0, 0.0
    for n in range(rng.randint(1, 8)):
        qty, price, rate = rng.randint(1, 9), rng.randint(10, 2000), RATES[n % 3]
        rows.append(
            {
                "Description": f"Artikel {n}",
                "DeliveredQuantity": qty,
                "Price": price,
                "VAT": rate,
                "Total": qty * price,
            }
        )
        net += qty * price
        vat += qty * price * rate / 100
    total = round(net + vat)
    today = dt.datetime.now(SWEDEN).date()
    return {
        "DocumentNumber": number,
        "CustomerNumber": customer["CustomerNumber"],
        "CustomerName": customer["Name"],
        "InvoiceDate": today.isoformat(),
        "DueDate": (today + dt.timedelta(days=30)).isoformat(),
        "Currency": "SEK",
        # Number, length digit, Luhn digit, as Fortnox makes it (and the sandbox): what an
        # internet bank e-invoice needs and the factor's OCR control takes.
        "OCR": make_ocr(number, length_digit=True),
        "YourReference": "Inköp",
        "Address1": customer["Address1"],
        "City": customer["City"],
        "ZipCode": customer["ZipCode"],
        "InvoiceRows": rows,
        "Net": net,
        "TotalVAT": f"{vat:.2f}",
        "RoundOff": f"{total - net - round(vat, 2):.2f}",
        "Total": total,
    }


def make_batch(
    tenants: list[Tenant],
    count: int,
    channels: tuple[str, ...],
    seed: int,
    *,
    buyers_per_channel: int = 8,
    mapped: bool = False,
) -> Batch:
    """`count` invoices spread round-robin over the tenants, their connections and the
    channels; with `mapped`, also the canonical invoices the mapper makes of them."""
    rng = random.Random(seed)
    cards = {c: buyers(c, buyers_per_channel) for c in channels}
    batch = Batch()
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        connection = tenant.connections[(i // len(tenants)) % len(tenant.connections)]
        channel = channels[i % len(channels)]
        customer = cards[channel][rng.randrange(buyers_per_channel)]
        number = str(rng.randrange(10**9))
        event = ErpDocumentFetched(
            tenant_id=tenant.tenant_id,
            invoice_id=f"inv_{uuid.uuid4().hex}",  # new every run: services dedupe by id
            source=SourceRef(
                system=SourceSystem.FORTNOX,
                connection_id=connection,
                document_id=number,
                document_number=number,
            ),
            kind=DocumentKind.INVOICE,
            version="v1",
            fetched_at=dt.datetime.now(dt.UTC),
            payload=fortnox_document(number, customer, rng),
            related={"customer": customer, **related_tenant(tenant.profile)},
        )
        batch.fetched.append(event)
        batch.channels[event.invoice_id] = channel
        if mapped:
            invoice = map_document(event)
            if not isinstance(invoice, Invoice):
                raise SystemExit(f"bench invoice {i} does not map: {invoice}")
            batch.invoices.append(invoice)
    return batch


def fetched_records(batch: Batch) -> Iterator[Record]:
    for event in batch.fetched:
        subject = event.source.document_number
        yield _record(envelope(event, source="/erp-poller", subject=subject))


def created_records(batch: Batch, flow: Flow | None = None) -> Iterator[Record]:
    """`invoice.created` for the batch's invoices, with the connection's `flow` (default:
    factored and distributed, as `Flow()`)."""
    for invoice in batch.invoices:
        event = created(invoice)
        if flow is not None:
            event = event.model_copy(update={"flow": flow})
        yield _record(envelope(event, source="/mapper", subject=invoice.number))


@dataclass(frozen=True)
class LedgerInvoice:
    """An invoice that exists in a tenant's Fortnox sandbox company (for ledger-closer)."""

    tenant_id: str
    connection_id: str
    number: str
    total: Decimal


def ledger_records(invoices: list[LedgerInvoice], seed: int) -> tuple[list[Record], set[str]]:
    """Half `payment.received` (bank payments), half `invoice.transferred` (closings), one
    per invoice; returns the records and their invoice ids."""
    now = dt.datetime.now(dt.UTC)
    out: list[Record] = []
    ids: set[str] = set()
    for i, inv in enumerate(invoices):
        invoice_id = f"inv_{uuid.uuid4().hex}"
        ids.add(invoice_id)
        source = SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id=inv.connection_id,
            document_id=inv.number,
            document_number=inv.number,
        )
        body: PaymentReceived | InvoiceTransferred
        if i % 2 == 0:
            body = PaymentReceived(
                tenant_id=inv.tenant_id,
                invoice_id=invoice_id,
                source=source,
                payment_id=f"pay_{invoice_id}",
                amount=inv.total,
                currency="SEK",
                paid_on=now.astimezone(SWEDEN).date(),
                payer="Kund AB",
            )
        else:
            body = InvoiceTransferred(
                tenant_id=inv.tenant_id,
                invoice_id=invoice_id,
                source=source,
                document_type=DocumentType.INVOICE,
                number=inv.number,
                provider="nordea-finans",
                agreement_kind=AgreementKind.FACTORING,
                transfer_id=f"tr_{invoice_id}",
                amount=inv.total,
                currency="SEK",
                transferred_at=now,
            )
        out.append(_record(envelope(body, source="/bench", subject=inv.number)))
    return out, ids
