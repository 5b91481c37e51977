"""The canonical invoice: EN 16931 semantics (BT/BG numbers in field descriptions)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from .common import (
    Amount,
    Code,
    CountryCode,
    CurrencyCode,
    Frozen,
    LongText,
    Name,
    SaneDate,
    ShortText,
    SourceRef,
    TenantId,
)


class DocumentType(StrEnum):
    """BT-3: commercial invoice (UNCL1001 380) or credit note (381)."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class PartyType(StrEnum):
    """Whether the buyer is a company or a consumer; decides B2B or B2C channels."""

    COMPANY = "company"
    PRIVATE = "private"


class VatCategory(StrEnum):
    """UNCL5305 VAT category codes used by EN 16931 (BT-151, BT-118)."""

    STANDARD = "S"
    ZERO = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"
    INTRA_COMMUNITY = "K"
    EXPORT = "G"
    NOT_SUBJECT = "O"


class Address(Frozen):
    """BG-5 / BG-8 postal address."""

    lines: tuple[ShortText, ...] = Field(
        default=(), max_length=5, description="BT-35..36 / BT-50..51"
    )
    city: ShortText | None = Field(default=None, description="BT-37 / BT-52")
    postal_code: ShortText | None = Field(default=None, description="BT-38 / BT-53")
    country_code: CountryCode = Field(description="BT-40 / BT-55")


class ElectronicAddress(Frozen):
    """BT-34 / BT-49 electronic address with its ISO 6523 ICD scheme (0007, 0192, 0088 …)."""

    scheme: str = Field(pattern=r"^\d{4}$")
    value: Code


class Party(Frozen):
    """BG-4 seller / BG-7 buyer."""

    name: Name = Field(description="BT-27 / BT-44")
    party_type: PartyType = PartyType.COMPANY
    company_id: ShortText | None = Field(
        default=None, description="BT-30 / BT-47 legal registration"
    )
    vat_id: ShortText | None = Field(default=None, description="BT-31 / BT-48")
    electronic_address: ElectronicAddress | None = None
    address: Address
    email: ShortText | None = Field(default=None, description="BT-43 / BT-58 contact e-mail")
    customer_number: ShortText | None = Field(
        default=None, description="Number in the seller's ERP"
    )
    personal_number_sealed: str | None = Field(
        default=None,
        max_length=1000,
        description="A consumer's personal identity number, encrypted (Fernet) with the key only "
        "the services that need it hold (distribution-router, factoring-gateway); "
        "company_id then carries only its masked form (******1234). See decision 0010",
    )


class InvoiceLine(Frozen):
    """BG-25 invoice line; net amount = quantity x net price - line allowance."""

    line_id: ShortText = Field(description="BT-126")
    description: LongText = Field(description="BT-153 item name")
    article_number: ShortText | None = Field(default=None, description="BT-155 seller's item id")
    quantity: Amount = Field(description="BT-129")
    unit_code: ShortText = Field(default="C62", description="BT-130 UN/ECE rec 20")
    unit_price: Amount = Field(description="BT-146 item net price")
    allowance_amount: Amount = Field(default=Decimal(0), description="BT-136 line allowance")
    net_amount: Amount = Field(description="BT-131")
    vat_category: VatCategory = Field(description="BT-151")
    vat_rate: Amount = Field(description="BT-152 percent")
    account_number: ShortText | None = Field(
        default=None, description="BT-133 buyer accounting ref"
    )


class AllowanceCharge(Frozen):
    """BG-20 document allowance / BG-21 document charge."""

    is_charge: bool
    amount: Amount
    reason: ShortText | None = None
    vat_category: VatCategory
    vat_rate: Amount


class VatBreakdown(Frozen):
    """BG-23 VAT breakdown per category and rate."""

    category: VatCategory = Field(description="BT-118")
    rate: Amount = Field(description="BT-119")
    taxable_amount: Amount = Field(description="BT-116")
    tax_amount: Amount = Field(description="BT-117")
    exemption_reason: ShortText | None = Field(default=None, description="BT-120")


class Totals(Frozen):
    """BG-22 document totals (positive on credit notes too, as in UBL CreditNote)."""

    line_extension: Amount = Field(description="BT-106 sum of line net amounts")
    allowance_total: Amount = Field(default=Decimal(0), description="BT-107")
    charge_total: Amount = Field(default=Decimal(0), description="BT-108")
    tax_exclusive: Amount = Field(description="BT-109")
    tax_total: Amount = Field(description="BT-110")
    tax_inclusive: Amount = Field(description="BT-112")
    prepaid: Amount = Field(default=Decimal(0), description="BT-113")
    rounding: Amount = Field(default=Decimal(0), description="BT-114")
    payable: Amount = Field(description="BT-115")


