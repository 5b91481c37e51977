"""Test factories for the event contract: canonical invoices whose totals add up, their events,
and tenant profiles (importable by every package's tests; never used by production code)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from .common import SourceRef, SourceSystem
from .events import InvoiceCreated, TenantUpdated
from .invoice import (
    Address,
    DocumentType,
    Invoice,
    InvoiceLine,
    Party,
    Totals,
    VatBreakdown,
    VatCategory,
)
from .money import money
from .tenant import COUNTRY_CURRENCIES, COUNTRY_ZONES, Locale, TenantProfile

TODAY = dt.date(2025, 3, 10)


def new_tenant() -> str:
    """A fresh tenant id, so tests never depend on each other's data."""
    return f"t-{uuid.uuid4().hex[:12]}"


def simple_invoice(
    tenant_id: str | None = None,
    *,
    issue_date: dt.date = TODAY,
    document_type: DocumentType = DocumentType.INVOICE,
    payable: Decimal = Decimal("1250.00"),
    currency: str = "SEK",
    country: str = "SE",
    payment_method: str | None = None,
    outstanding_amount: Decimal | None = None,
    number: str | None = None,
) -> Invoice:
    """A one-line invoice at 25 % VAT whose totals add up to ``payable``."""
    tenant_id = tenant_id or new_tenant()
    net = money(payable / Decimal("1.25"))
    number = number or str(uuid.uuid4().int % 1_000_000)
    seller = "Säljare AB" if country == "SE" else "Selger AS"
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id="conn-1",
            document_id=number,
            document_number=number,
        ),
        document_type=document_type,
        number=number,
        issue_date=issue_date,
        due_date=issue_date + dt.timedelta(days=30),
        currency=currency,
        seller=Party(name=seller, address=Address(country_code=country)),
        buyer=Party(name="Köpare AB", address=Address(country_code=country, city="Lund")),
        lines=(
            InvoiceLine(
                line_id="1",
                description="Konsult",
                quantity=Decimal(1),
                unit_price=net,
                net_amount=net,
                vat_category=VatCategory.STANDARD,
                vat_rate=Decimal(25),
            ),
        ),
        vat_breakdown=(
            VatBreakdown(
                category=VatCategory.STANDARD,
                rate=Decimal(25),
                taxable_amount=net,
                tax_amount=payable - net,
            ),
        ),
        totals=Totals(
            line_extension=net,
            tax_exclusive=net,
            tax_total=payable - net,
            tax_inclusive=payable,
            payable=payable,
        ),
        payment_method=payment_method,
        outstanding_amount=payable if outstanding_amount is None else outstanding_amount,
    )


def created(invoice: Invoice, *, test_mode: bool = False, version: str = "v1") -> InvoiceCreated:
    """``invoice.created`` for an invoice."""
    return InvoiceCreated(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.invoice_id,
        test_mode=test_mode,
        version=version,
        invoice=invoice,
    )


def tenant_profile(
    country: str = "SE", *, time_zone: str | None = None, name: str | None = None
) -> TenantProfile:
    """A tenant of a country, in its country's zone unless ``time_zone`` says otherwise."""
    name = name or ("Nordflow Demo AB" if country == "SE" else "Nordflow Norge AS")
    return TenantProfile(
        legal_name=name,
        country=country,
        time_zone=time_zone or COUNTRY_ZONES.get(country, "UTC"),
        locale=Locale.NB if country == "NO" else Locale.SV if country == "SE" else Locale.EN,
        accounting_currency=COUNTRY_CURRENCIES.get(country, "EUR"),
        seller=Party(name=name, address=Address(country_code=country)),
    )


def tenant_updated(tenant_id: str, profile: TenantProfile, revision: int = 1) -> TenantUpdated:
    """``tenant.updated`` carrying a profile."""
    return TenantUpdated(
        tenant_id=tenant_id,
        revision=revision,
        profile=profile,
        updated_at=dt.datetime.now(dt.UTC),
    )
