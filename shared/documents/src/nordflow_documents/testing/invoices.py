"""Canonical invoices for document tests: parties, lines, and totals that add up."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.invoice import (
    Address,
    AllowanceCharge,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    Party,
    Payee,
    PaymentInstructions,
    Totals,
    VatBreakdown,
    VatCategory,
)
from nordflow_schemas.money import money

# Valid identifiers: org. numbers pass Luhn (SE) and MOD11 (NO); OCR and KID end in a Luhn digit.
SE_SELLER_ORG_NO = "556732-1707"
SE_BUYER_ORG_NO = "5566778899"
NO_SELLER_ORG_NO = "923609016"
NO_BUYER_ORG_NO = "974760673"
BANKGIRO = "5050-1055"
OCR = "12345678903"
KID = "202500013"


def swedish_seller(**changes: object) -> Party:
    """A Swedish company with VAT id and org. no., and no explicit electronic address."""
    party = Party(
        name="Nordflow Demo AB",
        company_id=SE_SELLER_ORG_NO,
        vat_id="SE556732170701",
        address=Address(
            lines=("Sveavägen 1",), city="Stockholm", postal_code="111 57", country_code="SE"
        ),
        email="faktura@nordflow.example",
    )
    return party.model_copy(update=changes)


def swedish_buyer(**changes: object) -> Party:
    party = Party(
        name="Köpare i Göteborg AB",
        company_id=SE_BUYER_ORG_NO,
        vat_id="SE556677889901",
        electronic_address=ElectronicAddress(scheme="0007", value=SE_BUYER_ORG_NO),
        address=Address(
            lines=("Storgatan 1", "Box 12"),
            city="Göteborg",
            postal_code="411 01",
            country_code="SE",
        ),
    )
    return party.model_copy(update=changes)


def norwegian_seller(**changes: object) -> Party:
    """A Norwegian company whose VAT id is given without the MVA suffix."""
    party = Party(
        name="Nordflow Norge AS",
        company_id=NO_SELLER_ORG_NO,
        vat_id="NO923609016",
        address=Address(
            lines=("Karl Johans gate 1",), city="Oslo", postal_code="0154", country_code="NO"
        ),
    )
    return party.model_copy(update=changes)


def norwegian_buyer(**changes: object) -> Party:
    party = Party(
        name="Kjøper AS",
        company_id=NO_BUYER_ORG_NO,
        electronic_address=ElectronicAddress(scheme="0192", value=NO_BUYER_ORG_NO),
        address=Address(lines=("Bryggen 2",), city="Bergen", postal_code="5003", country_code="NO"),
    )
    return party.model_copy(update=changes)


def german_buyer(**changes: object) -> Party:
    """An EU company outside Sweden, reached by its VAT id (EAS 9930)."""
    party = Party(
        name="Käufer GmbH",
        vat_id="DE123456789",
        electronic_address=ElectronicAddress(scheme="9930", value="DE123456789"),
        address=Address(
            lines=("Hauptstraße 5",), city="Berlin", postal_code="10115", country_code="DE"
        ),
    )
    return party.model_copy(update=changes)


def line(
    line_id: str,
    description: str,
    quantity: str,
    unit_price: str,
    rate: str = "25",
    *,
    category: VatCategory = VatCategory.STANDARD,
    allowance: str = "0",
    article_number: str | None = None,
    unit_code: str = "C62",
) -> InvoiceLine:
    """An invoice line whose net amount is quantity x price - allowance."""
    net = money(Decimal(quantity) * Decimal(unit_price) - Decimal(allowance))
    return InvoiceLine(
        line_id=line_id,
        description=description,
        article_number=article_number,
        quantity=Decimal(quantity),
        unit_code=unit_code,
        unit_price=Decimal(unit_price),
        allowance_amount=Decimal(allowance),
        net_amount=net,
        vat_category=category,
        vat_rate=Decimal(rate),
    )


def vat_breakdown(
    lines: Sequence[InvoiceLine],
    allowances_charges: Sequence[AllowanceCharge] = (),
    exemption_reasons: Mapping[VatCategory, str] | None = None,
) -> tuple[VatBreakdown, ...]:
    """One breakdown per VAT category and rate, tax rounded per breakdown (BR-CO-17)."""
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = {}
    for item in lines:
        key = (item.vat_category, item.vat_rate)
        taxable[key] = taxable.get(key, Decimal(0)) + item.net_amount
    for ac in allowances_charges:
        key = (ac.vat_category, ac.vat_rate)
        signed = ac.amount if ac.is_charge else -ac.amount
        taxable[key] = taxable.get(key, Decimal(0)) + signed
    reasons = exemption_reasons or {}
    return tuple(
        VatBreakdown(
            category=category,
            rate=rate,
            taxable_amount=amount,
            tax_amount=money(amount * rate / 100),
            exemption_reason=reasons.get(category),
        )
        for (category, rate), amount in sorted(taxable.items(), key=lambda kv: -kv[0][1])
    )


def make_invoice(
    lines: Sequence[InvoiceLine] | None = None,
    *,
    document_type: DocumentType = DocumentType.INVOICE,
    number: str = "10042",
    currency: str = "SEK",
    seller: Party | None = None,
    buyer: Party | None = None,
    allowances_charges: Sequence[AllowanceCharge] = (),
    payment: PaymentInstructions | None = None,
    buyer_reference: str | None = "Anna Andersson",
    order_reference: str | None = None,
    preceding_invoice: InvoiceReference | None = None,
    exemption_reasons: Mapping[VatCategory, str] | None = None,
    prepaid: str = "0",
    round_to_whole: bool = False,
    note: str | None = None,
    payee: Payee | None = None,
) -> Invoice:
    """A canonical invoice whose breakdown and totals follow from its lines (BR-CO-10..17).

    ``round_to_whole`` rounds the amount due to whole units (Swedish öresavrundning) into
    the rounding amount (BT-114).
    """
    lines = tuple(lines or (line("1", "Konsulttimme", "10", "950.00"),))
    breakdown = vat_breakdown(lines, allowances_charges, exemption_reasons)
    line_extension = sum((item.net_amount for item in lines), Decimal(0))
    allowance_total = sum((ac.amount for ac in allowances_charges if not ac.is_charge), Decimal(0))
    charge_total = sum((ac.amount for ac in allowances_charges if ac.is_charge), Decimal(0))
    tax_exclusive = line_extension - allowance_total + charge_total
    tax_total = sum((b.tax_amount for b in breakdown), Decimal(0))
    tax_inclusive = tax_exclusive + tax_total
    due_before_rounding = tax_inclusive - Decimal(prepaid)
    rounding = (
        due_before_rounding.quantize(Decimal(1), rounding=ROUND_HALF_UP) - due_before_rounding
        if round_to_whole
        else Decimal(0)
    )
    issue_date = dt.date(2025, 3, 10)
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=f"t-{uuid.uuid4().hex[:8]}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c1", document_id=number),
        document_type=document_type,
        number=number,
        issue_date=issue_date,
        due_date=issue_date + dt.timedelta(days=30),
        currency=currency,
        seller=seller or swedish_seller(),
        buyer=buyer or swedish_buyer(),
        lines=lines,
        allowances_charges=tuple(allowances_charges),
        vat_breakdown=breakdown,
        totals=Totals(
            line_extension=line_extension,
            allowance_total=allowance_total,
            charge_total=charge_total,
            tax_exclusive=tax_exclusive,
            tax_total=tax_total,
            tax_inclusive=tax_inclusive,
            prepaid=Decimal(prepaid),
            rounding=rounding,
            payable=due_before_rounding + rounding,
        ),
        payment=payment
        or PaymentInstructions(
            payment_reference=OCR,
            account_id=BANKGIRO,
            account_scheme="SE:BANKGIRO",
            terms="30 dagar netto",
        ),
        buyer_reference=buyer_reference,
        order_reference=order_reference,
        preceding_invoice=preceding_invoice,
        note=note,
        payee=payee,
    )
