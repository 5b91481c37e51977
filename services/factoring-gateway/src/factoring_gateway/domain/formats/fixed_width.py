"""Fixed-width debtor and invoice files in the SG Finans / Nordea Finance style.

Layout from the published description of SG Finans' files (Milient Moment's export
documentation, "File content"): an invoice file of 128-character records F1-F16 and a
customer file of 254-character records K1-K20, dates YYMMDD, amounts in øre without a
decimal separator, numbers right-aligned and zero-filled, text left-aligned and
space-filled, records ended by CR LF, ISO-8859-1. The due-date change file is Nordflow's
own (SG Finans publishes none): see FORMATS.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from nordflow_schemas.invoice import Invoice, PartyType
from nordflow_schemas.money import to_minor_units

from .base import BatchLine, DueDateChange, FileHeader, OutFile, customer_key, digits

FORMAT_ID = "sgfinans-fixed-width"
MEDIA_TYPE = "text/plain; charset=iso-8859-1"
CUSTOMER_VERSION = "9409"  # K2, fixed by the layout
# ISO 3166-1 numeric codes (K15) of the countries Nordflow's tenants invoice.
COUNTRY_NUMBERS = {
    "NO": ("578", "Norge"),
    "SE": ("752", "Sverige"),
    "DK": ("208", "Danmark"),
    "FI": ("246", "Finland"),
    "IS": ("352", "Island"),
    "DE": ("276", "Tyskland"),
    "GB": ("826", "Storbritannia"),
}


@dataclass(frozen=True)
class Column:
    """One field of a record: its name in the layout, its width and whether it is numeric."""

    name: str
    width: int
    numeric: bool = False


INVOICE_RECORD = (
    Column("F1 transaction code", 1, numeric=True),
    Column("F2 customer no.", 4, numeric=True),
    Column("F3 debtor no.", 9, numeric=True),
    Column("F4 invoice no.", 8, numeric=True),
    Column("F5 invoice date", 6, numeric=True),
    Column("F6 due date", 6, numeric=True),
    Column("F7 amount", 11, numeric=True),
    Column("F8 terms / credited invoice", 5, numeric=True),
    Column("F9 not in use", 10),
    Column("F10 order no.", 15),
    Column("F11 comment", 25),
    Column("F12 sales person no.", 4),
    Column("F13 project no.", 7),
    Column("F14 currency code", 3),
    Column("F15 currency amount", 11, numeric=True),
    Column("F16 not in use", 3),
)
CUSTOMER_RECORD = (
    Column("K1 control character", 1),
    Column("K2 version number", 4, numeric=True),
    Column("K3 customer no.", 4, numeric=True),
    Column("K4 debtor no.", 9, numeric=True),
    Column("K5 organisation no.", 11, numeric=True),
    Column("K6 company name", 35),
    Column("K7 first name", 20),
    Column("K8 address", 30),
    Column("K9 zip code", 4),
    Column("K10 post place", 23),
    Column("K11 contact person", 20),
    Column("K12 telephone no.", 12),
    Column("K13 country", 20),
    Column("K14 country code", 2),
    Column("K15 country number", 3, numeric=True),
    Column("K16 bank giro number", 11),
    Column("K17 district no.", 4),
    Column("K18 name 2", 35),
    Column("K19 currency code", 3),
    Column("K20 not used", 3),
)
CHANGE_RECORD = (
    Column("E1 record type", 1),
    Column("E2 customer no.", 4, numeric=True),
    Column("E3 debtor no.", 9, numeric=True),
    Column("E4 invoice no.", 8, numeric=True),
    Column("E5 old due date", 6, numeric=True),
    Column("E6 new due date", 6, numeric=True),
    Column("E7 amount", 11, numeric=True),
)


def record(columns: tuple[Column, ...], values: list[str]) -> str:
    """One record: each value padded to its column (numbers zero-filled on the left)."""
    out = []
    for column, value in zip(columns, values, strict=True):
        if len(value) > column.width:
            raise ValueError(f"{column.name}: {value!r} is wider than {column.width}")
        out.append(value.rjust(column.width, "0") if column.numeric else value.ljust(column.width))
    return "".join(out)


def yymmdd(day: dt.date) -> str:
    """A date as the layout writes it."""
    return day.strftime("%y%m%d")


def _text(value: str | None, width: int) -> str:
    return " ".join((value or "").split())[:width]


class FixedWidthFormat:
    """``sgfinans-fixed-width``: a customer file and an invoice file per batch."""

    format_id = FORMAT_ID
    max_invoices = 99_999

    def check(self, invoice: Invoice) -> str | None:
        """The layout's numeric fields must hold the invoice's numbers."""
        buyer = invoice.buyer
        if not invoice.number.isdigit() or len(invoice.number) > 8:
            return f"invoice number {invoice.number!r} does not fit F4 (up to 8 digits)"
        key = buyer.customer_number or ""
        if not key.isdigit() or len(key) > 9:
            return f"customer number {key!r} does not fit F3/K4 (up to 9 digits)"
        if buyer.party_type is PartyType.COMPANY and not 1 <= len(digits(buyer.company_id)) <= 11:
            return "buyer has no organisation number for K5"
        address = buyer.address
        if not address.lines or not address.city:
            return "buyer's address and post place are required (K8, K10)"
        if not (address.postal_code or "").isdigit() or len(address.postal_code or "") != 4:
            return f"postal code {address.postal_code!r} does not fit K9 (4 digits)"
        if address.country_code not in COUNTRY_NUMBERS:
            return f"country {address.country_code} has no K15 number in this layout"
        reference = invoice.preceding_invoice
        if reference is not None and (not reference.number.isdigit() or len(reference.number) > 5):
            return f"credited invoice {reference.number!r} does not fit F8 (up to 5 digits)"
        if len(str(to_minor_units(invoice.totals.payable))) > 11:
            return "amount does not fit F7 (11 digits of øre)"
        return None

    def render(self, header: FileHeader, lines: list[BatchLine]) -> list[OutFile]:
        """``K<client>_<serial>.SGF`` (customers) then ``F<client>_<serial>.SGF`` (invoices)."""
        customers: dict[str, str] = {}
        invoices = []
        for line in lines:
            invoice = line.invoice
            key = customer_key(invoice.buyer)
            customers.setdefault(key, self._customer(header, invoice))
            invoices.append(self._invoice(header, line))
        stem = f"{header.client_number}_{header.serial:05d}.SGF"
        return [
            OutFile(f"K{stem}", MEDIA_TYPE, _file(customers.values())),
            OutFile(f"F{stem}", MEDIA_TYPE, _file(invoices)),
        ]

    def render_changes(self, header: FileHeader, changes: list[DueDateChange]) -> list[OutFile]:
        """``E<client>_<serial>.SGF``: one E record per moved due date."""
        records = [
            record(
                CHANGE_RECORD,
                [
                    "E",
                    header.client_number,
                    customer_key(c.invoice.buyer),
                    c.invoice.number,
                    yymmdd(c.old_due_date),
                    yymmdd(c.new_due_date),
                    str(to_minor_units(c.invoice.totals.payable)),
                ],
            )
            for c in changes
        ]
        name = f"E{header.client_number}_{header.serial:05d}.SGF"
        return [OutFile(name, MEDIA_TYPE, _file(records))]

    @staticmethod
    def _invoice(header: FileHeader, line: BatchLine) -> str:
        invoice = line.invoice
        minor = str(to_minor_units(line.amount))
        credited = invoice.preceding_invoice.number if invoice.preceding_invoice else ""
        return record(
            INVOICE_RECORD,
            [
                "9" if line.is_credit else "1",
                header.client_number,
                customer_key(invoice.buyer),
                invoice.number,
                yymmdd(invoice.issue_date),
                yymmdd(invoice.due_date or invoice.issue_date),
                minor,
                credited if line.is_credit else "",
                "",
                _text(invoice.order_reference, 15),
                "",
                "",
                "",
                invoice.currency,
                minor,
                "",
            ],
        )

    @staticmethod
    def _customer(header: FileHeader, invoice: Invoice) -> str:
        buyer = invoice.buyer
        address = buyer.address
        number, country = COUNTRY_NUMBERS[address.country_code]
        return record(
            CUSTOMER_RECORD,
            [
                "K",
                CUSTOMER_VERSION,
                header.client_number,
                customer_key(buyer),
                digits(buyer.company_id),
                _text(buyer.name, 35),
                "",
                _text(address.lines[0] if address.lines else "", 30),
                address.postal_code or "",
                _text(address.city, 23),
                "",
                "",
                country,
                address.country_code,
                number,
                "",
                "",
                _text(" ".join(address.lines[1:2]), 35),
                invoice.currency,
                "",
            ],
        )


def _file(records: Iterable[str]) -> bytes:
    return "".join(f"{line}\r\n" for line in records).encode("iso-8859-1", errors="replace")
