"""What the factor reads in a received file: its serial, its invoices; and the receipt,
error-log and settlement files it writes back (the layouts FORMATS.md documents)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from nordflow_sandboxes.peppol_ap.ubl import UnsafeXmlError, parse_xml

SERIAL = re.compile(r"(\d+)\.[A-Za-z]+$")


class UnreadableFileError(ValueError):
    """A file the factor cannot read (its error log names the problem)."""


@dataclass(frozen=True)
class FileInvoice:
    """One invoice or credit note as the factor read it from a file."""

    number: str
    amount_minor: int
    currency: str
    reference: str | None
    credit: bool

    def as_json(self) -> dict[str, Any]:
        """The admin view."""
        return {
            "number": self.number,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "reference": self.reference,
            "credit": self.credit,
        }


def serial_of(name: str) -> int | None:
    """The serial at the end of a file name (``…_7.xml``, ``F1234_00007.SGF``)."""
    found = SERIAL.search(name)
    return int(found.group(1)) if found else None


def invoices_of(name: str, content: bytes) -> list[FileInvoice]:
    """The invoices a file carries (a customer or change file carries none)."""
    upper = name.upper()
    if upper.endswith(".XML"):
        return _cusin(content)
    if upper.endswith(".ZIP"):
        return _zipped(content)
    if upper.endswith(".SGF"):
        return _fixed_width(name, content)
    raise UnreadableFileError(f"unknown file type: {name}")


def _cusin(content: bytes) -> list[FileInvoice]:
    try:
        root = parse_xml(content)
    except (UnsafeXmlError, ET.ParseError) as exc:
        raise UnreadableFileError(f"not well-formed XML: {exc}") from None
    if root.tag != "CUSIN":
        raise UnreadableFileError(f"the root element is {root.tag}, not CUSIN")
    out = []
    for invoice in root.iter("Invoice"):
        try:
            out.append(
                FileInvoice(
                    number=invoice.findtext("BillNo") or "",
                    amount_minor=int(invoice.findtext("Amount") or ""),
                    currency=invoice.findtext("Currency") or "",
                    reference=invoice.findtext("OCR"),
                    credit=invoice.findtext("InvoiceType") == "Credit",
                )
            )
        except ValueError:
            raise UnreadableFileError("an Invoice has no whole Amount") from None
    return out


def _zipped(content: bytes) -> list[FileInvoice]:
    try:
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(content)).read("manifest.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableFileError(f"no readable manifest.json in the zip: {exc}") from None
    return [
        FileInvoice(
            number=str(i["number"]),
            amount_minor=int(i["amount_minor"]),
            currency=str(i["currency"]),
            reference=i.get("payment_reference"),
            credit=i.get("document_type") == "credit_note",
        )
        for i in manifest.get("invoices", [])
    ]


def _fixed_width(name: str, content: bytes) -> list[FileInvoice]:
    if not name.upper().startswith("F"):
        return []  # the customer (K) and change (E) files
    out = []
    for record in content.decode("iso-8859-1").split("\r\n"):
        if not record:
            continue
        if len(record) != 128 or record[0] not in "19":
            raise UnreadableFileError(f"an invoice record is not 128 characters: {record[:20]!r}")
        out.append(
            FileInvoice(
                number=record[14:22].lstrip("0"),
                amount_minor=int(record[34:45]),
                currency=record[111:114],
                reference=None,
                credit=record[0] == "9",
            )
        )
    return out


def receipt_xml(name: str, serial: int, invoices: list[FileInvoice]) -> bytes:
    """The receipt of a processed file (after the CUSIN receipt's activity parameters)."""
    total = sum(-i.amount_minor if i.credit else i.amount_minor for i in invoices)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Receipt>'
        f"<FileName>{escape(name)}</FileName><Serial>{serial}</Serial>"
        "<Status>Accepted</Status><PassedValidation>true</PassedValidation>"
        f"<NoOfInvoices>{len(invoices)}</NoOfInvoices>"
        f"<NoOfFailedInvoices>0</NoOfFailedInvoices>"
        f"<TotalInvoiceAmount>{total}</TotalInvoiceAmount></Receipt>\n"
    ).encode()


def error_log_xml(name: str, serial: int | None, code: str, message: str) -> bytes:
    """The error log of a refused file."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorLog>'
        f"<FileName>{escape(name)}</FileName>"
        f"<Serial>{serial if serial is not None else ''}</Serial>"
        f'<Status>Refused</Status><Error code="{escape(code)}">{escape(message)}</Error>'
        "</ErrorLog>\n"
    ).encode()


@dataclass(frozen=True)
class SettlementLine:
    """One payment in a settlement file."""

    reference: str | None
    invoice_number: str | None
    paid_on: date
    currency: str
    amount_minor: int
    fee_minor: int
    payer: str


def settlement_csv(client_number: str, day: date, lines: list[SettlementLine]) -> bytes:
    """A settlement file: ``#SETTLEMENT;1;<client>;<date>``, the columns, one line a payment."""
    out = [
        f"#SETTLEMENT;1;{client_number};{day.isoformat()}",
        "reference;invoice_number;paid_on;currency;amount_minor;fee_minor;payer",
    ]
    for line in lines:
        out.append(
            ";".join(
                [
                    line.reference or "",
                    line.invoice_number or "",
                    line.paid_on.isoformat(),
                    line.currency,
                    str(line.amount_minor),
                    str(line.fee_minor),
                    line.payer.replace(";", ","),
                ]
            )
        )
    return ("\n".join(out) + "\n").encode()
