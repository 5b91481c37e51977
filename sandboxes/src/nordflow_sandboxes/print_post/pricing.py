"""The print house's price table (sandbox data, SEK excl. VAT) and the quote for one letter.

Not a real tariff: the numbers are of the right order for Swedish business mail in 2025 so
that channel costs compare sensibly (paper is dearer than a PEPPOL or bank e-invoice).

| item | black-and-white | colour |
| --- | --- | --- |
| printing, per printed page (side) | 0.40 | 1.90 |
| paper, per sheet | 0.20 | 0.20 |
| envelope and insertion, per letter | 1.60 | 1.60 |

| weight up to | A-post (prioritised) | B-post (economy) |
| --- | --- | --- |
| 50 g | 16.00 | 13.50 |
| 100 g | 32.00 | 27.00 |
| 250 g | 64.00 | 54.00 |

A sheet weighs 5 g and the C5 envelope 6 g; duplex prints two pages per sheet. At most 48
sheets (250 g) fit one letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from nordflow_schemas.money import CENT

Postage = Literal["A", "B"]

CURRENCY = "SEK"
PRINT_PER_SIDE = {False: Decimal("0.40"), True: Decimal("1.90")}
PAPER_PER_SHEET = Decimal("0.20")
ENVELOPE = Decimal("1.60")
SHEET_GRAMS = 5
ENVELOPE_GRAMS = 6
POSTAGE: tuple[tuple[int, dict[Postage, Decimal]], ...] = (
    (50, {"A": Decimal("16.00"), "B": Decimal("13.50")}),
    (100, {"A": Decimal("32.00"), "B": Decimal("27.00")}),
    (250, {"A": Decimal("64.00"), "B": Decimal("54.00")}),
)
MAX_SHEETS = (POSTAGE[-1][0] - ENVELOPE_GRAMS) // SHEET_GRAMS


@dataclass(frozen=True)
class Quote:
    """What one letter costs, by part."""

    pages: int
    sheets: int
    weight_grams: int
    printing: Decimal
    paper_and_envelope: Decimal
    postage: Decimal

    @property
    def total(self) -> Decimal:
        """Printing + paper and envelope + postage."""
        return self.printing + self.paper_and_envelope + self.postage

    def as_json(self) -> dict[str, Any]:
        """Amounts as decimal strings with two decimals (never floats)."""
        return {
            "currency": CURRENCY,
            "printing": str(self.printing.quantize(CENT)),
            "paper_and_envelope": str(self.paper_and_envelope.quantize(CENT)),
            "postage": str(self.postage.quantize(CENT)),
            "total": str(self.total.quantize(CENT)),
            "vat_included": False,
        }


def sheets_for(pages: int, duplex: bool) -> int:
    """Sheets of paper needed for `pages` printed pages."""
    return (pages + 1) // 2 if duplex else pages


def quote(pages: int, *, postage: Postage, colour: bool, duplex: bool) -> Quote:
    """The price of one letter; ValueError when it has no page or is too heavy to post."""
    if pages < 1:
        raise ValueError("a letter has at least one page")
    sheets = sheets_for(pages, duplex)
    if sheets > MAX_SHEETS:
        raise ValueError(f"{sheets} sheets exceed the {MAX_SHEETS} that fit one letter")
    weight = sheets * SHEET_GRAMS + ENVELOPE_GRAMS
    stamp = next(prices[postage] for limit, prices in POSTAGE if weight <= limit)
    return Quote(
        pages=pages,
        sheets=sheets,
        weight_grams=weight,
        printing=PRINT_PER_SIDE[colour] * pages,
        paper_and_envelope=PAPER_PER_SHEET * sheets + ENVELOPE,
        postage=stamp,
    )
