"""The one invoice builder: a source's lines, VAT, totals and buyer with the tenant's seller.

Each source module reads its document (``Reader``) and hands what it read to an
``InvoiceBuilder``, which assembles the canonical ``Invoice``:

* the seller party (BG-4) is the tenant's profile that came with the document
  (``related["tenant"]``, ``RELATED_TENANT``) and the payment account (BT-84) the profile's
  account for the invoice currency; a document without a valid profile is rejected with
  ``NF-TENANT-PROFILE`` on field ``tenant``;
* lines (BG-25) are added one by one, their nets summed per (VAT category, rate);
* the VAT breakdown (BG-23) is the VAT on those sums rounded to the öre (or what the source
  booked), with one BT-120 text per category;
* BT-6 / BT-111 state the VAT in the seller's accounting currency when the invoice is in
  another one;
* ``build`` returns the invoice, or every problem the reader and the builder recorded.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from functools import wraps
from typing import Any, NamedTuple

from nordflow_schemas.common import canonical_invoice_id
from nordflow_schemas.events import RELATED_TENANT, ErpDocumentFetched, ValidationIssue
from nordflow_schemas.invoice import (
    Address,
    DocumentType,
    ElectronicAddress,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    Party,
    PartyType,
    PaymentInstructions,
    ProjectReference,
    Totals,
    VatBreakdown,
    VatCategory,
)
from nordflow_schemas.money import money
from nordflow_schemas.tenant import TenantProfile
from pydantic import ValidationError

from .reader import Reader, country_code, optional_text, schema_issues
from .validation import accounting_currency

Mapped = Invoice | list[ValidationIssue]
"""What mapping a document gives: the canonical invoice, or every problem found."""
SourceMapper = Callable[[ErpDocumentFetched], Mapped]

PROFILE_RULE = "NF-TENANT-PROFILE"
PROFILE_HINT = "set the tenant's profile on erp-poller (PUT /api/v1/profile)"
# BT-120 texts EN 16931 asks for (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10).
EXEMPTION_REASONS: Mapping[VatCategory, str] = {
    VatCategory.REVERSE_CHARGE: "Reverse charge",
    VatCategory.INTRA_COMMUNITY: "Intra-community supply",
    VatCategory.EXPORT: "Export outside the EU",
    VatCategory.EXEMPT: "Exempt from VAT",
}
PRICE_PLACES = Decimal("0.0001")


class AccountingVat(NamedTuple):
    """BT-6, BT-111 and the source's exchange rate; all None in the accounting currency."""

    currency: str | None = None
    vat: Decimal | None = None
    rate: Decimal | None = None


def never_raises(field: str) -> Callable[[SourceMapper], SourceMapper]:
    """A last guard around a source mapper: an arithmetic error (a number no check foresaw)
    becomes an NF-NUMBER issue on ``field``, and a value the canonical model refuses where
    no check named it first (text with control characters, an overlong one, a date out of
    range) NF-SCHEMA issues naming the model's fields, instead of stopping the consumer."""

    def decorate(mapper: SourceMapper) -> SourceMapper:
        @wraps(mapper)
        def guarded(event: ErpDocumentFetched) -> Mapped:
            try:
                return mapper(event)
            except ArithmeticError as exc:
                return [ValidationIssue(field=field, rule="NF-NUMBER", message=str(exc))]
            except ValidationError as exc:
                return schema_issues(exc, field)

        return guarded

    return decorate


def tenant_profile(r: Reader, related: Mapping[str, Any]) -> TenantProfile | None:
    """The tenant's profile the document came with, or None with an issue on ``tenant``."""
    raw = related.get(RELATED_TENANT)
    if not raw:
        r.fail(
            RELATED_TENANT,
            PROFILE_RULE,
            f"the document came without the tenant's profile (related['{RELATED_TENANT}']), "
            f"so the invoice has no seller: {PROFILE_HINT}",
        )
        return None
    try:
        return TenantProfile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'profile'}: {err['msg']}"
            for err in exc.errors()
        )
        r.fail(
            RELATED_TENANT,
            PROFILE_RULE,
            f"the tenant's profile the document came with is not valid ({problems}): "
            f"{PROFILE_HINT}",
        )
        return None


def net_price(amount: Decimal, quantity: Decimal) -> Decimal:
    """A line's net price (BT-146) to four decimals: ``amount`` per ``quantity``."""
    return (amount / quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)


def vat_sums(breakdown: Iterable[VatBreakdown]) -> tuple[Decimal, Decimal]:
    """(taxable, VAT) summed over a VAT breakdown."""
    taxable, vat = Decimal(0), Decimal(0)
    for b in breakdown:
        taxable += b.taxable_amount
        vat += b.tax_amount
    return taxable, vat