class PaymentInstructions(Frozen):
    """BG-16 payment instructions: means, reference (OCR/KID), account, terms."""

    means_code: ShortText = Field(default="30", description="BT-81 UNCL4461 (30 credit transfer)")
    payment_reference: ShortText | None = Field(default=None, description="BT-83 OCR / KID")
    account_id: ShortText | None = Field(default=None, description="BT-84 IBAN, Bankgiro, Plusgiro")
    account_scheme: ShortText | None = Field(default=None, description="e.g. SE:BANKGIRO, IBAN")
    terms: LongText | None = Field(default=None, description="BT-20")


class Payee(Frozen):
    """BG-10 payee: who is paid when it is not the seller — the factor an invoice was assigned
    to. The invoice's payment instructions (BG-16) then name the payee's account."""

    name: Name = Field(description="BT-59 payee name")
    company_id: ShortText | None = Field(default=None, description="BT-61 payee legal registration")
    assignment_text: LongText | None = Field(
        default=None,
        description="The notice of assignment the buyer must read (printed on every channel)",
    )


class InvoiceReference(Frozen):
    """BG-3 preceding invoice reference, for credit notes."""

    number: ShortText = Field(description="BT-25")
    issue_date: SaneDate | None = Field(default=None, description="BT-26")
    invoice_id: ShortText | None = Field(default=None, description="Canonical id of the original")


class ProjectReference(Frozen):
    """BT-11 project reference, with the project's name (e.g. a kitchen project in Winner)."""

    number: str = Field(min_length=1, description="BT-11 the project's number at the seller")
    name: str | None = Field(default=None, description="The project's name")


class Invoice(Frozen):
    """One canonical invoice or credit note, whatever system it came from."""

    invoice_id: ShortText = Field(description="Canonical, tenant-scoped id (the Kafka record key)")
    tenant_id: TenantId
    source: SourceRef
    document_type: DocumentType
    number: Code = Field(description="BT-1")
    issue_date: SaneDate = Field(description="BT-2")
    due_date: SaneDate | None = Field(default=None, description="BT-9")
    currency: CurrencyCode = Field(description="BT-5")
    seller: Party
    buyer: Party
    lines: tuple[InvoiceLine, ...] = Field(min_length=1, max_length=5000)
    allowances_charges: tuple[AllowanceCharge, ...] = Field(default=(), max_length=100)
    vat_breakdown: tuple[VatBreakdown, ...] = Field(min_length=1, max_length=100)
    totals: Totals
    payment: PaymentInstructions = PaymentInstructions()
    payee: Payee | None = Field(
        default=None, description="BG-10, set when the invoice is assigned to a factor"
    )
    buyer_reference: ShortText | None = Field(default=None, description="BT-10")
    order_reference: ShortText | None = Field(default=None, description="BT-13")
    preceding_invoice: InvoiceReference | None = None
    vat_accounting_currency: CurrencyCode | None = Field(
        default=None,
        description=(
            "BT-6 VAT accounting currency: the seller's national currency (SEK, NOK, DKK, EUR "
            "for FI) when it differs from the invoice currency (BT-5); None otherwise"
        ),
    )
    vat_total_accounting_currency: Amount | None = Field(
        default=None,
        description=(
            "BT-111 invoice total VAT amount in the VAT accounting currency (BT-6), as the "
            "source booked it; required when BT-6 is given (BR-53)"
        ),
    )
    exchange_rate: Amount | None = Field(
        default=None,
        description=(
            "Units of the VAT accounting currency (BT-6) per one unit of the invoice currency "
            "(BT-5), as the source used it for BT-111 (no EN 16931 term)"
        ),
    )
    note: LongText | None = Field(default=None, description="BT-22")
    payment_method: ShortText | None = Field(
        default=None, description="The ERP's payment method code (decides factoring eligibility)"
    )
    customer_payment_method: ShortText | None = Field(
        default=None,
        description="The customer's default payment method in the ERP, which applies when the "
        "invoice names none (factoring eligibility)",
    )
    outstanding_amount: Amount | None = Field(
        default=None, description="Open balance in the ERP when fetched; None if unknown"
    )
    project: ProjectReference | None = Field(default=None, description="BT-11 and its name")
    settled_by: str | None = Field(
        default=None,
        description="An external payment provider (e.g. Stripe) that took the whole payment at "
        "sale: a paid cash receipt, nothing payable (its prepaid amount BT-113 is the total)",
    )
