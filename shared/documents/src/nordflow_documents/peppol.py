"""PEPPOL BIS Billing 3.0 renderer: a canonical invoice as a UBL 2.1 Invoice or CreditNote."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from lxml import etree
from nordflow_schemas.invoice import (
    AllowanceCharge,
    DocumentType,
    Invoice,
    InvoiceLine,
    Party,
    Payee,
    VatBreakdown,
    VatCategory,
)
from nordflow_schemas.money import money

from .registry import Attachment

FORMAT_ID: Final = "peppol-bis-billing-3"
MEDIA_TYPE: Final = "application/xml"
CUSTOMIZATION_ID: Final = (
    "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
)
PROFILE_ID: Final = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

INVOICE_NS: Final = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS: Final = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC: Final = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC: Final = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# Payee account schemes the Swedish national rules (SE-R-007..011) want as
# FinancialInstitutionBranch ID next to payment means code 30.
SWEDISH_GIRO_SCHEMES: Final = frozenset({"SE:BANKGIRO", "SE:PLUSGIRO"})
F_SKATT_TEXT: Final = "Godkänd för F-skatt"  # SE-R-005: the only non-VAT tax scheme text
FORETAKSREGISTERET: Final = "Foretaksregisteret"  # NO-R-002

# VATEX code and standard text for categories whose breakdown needs an exemption reason
# (BR-AE-10, BR-IC-10, BR-G-10, BR-O-10). Exempt (E) has many codes, so it takes only the
# canonical reason; Standard (BR-S-10) and Zero rated (BR-Z-10) must not have one.
_EXEMPTIONS: Final[dict[VatCategory, tuple[str, str]]] = {
    VatCategory.REVERSE_CHARGE: ("VATEX-EU-AE", "Reverse charge"),
    VatCategory.INTRA_COMMUNITY: ("VATEX-EU-IC", "Intra-Community supply"),
    VatCategory.EXPORT: ("VATEX-EU-G", "Export outside the EU"),
    VatCategory.NOT_SUBJECT: ("VATEX-EU-O", "Not subject to VAT"),
}
_NO_EXEMPTION_REASON: Final = frozenset({VatCategory.STANDARD, VatCategory.ZERO})

# Characters XML 1.0 cannot carry; an ERP text field holding one must not break the document.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_DIGIT = re.compile(r"\D")
_VAT_NOISE = re.compile(r"[\s.\-]")


def amount_text(value: Decimal) -> str:
    """A money amount with exactly two decimals (BR-DEC-*), rounded half up."""
    return format(money(value), "f")


def number_text(value: Decimal) -> str:
    """A quantity or percentage without exponent or trailing zeros: ``25.00`` → ``25``."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def price_text(value: Decimal) -> str:
    """An item price: two decimals, or more when the price has more (BR-DEC does not cap it)."""
    normalized = value.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return format(normalized, "f")
    return amount_text(value)


def organisation_number(party: Party) -> tuple[str, str] | None:
    """``(ICD scheme, id)`` of a Swedish (0007) or Norwegian (0192) party's org. no., if any."""
    if party.company_id is None:
        return None
    digits = _NOT_DIGIT.sub("", party.company_id)
    country = party.address.country_code
    if country == "SE":
        if len(digits) == 12:  # century-prefixed form ("16" + number, or a sole trader's)
            digits = digits[2:]
        if len(digits) == 10:
            return "0007", digits
    if country == "NO" and len(digits) == 9:
        return "0192", digits
    return None


def vat_identifier(party: Party) -> str | None:
    """The VAT id as PEPPOL wants it; Norwegian ones as ``NO`` + 9 digits + ``MVA`` (NO-R-001)."""
    if party.vat_id is None:
        return None
    vat = _VAT_NOISE.sub("", party.vat_id).upper()
    if party.address.country_code == "NO":
        match = re.fullmatch(r"(?:NO)?(\d{9})(?:MVA)?", vat)
        if match:
            return f"NO{match.group(1)}MVA"
    return vat or None


