"""Invoices and invoice.created events as the tests of this service need them: one line at
25 % VAT, a company or a consumer as buyer (built on `nordflow_documents.testing`)."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from decimal import Decimal

from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceLine,
    Party,
    PartyType,
    PaymentInstructions,
    Totals,
    VatBreakdown,
    VatCategory,
)

ISSUE_DATE = dt.date(2025, 3, 10)
GLN = ("0088", "7300010000001")
PERSONNUMMER = "19850317-2384"
SELLER_ORG = "556036-0793"


def one_line_invoice(
    *,
    tenant_id: str = "t-test",
    buyer: Party | None = None,
    seller: Party | None = None,
    net: str | None = None,
    payable: str | None = None,
    quantity: int = 1,
    description: str = "Vara",
    number: str | None = None,
    document_type: DocumentType = DocumentType.INVOICE,
    currency: str = "SEK",
    issue_date: dt.date = ISSUE_DATE,
    due_in_days: int | None = 30,
    payment: PaymentInstructions | None = None,
    buyer_reference: str | None = None,
) -> Invoice:
    """A one-line invoice at 25 % VAT, net ``net`` (default 100.00) or payable ``payable``."""
    if payable is not None:
        net_amount = (Decimal(payable) / Decimal("1.25")).quantize(Decimal("0.01"))
        vat = Decimal(payable) - net_amount
    else:
        net_amount = Decimal(net or "100.00")
        vat = (net_amount / 4).quantize(Decimal("0.01"))
    number = number or f"{secrets.randbelow(10**6)}"
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id="c1",
            document_id=number,
            document_number=number,
        ),
        document_type=document_type,
        number=number,
        issue_date=issue_date,
        due_date=None if due_in_days is None else issue_date + dt.timedelta(days=due_in_days),
        currency=currency,
        seller=seller or Party(name="Säljare AB", address=Address(country_code="SE")),
        buyer=buyer or Party(name="Köpare AB", address=Address(country_code="SE")),
        lines=(
            InvoiceLine(
                line_id="1",
                description=description,
                quantity=Decimal(quantity),
                unit_price=net_amount / quantity,
                net_amount=net_amount,
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=net_amount,
                tax_amount=vat,
            ),
        ),
        totals=Totals(
            line_extension=net_amount,
            tax_exclusive=net_amount,
            tax_total=vat,
            tax_inclusive=net_amount + vat,
            payable=net_amount + vat,
        ),
        payment=payment or PaymentInstructions(),
        buyer_reference=buyer_reference,
    )


def swedish_seller(company_id: str = SELLER_ORG, vat_id: str = "SE556036079301") -> Party:
    """A Swedish company seller in PEPPOL under its register number."""
    digits = company_id.replace("-", "")
    return Party(
        name="Säljare AB",
        company_id=company_id,
        vat_id=vat_id,
        electronic_address=ElectronicAddress(scheme="0007", value=digits),
        address=Address(
            lines=("Gatan 1",), city="Stockholm", postal_code="11122", country_code="SE"
        ),
    )


def company(
    *,
    email: str | None = None,
    gln: bool = False,
    customer_number: str | None = None,
) -> Party:
    """A Swedish company buyer in Luleå (in PEPPOL by GLN when ``gln``)."""
    return Party(
        name="Kund AB",
        company_id=SELLER_ORG,
        email=email,
        customer_number=customer_number,
        electronic_address=ElectronicAddress(scheme=GLN[0], value=GLN[1]) if gln else None,
        address=Address(
            lines=("Kundvägen 2",), city="Luleå", postal_code="97231", country_code="SE"
        ),
    )


def consumer(*, email: str | None = None, personal_number: str = PERSONNUMMER) -> Party:
    """A Swedish consumer in Kiruna with a personal number."""
    return Party(
        name="Anna Andersson",
        party_type=PartyType.PRIVATE,
        company_id=personal_number,
        email=email,
        address=Address(
            lines=("Byvägen 3",), city="Kiruna", postal_code="98131", country_code="SE"
        ),
    )


def new_tenant() -> str:
    """A fresh tenant id."""
    return f"t-{uuid.uuid4().hex[:12]}"


def created_event(
    buyer: Party,
    *,
    tenant: str | None = None,
    test_mode: bool = False,
    buyer_reference: str | None = "Inköp",
    **invoice: object,
) -> InvoiceCreated:
    """invoice.created of a one-line invoice to ``buyer`` from a Swedish seller in PEPPOL
    (in a new tenant unless ``tenant``); ``invoice`` changes the invoice's other fields."""
    tenant = tenant or new_tenant()
    found = one_line_invoice(
        tenant_id=tenant,
        buyer=buyer,
        seller=invoice.pop("seller", None) or swedish_seller(),  # type: ignore[arg-type]
        buyer_reference=buyer_reference,
        quantity=2,
        **invoice,  # type: ignore[arg-type]
    )
    return InvoiceCreated(
        tenant_id=tenant,
        invoice_id=found.invoice_id,
        test_mode=test_mode,
        version="v1",
        invoice=found,
    )
