"""CUSIN-style XML: ``CUSIN_<CompanyNumber>_<DateTime>_<Serial>.xml``, at most 50,000
invoices a file, checked against the XSD beside this module before it leaves.

After Swedbank PayEx's published description of CUSIN (root attributes, file name, one
customer block with its invoices, the 50,000-invoice limit, serials never reused); the
invoice elements and the amounts in minor units are Nordflow's reading (see cusin.xsd and
FORMATS.md).
"""

from __future__ import annotations

import functools
from importlib import resources

from lxml import etree
from nordflow_schemas.invoice import Invoice, PartyType
from nordflow_schemas.money import to_minor_units

from .base import BatchLine, DueDateChange, FileHeader, OutFile, customer_key, digits

FORMAT_ID = "cusin-xml"
MEDIA_TYPE = "application/xml"
MAX_INVOICES = 50_000
VERSION = "2.0"


class SchemaError(ValueError):
    """A rendered file does not validate against cusin.xsd (a bug here, never sent)."""


@functools.cache
def schema() -> etree.XMLSchema:
    """The CUSIN-style XML Schema (compiled once)."""
    text = resources.files(__package__).joinpath("cusin.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(text))


def validate(document: bytes) -> list[str]:
    """The schema's complaints about ``document`` (empty when it is valid)."""
    xsd = schema()
    try:
        tree = etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if xsd.validate(tree):
        return []
    return [f"line {e.line}: {e.message}" for e in xsd.error_log]


def _identifier(value: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789äåöÄÅÖ&/_ .-")
    return 1 <= len(value) <= 15 and set(value) <= allowed


class CusinFormat:
    """``cusin-xml``: one XML file per batch, customers with their invoices."""

    format_id = FORMAT_ID
    max_invoices = MAX_INVOICES

    def check(self, invoice: Invoice) -> str | None:
        """Customer and bill numbers must be CUSIN identifiers."""
        if not _identifier(invoice.number):
            return f"invoice number {invoice.number!r} is not a CUSIN BillNo (1-15 characters)"
        key = customer_key(invoice.buyer)
        if not _identifier(key):
            return f"customer number {key!r} is not a CUSIN CustomerNo (1-15 characters)"
        return None

    def render(self, header: FileHeader, lines: list[BatchLine]) -> list[OutFile]:
        """One file; customers in the order their first invoice comes."""
        root = self._root(header)
        blocks: dict[str, etree._Element] = {}
        for line in lines:
            invoice = line.invoice
            key = customer_key(invoice.buyer)
            if key not in blocks:
                blocks[key] = self._customer(root, key, invoice)
            self._invoice(blocks[key], line)
        return [self._file(header, root)]

    def render_changes(self, header: FileHeader, changes: list[DueDateChange]) -> list[OutFile]:
        """One file with a DueDateChanges block (Nordflow's alternative to CUSINInfo)."""
        root = self._root(header)
        block = etree.SubElement(root, "DueDateChanges")
        for c in changes:
            change = etree.SubElement(block, "Change")
            _add(change, "CustomerNo", customer_key(c.invoice.buyer))
            _add(change, "BillNo", c.invoice.number)
            _add(change, "OldDueDate", c.old_due_date.isoformat())
            _add(change, "NewDueDate", c.new_due_date.isoformat())
        return [self._file(header, root)]

    @staticmethod
    def _root(header: FileHeader) -> etree._Element:
        created = header.created_at.replace(microsecond=0, tzinfo=None).isoformat()
        root = etree.Element(
            "CUSIN",
            Version=VERSION,
            CreatedDateTime=created,
            CompanyNo=header.client_number,
            CompanyName=header.company_name[:72],
        )
        distribution = etree.SubElement(root, "DistributionDate")
        etree.SubElement(distribution, "AsSoonAsPossible")
        return root

    @staticmethod
    def _customer(root: etree._Element, key: str, invoice: Invoice) -> etree._Element:
        buyer = invoice.buyer
        info = etree.SubElement(root, "CUSINInfo")
        _add(info, "CustomerNo", key)
        customer = etree.SubElement(info, "CustomerInfo")
        _add(customer, "Name", buyer.name[:72])
        private = buyer.party_type is PartyType.PRIVATE
        _add(customer, "LegalEntity", "Private" if private else "Business")
        if reg := digits(buyer.company_id)[:15]:
            _add(customer, "RegNo", reg, CountryCode=buyer.address.country_code)
        address = etree.SubElement(customer, "DistributionAddressInfo")
        for tag, value in zip(("Address1", "Address2"), buyer.address.lines, strict=False):
            _add(address, tag, value[:35])
        if buyer.address.postal_code:
            _add(address, "PostalCode", buyer.address.postal_code[:35])
        if buyer.address.city:
            _add(address, "City", buyer.address.city[:35])
        _add(address, "CountryCode", buyer.address.country_code)
        return etree.SubElement(info, "Invoices")

    @staticmethod
    def _invoice(invoices: etree._Element, line: BatchLine) -> None:
        invoice = line.invoice
        element = etree.SubElement(invoices, "Invoice")
        _add(element, "BillNo", invoice.number)
        _add(element, "InvoiceType", "Credit" if line.is_credit else "Debit")
        _add(element, "InvoiceDate", invoice.issue_date.isoformat())
        _add(element, "DueDate", (invoice.due_date or invoice.issue_date).isoformat())
        _add(element, "Currency", invoice.currency)
        _add(element, "Amount", str(to_minor_units(line.amount)))
        _add(element, "VATAmount", str(to_minor_units(invoice.totals.tax_total)))
        if line.payment_reference:
            _add(element, "OCR", line.payment_reference)
        if line.is_credit and invoice.preceding_invoice is not None:
            _add(element, "CreditedBillNo", invoice.preceding_invoice.number)
        if invoice.order_reference:
            _add(element, "OrderNo", invoice.order_reference[:35])

    @staticmethod
    def _file(header: FileHeader, root: etree._Element) -> OutFile:
        content = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        problems = validate(content)
        if problems:
            raise SchemaError("; ".join(problems))
        stamp = header.created_at.strftime("%Y%m%d%H%M%S")
        name = f"CUSIN_{header.client_number}_{stamp}_{header.serial}.xml"
        return OutFile(name, MEDIA_TYPE, content)


def _add(parent: etree._Element, tag: str, text: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, tag, **attributes)
    element.text = text
    return element