class PeppolBisRenderer:
    """Renders PEPPOL BIS Billing 3.0 (EHF 3 in Norway) UBL documents.

    Business rules are not checked here: an invoice that breaks one still renders, and the
    validator names the rule. Only what the syntax cannot carry is dropped (empty values,
    characters illegal in XML), so no empty element is ever written (PEPPOL-EN16931-R008).
    """

    format_id: Final = FORMAT_ID
    media_type: Final = MEDIA_TYPE

    def render(self, invoice: Invoice, attachments: Sequence[Attachment] = ()) -> bytes:
        """The UBL document as UTF-8 bytes with an XML declaration."""
        root = _DocumentWriter(invoice).write(attachments)
        document: bytes = etree.tostring(
            root, xml_declaration=True, encoding="UTF-8", pretty_print=True
        )
        return document


class _DocumentWriter:
    """Builds one UBL tree; knows the document currency and whether it is a credit note."""

    def __init__(self, invoice: Invoice) -> None:
        self.invoice = invoice
        self.currency = invoice.currency
        self.credit_note = invoice.document_type is DocumentType.CREDIT_NOTE
        # BT-6 and BT-111 travel together (BR-53) and only for another currency (R005).
        self.tax_currency = (
            invoice.vat_accounting_currency
            if invoice.vat_accounting_currency not in (None, invoice.currency)
            and invoice.vat_total_accounting_currency is not None
            else None
        )
        # BR-O-02..04: a document with supplies not subject to VAT carries no VAT ids.
        categories = {item.vat_category for item in invoice.lines}
        categories.update(item.vat_category for item in invoice.allowances_charges)
        self.vat_ids = VatCategory.NOT_SUBJECT not in categories

    # -- element helpers ----------------------------------------------------------------

    @staticmethod
    def cbc(
        parent: etree._Element, tag: str, value: str | None, **attributes: str
    ) -> etree._Element | None:
        """Append ``<cbc:tag …>value</cbc:tag>`` unless the value is empty after cleaning."""
        if value is None:
            return None
        cleaned = _XML_ILLEGAL.sub("", value).strip()
        if not cleaned:
            return None
        element = etree.SubElement(parent, f"{{{CBC}}}{tag}", **attributes)
        element.text = cleaned
        return element

    @staticmethod
    def cac(parent: etree._Element, tag: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{CAC}}}{tag}")

    def amount(
        self, parent: etree._Element, tag: str, value: Decimal, currency: str | None = None
    ) -> None:
        self.cbc(parent, tag, amount_text(value), currencyID=currency or self.currency)

    def tax_category(
        self, parent: etree._Element, tag: str, category: VatCategory, rate: Decimal
    ) -> etree._Element:
        """``TaxCategory`` / ``ClassifiedTaxCategory``; category O carries no rate (BR-O-05..)."""
        element = self.cac(parent, tag)
        self.cbc(element, "ID", category.value)
        if category is not VatCategory.NOT_SUBJECT:
            self.cbc(element, "Percent", number_text(rate))
        return element

    def tax_scheme(self, parent: etree._Element, scheme_id: str = "VAT") -> None:
        self.cbc(self.cac(parent, "TaxScheme"), "ID", scheme_id)

    # -- document -----------------------------------------------------------------------

    def write(self, attachments: Sequence[Attachment]) -> etree._Element:
        invoice = self.invoice
        root_ns, root_tag = (
            (CREDIT_NOTE_NS, "CreditNote") if self.credit_note else (INVOICE_NS, "Invoice")
        )
        root = etree.Element(
            f"{{{root_ns}}}{root_tag}", nsmap={None: root_ns, "cac": CAC, "cbc": CBC}
        )
        self.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
        self.cbc(root, "ProfileID", PROFILE_ID)
        self.cbc(root, "ID", invoice.number)
        self.cbc(root, "IssueDate", invoice.issue_date.isoformat())
        if self.credit_note:
            # UBL 2.1 CreditNote has no DueDate: BIS puts BT-9 in PaymentMeans/PaymentDueDate.
            self.cbc(root, "CreditNoteTypeCode", "381")
        else:
            if invoice.due_date is not None:
                self.cbc(root, "DueDate", invoice.due_date.isoformat())
            self.cbc(root, "InvoiceTypeCode", "380")
        # BIS allows one document note (BT-22): an assigned invoice's notice of assignment
        # comes first in it.
        notes = [invoice.payee.assignment_text if invoice.payee else None, invoice.note]
        self.cbc(root, "Note", "\n".join(n for n in notes if n) or None)
        self.cbc(root, "DocumentCurrencyCode", self.currency)
        self.cbc(root, "TaxCurrencyCode", self.tax_currency)
        # PEPPOL-EN16931-R003 needs a buyer reference or an order reference; buyers that
        # route on BT-10 get the order number there when nothing else was given.
        self.cbc(root, "BuyerReference", invoice.buyer_reference or invoice.order_reference)
        if invoice.order_reference:
            self.cbc(self.cac(root, "OrderReference"), "ID", invoice.order_reference)
        if invoice.preceding_invoice is not None:
            reference = self.cac(self.cac(root, "BillingReference"), "InvoiceDocumentReference")
            self.cbc(reference, "ID", invoice.preceding_invoice.number)
            if invoice.preceding_invoice.issue_date is not None:
                self.cbc(reference, "IssueDate", invoice.preceding_invoice.issue_date.isoformat())
        for attachment in attachments:
            self.attachment(root, attachment)
        self.party(self.cac(root, "AccountingSupplierParty"), invoice.seller, seller=True)
        self.party(self.cac(root, "AccountingCustomerParty"), invoice.buyer, seller=False)
        if invoice.payee is not None:
            self.payee(root, invoice.payee)
        self.payment_means(root)
        if invoice.payment.terms:
            self.cbc(self.cac(root, "PaymentTerms"), "Note", invoice.payment.terms)
        for allowance_charge in invoice.allowances_charges:
            self.document_allowance_charge(root, allowance_charge)
        self.tax_total(root)
        self.monetary_total(root)
        for line in invoice.lines:
            self.line(root, line)
        _prune_empty(root)
        return root

    def attachment(self, root: etree._Element, attachment: Attachment) -> None:
        reference = self.cac(root, "AdditionalDocumentReference")
        self.cbc(reference, "ID", attachment.filename)  # BT-122, required by BR-52
        self.cbc(reference, "DocumentDescription", attachment.description)
        self.cbc(
            self.cac(reference, "Attachment"),
            "EmbeddedDocumentBinaryObject",
            base64.b64encode(attachment.content).decode("ascii"),
            mimeCode=attachment.mime_type,
            filename=attachment.filename,
        )

    def party(self, parent: etree._Element, party: Party, *, seller: bool) -> None:
        element = self.cac(parent, "Party")
        org_no = organisation_number(party)
        endpoint = party.electronic_address
        endpoint_id = (endpoint.scheme, endpoint.value) if endpoint is not None else None
        if endpoint_id is None and seller:
            endpoint_id = org_no  # PEPPOL-EN16931-R020: the seller's org. no. is its address
        if endpoint_id is not None:
            self.cbc(element, "EndpointID", endpoint_id[1], schemeID=endpoint_id[0])
        self.cbc(self.cac(element, "PartyName"), "Name", party.name)
        self.postal_address(element, party)
        vat = vat_identifier(party) if self.vat_ids else None
        if vat is not None:
            scheme = self.cac(element, "PartyTaxScheme")
            self.cbc(scheme, "CompanyID", vat)
            self.tax_scheme(scheme)
        if seller:
            self.seller_tax_registration(element, party)
        legal = self.cac(element, "PartyLegalEntity")
        self.cbc(legal, "RegistrationName", party.name)
        if org_no is not None:
            self.cbc(legal, "CompanyID", org_no[1], schemeID=org_no[0])
        else:
            self.cbc(legal, "CompanyID", party.company_id)
        if party.email:
            self.cbc(self.cac(element, "Contact"), "ElectronicMail", party.email)

    def payee(self, root: etree._Element, payee: Payee) -> None:
        """BG-10: the factor the invoice was assigned to (paid instead of the seller)."""
        element = self.cac(root, "PayeeParty")
        self.cbc(self.cac(element, "PartyName"), "Name", payee.name)
        if payee.company_id:
            self.cbc(self.cac(element, "PartyLegalEntity"), "CompanyID", payee.company_id)

    def seller_tax_registration(self, element: etree._Element, party: Party) -> None:
        """BT-32 texts the Swedish (SE-R-005) and Norwegian (NO-R-002) rules ask of sellers."""
        country = party.address.country_code
        text = {"SE": F_SKATT_TEXT, "NO": FORETAKSREGISTERET}.get(country)
        if text is None or party.company_id is None:
            return
        scheme = self.cac(element, "PartyTaxScheme")
        self.cbc(scheme, "CompanyID", text)
        self.tax_scheme(scheme, "TAX")

    def postal_address(self, parent: etree._Element, party: Party) -> None:
        address = party.address
        element = self.cac(parent, "PostalAddress")
        lines = [line for line in address.lines if line.strip()]
        if lines:
            self.cbc(element, "StreetName", lines[0])
        if len(lines) > 1:
            self.cbc(element, "AdditionalStreetName", lines[1])
        self.cbc(element, "CityName", address.city)
        self.cbc(element, "PostalZone", address.postal_code)
        if len(lines) > 2:  # BT-162 / BT-163: the third address line
            self.cbc(self.cac(element, "AddressLine"), "Line", ", ".join(lines[2:]))
        self.cbc(self.cac(element, "Country"), "IdentificationCode", address.country_code)

    def payment_means(self, root: etree._Element) -> None:
        payment = self.invoice.payment
        if not (payment.account_id or payment.payment_reference):
            return
        element = self.cac(root, "PaymentMeans")
        self.cbc(element, "PaymentMeansCode", payment.means_code)
        if self.credit_note and self.invoice.due_date is not None:
            self.cbc(element, "PaymentDueDate", self.invoice.due_date.isoformat())
        self.cbc(element, "PaymentID", payment.payment_reference)
        if payment.account_id:
            scheme = (payment.account_scheme or "").strip().upper()
            account = payment.account_id
            if scheme in SWEDISH_GIRO_SCHEMES or scheme == "IBAN":
                account = re.sub(r"[\s\-]", "", account)  # SE-R-007/008: digits only
            financial = self.cac(element, "PayeeFinancialAccount")
            self.cbc(financial, "ID", account)
            if scheme in SWEDISH_GIRO_SCHEMES:
                self.cbc(self.cac(financial, "FinancialInstitutionBranch"), "ID", scheme)

    def document_allowance_charge(self, root: etree._Element, item: AllowanceCharge) -> None:
        element = self.cac(root, "AllowanceCharge")
        self.cbc(element, "ChargeIndicator", "true" if item.is_charge else "false")
        # BR-CO-21 / BR-CO-22: a reason text or code is required.
        self.cbc(element, "AllowanceChargeReason", item.reason or _default_reason(item.is_charge))
        self.amount(element, "Amount", item.amount)
        category = self.tax_category(element, "TaxCategory", item.vat_category, item.vat_rate)
        self.tax_scheme(category)

    def tax_total(self, root: etree._Element) -> None:
        element = self.cac(root, "TaxTotal")
        self.amount(element, "TaxAmount", self.invoice.totals.tax_total)
        for breakdown in self.invoice.vat_breakdown:
            self.tax_subtotal(element, breakdown)
        vat_in_accounting_currency = self.invoice.vat_total_accounting_currency
        if self.tax_currency is not None and vat_in_accounting_currency is not None:
            # BT-111: a second TaxTotal with the amount only, no subtotals (PEPPOL R053/R054).
            accounting = self.cac(root, "TaxTotal")
            self.amount(accounting, "TaxAmount", vat_in_accounting_currency, self.tax_currency)

    def tax_subtotal(self, parent: etree._Element, breakdown: VatBreakdown) -> None:
        element = self.cac(parent, "TaxSubtotal")
        self.amount(element, "TaxableAmount", breakdown.taxable_amount)
        self.amount(element, "TaxAmount", breakdown.tax_amount)
        category = self.tax_category(element, "TaxCategory", breakdown.category, breakdown.rate)
        if breakdown.category not in _NO_EXEMPTION_REASON:
            code, standard_text = _EXEMPTIONS.get(breakdown.category, (None, None))
            self.cbc(category, "TaxExemptionReasonCode", code)
            self.cbc(category, "TaxExemptionReason", breakdown.exemption_reason or standard_text)
        self.tax_scheme(category)

    def monetary_total(self, root: etree._Element) -> None:
        totals = self.invoice.totals
        has_allowances = any(not ac.is_charge for ac in self.invoice.allowances_charges)
        has_charges = any(ac.is_charge for ac in self.invoice.allowances_charges)
        element = self.cac(root, "LegalMonetaryTotal")
        self.amount(element, "LineExtensionAmount", totals.line_extension)
        self.amount(element, "TaxExclusiveAmount", totals.tax_exclusive)
        self.amount(element, "TaxInclusiveAmount", totals.tax_inclusive)
        if has_allowances or totals.allowance_total:
            self.amount(element, "AllowanceTotalAmount", totals.allowance_total)
        if has_charges or totals.charge_total:
            self.amount(element, "ChargeTotalAmount", totals.charge_total)
        if totals.prepaid:
            self.amount(element, "PrepaidAmount", totals.prepaid)
        if totals.rounding:
            self.amount(element, "PayableRoundingAmount", totals.rounding)
        self.amount(element, "PayableAmount", totals.payable)

    def line(self, root: etree._Element, line: InvoiceLine) -> None:
        tag, quantity_tag = (
            ("CreditNoteLine", "CreditedQuantity")
            if self.credit_note
            else ("InvoiceLine", "InvoicedQuantity")
        )
        element = self.cac(root, tag)
        self.cbc(element, "ID", line.line_id)
        self.cbc(element, quantity_tag, number_text(line.quantity), unitCode=line.unit_code)
        self.amount(element, "LineExtensionAmount", line.net_amount)
        self.cbc(element, "AccountingCost", line.account_number)
        if line.allowance_amount:
            allowance = self.cac(element, "AllowanceCharge")
            self.cbc(allowance, "ChargeIndicator", "false")
            self.cbc(allowance, "AllowanceChargeReason", _default_reason(is_charge=False))
            self.amount(allowance, "Amount", line.allowance_amount)
        item = self.cac(element, "Item")
        self.cbc(item, "Name", line.description)
        if line.article_number:
            self.cbc(self.cac(item, "SellersItemIdentification"), "ID", line.article_number)
        category = self.tax_category(
            item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate
        )
        self.tax_scheme(category)
        price = self.cac(element, "Price")
        self.cbc(price, "PriceAmount", price_text(line.unit_price), currencyID=self.currency)


def _prune_empty(root: etree._Element) -> None:
    """Remove aggregates left without content because every value in them was empty."""
    # Reversed document order visits every element after all of its descendants.
    for element in reversed(list(root.iter())):
        parent = element.getparent()
        if parent is not None and len(element) == 0 and not (element.text or "").strip():
            parent.remove(element)


def _default_reason(is_charge: bool) -> str:
    return "Charge" if is_charge else "Discount"