def totals(
    line_total: Decimal,
    vat_total: Decimal,
    *,
    payable: Decimal | None = None,
    rounding: Decimal | None = None,
) -> Totals:
    """BG-22 of an invoice without document allowances or charges. Without ``rounding`` it is
    what ``payable`` leaves over net + VAT; without ``payable``, net + VAT + rounding."""
    inclusive = line_total + vat_total
    if rounding is None:
        rounding = Decimal(0) if payable is None else payable - inclusive
    return Totals(
        line_extension=line_total,
        tax_exclusive=line_total,
        tax_total=vat_total,
        tax_inclusive=inclusive,
        rounding=rounding,
        payable=inclusive + rounding if payable is None else payable,
    )


class InvoiceBuilder:
    """Collects one document's lines and VAT, then assembles its canonical invoice."""

    def __init__(self, r: Reader, event: ErpDocumentFetched, *, home_country: str = "SE") -> None:
        """``home_country`` stands in for the seller's country only while a document without
        a valid profile is read on (it is rejected, but every other problem is still named)."""
        self.r = r
        self.event = event
        self.profile = tenant_profile(r, event.related)
        self.seller_country = (
            self.profile.seller.address.country_code if self.profile else home_country
        )
        self.lines: list[InvoiceLine] = []
        self.taxable: defaultdict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)

    # -- what the tenant's profile says -----------------------------------------------------
    @property
    def currency(self) -> str | None:
        """The tenant's accounting currency (the invoice currency when a document names none
        and its source has no default of its own)."""
        return self.profile.accounting_currency if self.profile else None

    @property
    def accounting_currency(self) -> str | None:
        """The currency the seller accounts for VAT in: its country's, else the profile's."""
        return accounting_currency(self.seller_country) or self.currency

    # -- lines and VAT ----------------------------------------------------------------------
    def add_line(
        self,
        field: str,
        *,
        description: str | None,
        quantity: Decimal,
        unit_price: Decimal,
        net: Decimal,
        category: VatCategory,
        rate: Decimal,
        allowance: Decimal = Decimal(0),
        article_number: str | None = None,
        unit_code: str | None = None,
        account: str | None = None,
        line_id: str | None = None,
        rule: str = "NF-ROW",
    ) -> None:
        """One line (BG-25), its net counted in its (category, rate); a line the canonical
        model refuses is an issue under ``field`` with ``rule``."""
        self.taxable[(category, rate)] += net
        try:
            self.lines.append(
                InvoiceLine(
                    line_id=line_id or str(len(self.lines) + 1),
                    description=description or "(no description)",
                    article_number=article_number,
                    quantity=quantity,
                    unit_code=unit_code or "C62",
                    unit_price=unit_price,
                    allowance_amount=allowance,
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate,
                    account_number=account,
                )
            )
        except ValidationError as exc:
            self.r.fail_model(field, rule, exc)

    @property
    def line_total(self) -> Decimal:
        """The sum of the lines' net amounts (BT-106)."""
        return sum((line.net_amount for line in self.lines), Decimal(0))

    def vat_breakdown(
        self, booked: Mapping[Decimal, Decimal] | None = None
    ) -> tuple[VatBreakdown, ...]:
        """BG-23 per (category, rate) of the lines: the VAT on the summed nets rounded to the
        öre, or for standard-rated ones what the source ``booked`` at that rate."""
        breakdown = []
        for (category, rate), base in sorted(self.taxable.items()):
            vat = money(base * rate / 100)
            if booked is not None and category is VatCategory.STANDARD:
                vat = booked.get(rate, vat)
            breakdown.append(
                VatBreakdown(
                    category=category,
                    rate=rate,
                    taxable_amount=base,
                    tax_amount=vat,
                    exemption_reason=EXEMPTION_REASONS.get(category),
                )
            )
        return tuple(breakdown)

    def accounting_vat(
        self,
        *,
        currency: str,
        vat_total: Decimal,
        rate: Decimal | None,
        rate_field: str,
        booked: Decimal | None = None,
    ) -> AccountingVat:
        """BT-6, BT-111 and the exchange rate of an invoice in another currency than the
        seller's accounting currency (all None otherwise).

        ``rate`` is accounting-currency units per invoice-currency unit. ``booked`` is the VAT
        total in the accounting currency as the source booked it, when it states one;
        otherwise it is the VAT total at the rate, rounded to the öre.
        """
        accounting = self.accounting_currency
        if accounting is None or currency == accounting:
            return AccountingVat()
        if rate is None:
            self.r.fail(
                rate_field,
                "NF-REQUIRED",
                f"{rate_field} is required for an invoice in {currency}: its VAT must also be "
                f"stated in {accounting}",
            )
            return AccountingVat()
        if rate <= 0:
            self.r.fail(
                rate_field, "NF-CURRENCY-RATE", f"{rate_field} must be positive, got {rate}"
            )
            return AccountingVat()
        return AccountingVat(
            accounting, money(vat_total * rate) if booked is None else booked, rate
        )

    # -- parties and references -------------------------------------------------------------
    def address(
        self,
        lines: Iterable[Any] = (),
        *,
        city: Any = None,
        postal_code: Any = None,
        country: Any = None,
    ) -> Address:
        """A postal address (BG-8) from source values; the seller's country when none is given."""
        return Address(
            lines=tuple(text for text in map(optional_text, lines) if text),
            city=optional_text(city),
            postal_code=optional_text(postal_code),
            country_code=country_code(country, self.seller_country),
        )

    def address_of(self, data: dict[str, Any], field: str) -> Address:
        """An address object in the canonical shape (``lines``, ``postal_code``, ``city``,
        ``country_code``), as erp-poller writes Winner customers and register entries."""
        lines = data.get("lines") or []
        if not isinstance(lines, list):
            self.r.fail(f"{field}.lines", "NF-TYPE", f"{field}.lines must be a list of strings")
            lines = []
        return self.address(
            [line for line in lines if optional_text(line)][:2],
            city=data.get("city"),
            postal_code=data.get("postal_code"),
            country=data.get("country_code"),
        )

    def endpoint(self, scheme: Any, value: Any, field: str) -> ElectronicAddress | None:
        """An electronic address (BT-49) with its ICD scheme; an issue on ``field`` if bad."""
        try:
            return ElectronicAddress(scheme=str(scheme), value=str(value))
        except ValidationError as exc:
            self.r.fail_model(field, "NF-SCHEMA", exc)
            return None

    def buyer(
        self,
        name: str | None,
        *,
        address: Address,
        private: bool = False,
        company_id: Any = None,
        vat_id: Any = None,
        electronic_address: ElectronicAddress | None = None,
        email: Any = None,
        customer_number: Any = None,
    ) -> Party | None:
        """The buyer (BG-7) from source values (None without a name: it was reported)."""
        if name is None:
            return None
        try:
            return Party(
                name=name,
                party_type=PartyType.PRIVATE if private else PartyType.COMPANY,
                company_id=optional_text(company_id),
                vat_id=optional_text(vat_id),
                electronic_address=electronic_address,
                address=address,
                email=optional_text(email),
                customer_number=optional_text(customer_number),
            )
        except ValidationError as exc:
            self.r.fail_model("buyer", "NF-SCHEMA", exc)
            return None

    def credited(
        self, number: str, *, document_id: str | None = None, issue_date: dt.date | None = None
    ) -> InvoiceReference:
        """BG-3, the invoice a credit note credits; with the source's id of that document,
        also its canonical id (the same connection's)."""
        source = self.event.source
        return InvoiceReference(
            number=number,
            issue_date=issue_date,
            invoice_id=canonical_invoice_id(
                self.event.tenant_id, source.system.value, source.connection_id, document_id
            )
            if document_id
            else None,
        )

    # -- the invoice ------------------------------------------------------------------------
    def build(
        self,
        *,
        credit: bool,
        number: str | None,
        issue_date: dt.date | None,
        currency: str,
        buyer: Party | None,
        vat: tuple[VatBreakdown, ...],
        totals: Totals,
        due_date: dt.date | None = None,
        payment_reference: str | None = None,
        terms: str | None = None,
        account_id: str | None = None,
        account_scheme: str | None = None,
        buyer_reference: str | None = None,
        order_reference: str | None = None,
        preceding: InvoiceReference | None = None,
        note: str | None = None,
        payment_method: str | None = None,
        outstanding: Decimal | None = None,
        accounting: AccountingVat | None = None,
        project: ProjectReference | None = None,
        settled_by: str | None = None,
    ) -> Mapped:
        """The canonical invoice, or every problem recorded while reading and building.

        The seller is the profile's; the payment account is ``account_id`` when the document
        states one, else the profile's account for ``currency``.
        """
        if self.r.issues or self.profile is None:
            return self.r.issues
        if number is None or issue_date is None or buyer is None:
            # Each is required where the source is read, so an issue names it before this.
            return [
                ValidationIssue(
                    field="invoice",
                    rule="NF-SCHEMA",
                    message="an invoice needs its number, issue date and buyer",
                )
            ]
        accounting = accounting or AccountingVat()
        if account_id is None and (account := self.profile.account_for(currency)) is not None:
            account_id, account_scheme = account.account_id, account.scheme.value
        try:
            return Invoice(
                invoice_id=self.event.invoice_id,
                tenant_id=self.event.tenant_id,
                source=self.event.source,
                document_type=DocumentType.CREDIT_NOTE if credit else DocumentType.INVOICE,
                number=number,
                issue_date=issue_date,
                due_date=due_date,
                currency=currency,
                seller=self.profile.seller,
                buyer=buyer,
                lines=tuple(self.lines),
                vat_breakdown=vat,
                totals=totals,
                payment=PaymentInstructions(
                    payment_reference=payment_reference,
                    account_id=account_id,
                    account_scheme=account_scheme,
                    terms=terms,
                ),
                buyer_reference=buyer_reference,
                order_reference=order_reference,
                preceding_invoice=preceding,
                note=note,
                payment_method=payment_method,
                outstanding_amount=outstanding,
                vat_accounting_currency=accounting.currency,
                vat_total_accounting_currency=accounting.vat,
                exchange_rate=accounting.rate,
                project=project,
                settled_by=settled_by,
            )
        except ValidationError as exc:
            return schema_issues(exc)
