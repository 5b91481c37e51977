"""A provider's settlement (remittance) file: what buyers paid, matched back to invoices.

The layout read here is the factor sandbox's (FORMATS.md, "Settlement files"): UTF-8,
semicolon-separated, a header line ``#SETTLEMENT;1;<client number>;<YYYY-MM-DD>``, a
column line, then one line per payment: ``reference;invoice_number;paid_on;currency;
amount_minor;fee_minor;payer``. A real factor's remittance layout is another parser beside
this one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from nordflow_schemas.money import from_minor_units, to_minor_units

HEADER = "#SETTLEMENT"
COLUMNS = "reference;invoice_number;paid_on;currency;amount_minor;fee_minor;payer"


@dataclass(frozen=True)
class SettlementLine:
    """One payment the provider reports."""

    line_no: int
    reference: str | None
    invoice_number: str | None
    paid_on: dt.date
    currency: str
    amount: Decimal
    fee: Decimal
    payer: str


class SettlementFormatError(ValueError):
    """A settlement file that cannot be read; the message names the line."""


def parse_settlement(content: bytes) -> list[SettlementLine]:
    """Every payment line of a settlement file."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettlementFormatError(f"not UTF-8: {exc}") from None
    rows = [row for row in text.splitlines() if row.strip()]
    if not rows or not rows[0].startswith(f"{HEADER};"):
        raise SettlementFormatError(f"line 1: expected the {HEADER} header")
    if len(rows) < 2 or rows[1].strip() != COLUMNS:
        raise SettlementFormatError(f"line 2: expected the columns {COLUMNS}")
    lines = []
    for number, row in enumerate(rows[2:], start=3):
        cells = row.split(";")
        if len(cells) != 7:
            raise SettlementFormatError(f"line {number}: 7 columns expected, {len(cells)} found")
        reference, invoice_number, paid_on, currency, amount, fee, payer = (
            c.strip() for c in cells
        )
        try:
            lines.append(
                SettlementLine(
                    line_no=number,
                    reference=reference or None,
                    invoice_number=invoice_number or None,
                    paid_on=dt.date.fromisoformat(paid_on),
                    currency=currency,
                    amount=from_minor_units(int(amount)),
                    fee=from_minor_units(int(fee or "0")),
                    payer=payer or "unknown",
                )
            )
        except ValueError as exc:
            raise SettlementFormatError(f"line {number}: {exc}") from None
    return lines


def render_settlement(client_number: str, day: dt.date, lines: list[SettlementLine]) -> bytes:
    """A settlement file in this layout (the sandbox writes these; tests build them)."""
    out = [f"{HEADER};1;{client_number};{day.isoformat()}", COLUMNS]
    for line in lines:
        out.append(
            ";".join(
                [
                    line.reference or "",
                    line.invoice_number or "",
                    line.paid_on.isoformat(),
                    line.currency,
                    str(to_minor_units(line.amount)),
                    str(to_minor_units(line.fee)),
                    line.payer.replace(";", ","),
                ]
            )
        )
    return ("\n".join(out) + "\n").encode()
