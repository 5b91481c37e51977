"""documents.pdf: the invoice PDF reads back with every fact the recipient needs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from fpdf import FPDF
from fpdf.drawing_primitives import DeviceRGB
from fpdf.enums import MethodReturnValue, XPos, YPos
from nordflow_documents.pdf import (
    _INK,
    Assignment,
    Enclosure,
    Language,
    _InvoiceDocument,
    format_account,
    format_amount,
    format_quantity,
    render_pdf,
    safe_text,
)
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.invoice import (
    Address,
    AllowanceCharge,
    DocumentType,
    Invoice,
    InvoiceLine,
    InvoiceReference,
    Party,
    PaymentInstructions,
    Totals,
    VatBreakdown,
    VatCategory,
)
from pypdf import PdfReader

SELLER_BANKGIRO = "5050-1055"
FACTOR = Assignment(
    factor_name="Nordisk Factoring AB",
    account_id="5678-1234",
    account_scheme="SE:BANKGIRO",
    payment_reference="9988776655",
)


def make_line(
    line_id: str,
    description: str,
    quantity: str,
    unit_price: str,
    vat_rate: str = "25",
    unit_code: str = "C62",
) -> InvoiceLine:
    net = Decimal(quantity) * Decimal(unit_price)
    return InvoiceLine(
        line_id=line_id,
        description=description,
        quantity=Decimal(quantity),
        unit_code=unit_code,
        unit_price=Decimal(unit_price),
        net_amount=net,
        vat_category=VatCategory.STANDARD if Decimal(vat_rate) else VatCategory.ZERO,
        vat_rate=Decimal(vat_rate),
    )


def make_invoice(
    *,
    lines: tuple[InvoiceLine, ...] | None = None,
    document_type: DocumentType = DocumentType.INVOICE,
    seller_country: str = "SE",
    buyer_name: str = "Köpmannen i Göteborg AB",
    preceding_invoice: InvoiceReference | None = None,
    rounding: Decimal = Decimal(0),
) -> Invoice:
    """A valid canonical invoice whose VAT breakdown and totals add up from its lines."""
    if lines is None:
        lines = (
            make_line(
                "1", "Konsulttimmar, systemintegration mot Fortnox", "12", "950", "25", "HUR"
            ),
            make_line("2", "Kurslitteratur", "4", "289.50", "6"),
            make_line("3", "Frakt", "1", "149", "25"),
        )
    rates = sorted({line.vat_rate for line in lines}, reverse=True)
    breakdown = []
    for rate in rates:
        taxable = sum((ln.net_amount for ln in lines if ln.vat_rate == rate), Decimal(0))
        breakdown.append(
            VatBreakdown(
                category=VatCategory.STANDARD if rate else VatCategory.ZERO,
                rate=rate,
                taxable_amount=taxable,
                tax_amount=(taxable * rate / 100).quantize(Decimal("0.01")),
            )
        )
    net = sum((ln.net_amount for ln in lines), Decimal(0))
    vat = sum((b.tax_amount for b in breakdown), Decimal(0))
    return Invoice(
        invoice_id=f"inv_{uuid.uuid4().hex}",
        tenant_id=f"t-{uuid.uuid4().hex[:8]}",
        source=SourceRef(system=SourceSystem.FORTNOX, connection_id="c1", document_id="1042"),
        document_type=document_type,
        number="1042",
        issue_date=dt.date(2025, 3, 10),
        due_date=dt.date(2025, 4, 9),
        currency="SEK" if seller_country == "SE" else "NOK",
        seller=Party(
            name="Säljbolaget i Åre AB",
            company_id="556677-8899",
            vat_id="SE556677889901",
            email="faktura@saljbolaget.example",
            address=Address(
                lines=("Storgatan 1",),
                postal_code="837 52",
                city="Åre",
                country_code=seller_country,
            ),
        ),
        buyer=Party(
            name=buyer_name,
            company_id="556123-4567",
            customer_number="K-77",
            address=Address(
                lines=("Box 123", "Avd. Ekonomi"),
                postal_code="411 01",
                city="Göteborg",
                country_code="SE",
            ),
        ),
        lines=lines,
        vat_breakdown=tuple(breakdown),
        totals=Totals(
            line_extension=net,
            tax_exclusive=net,
            tax_total=vat,
            tax_inclusive=net + vat,
            rounding=rounding,
            payable=net + vat + rounding,
        ),
        payment=PaymentInstructions(
            payment_reference="10428",
            account_id=SELLER_BANKGIRO if seller_country == "SE" else "1234.56.78903",
            account_scheme="SE:BANKGIRO" if seller_country == "SE" else "NO:BBAN",
            terms="30 dagar netto",
        ),
        buyer_reference="Anna Andersson",
        order_reference="PO-5531",
        preceding_invoice=preceding_invoice,
    )


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(BytesIO(data)).pages]


def test_invoice_shows_every_fact_the_recipient_needs() -> None:
    invoice = make_invoice()

    data = render_pdf(invoice)

    assert data.startswith(b"%PDF-")
    (text,) = page_texts(data)
    for expected in (
        "FAKTURA",
        "Säljbolaget i Åre AB",
        "Storgatan 1",
        "837 52 Åre",
        "Org.nr 556677-8899",
        "Momsreg.nr SE556677889901",
        "faktura@saljbolaget.example",
        "Godkänd för F-skatt",
        "Köpmannen i Göteborg AB",
        "Box 123",
        "411 01 Göteborg",
        "1042",
        "2025-03-10",
        "2025-04-09",
        "Anna Andersson",
        "PO-5531",
        "K-77",
        "30 dagar netto",
        "Sida 1/1",
    ):
        assert expected in text, expected
    for line in invoice.lines:
        assert line.description in text
    # Lines: 12 h x 950 = 11 400; 4 x 289,50 = 1 158; VAT 25 % on 11 549, 6 % on 1 158.
    for expected in ("11 400,00", "289,50", "1 158,00", "11 549,00", "2 887,25", "69,48"):
        assert expected in text, expected
    # Totals: 12 707,00 net + 2 956,73 VAT = 15 663,73 due.
    assert "12 707,00 SEK" in text
    assert "2 956,73 SEK" in text
    assert "15 663,73 SEK" in text
    assert "OCR-nummer" in text
    assert "10428" in text
    assert "Bankgiro" in text
    assert SELLER_BANKGIRO in text


def test_rounding_is_shown_in_the_totals() -> None:
    invoice = make_invoice(rounding=Decimal("0.27"))

    (text,) = page_texts(render_pdf(invoice))

    assert "Öresavrundning" in text
    assert "0,27 SEK" in text
    assert "15 664,00 SEK" in text


def test_factored_invoice_tells_the_debtor_to_pay_the_factor() -> None:
    (text,) = page_texts(render_pdf(make_invoice(), assignment=FACTOR))

    assert "5678-1234" in text
    assert "9988776655" in text
    assert "Nordisk Factoring AB" in text
    assert "Fordran har överlåtits till Nordisk Factoring AB." in " ".join(text.split())
    assert SELLER_BANKGIRO not in text
    assert "10428" not in text


def test_the_factors_own_assignment_text_is_printed() -> None:
    assignment = Assignment(
        factor_name="Faktor AS",
        account_id="NO9386011117947",
        account_scheme="IBAN",
        text="Denne fakturaen er overdratt til {factor_name}.",
    )

    (text,) = page_texts(render_pdf(make_invoice(), assignment=assignment, language="nb"))

    assert "Denne fakturaen er overdratt til Faktor AS." in text
    assert "NO93 8601 1117 947" in text
    assert "IBAN" in text


def test_credit_note_names_the_credited_invoice() -> None:
    credit_note = make_invoice(
        document_type=DocumentType.CREDIT_NOTE,
        preceding_invoice=InvoiceReference(number="1017", issue_date=dt.date(2025, 2, 1)),
    )

    (text,) = page_texts(render_pdf(credit_note, assignment=FACTOR))

    assert "KREDITFAKTURA" in text
    assert "1017 (2025-02-01)" in text
    assert "Kreditbelopp" in text
    assert "15 663,73 SEK" in text
    assert "Nordisk Factoring AB" in text
    assert SELLER_BANKGIRO not in text


def test_vat_exemption_note_is_printed_in_full() -> None:
    invoice = make_invoice(lines=(make_line("1", "Konsulttjänst", "1", "1000", "0"),))
    reason = "Omvänd betalningsskyldighet enligt 1 kap. 2 § mervärdesskattelagen"
    breakdown = invoice.vat_breakdown[0].model_copy(
        update={"category": VatCategory.REVERSE_CHARGE, "exemption_reason": reason}
    )

    (text,) = page_texts(render_pdf(invoice.model_copy(update={"vat_breakdown": (breakdown,)})))

    assert f"0 % {reason}" in " ".join(text.split())


def test_document_allowances_and_the_note_are_shown() -> None:
    invoice = make_invoice()
    discount = AllowanceCharge(
        is_charge=False,
        amount=Decimal("500"),
        reason="Volymrabatt",
        vat_category=VatCategory.STANDARD,
        vat_rate=Decimal(25),
    )
    invoice = invoice.model_copy(
        update={"allowances_charges": (discount,), "note": "Tack för er beställning!"}
    )

    (text,) = page_texts(render_pdf(invoice))

    assert "Summa rader" in text
    assert "Volymrabatt -500,00 SEK" in text
    assert "Tack för er beställning!" in text


def test_many_lines_break_pages_with_the_header_repeated() -> None:
    lines = tuple(
        make_line(
            str(n), f"Artikel nummer {n:02d} med en lång beskrivning " * (1 + n % 3), "1", "10"
        )
        for n in range(1, 61)
    )

    texts = page_texts(render_pdf(make_invoice(lines=lines)))

    assert len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert f"Sida {number}/{len(texts)}" in text
        assert "Säljbolaget i Åre AB" in text
    for text in texts[:-1]:
        assert "Beskrivning" in text
        assert "Belopp (SEK)" in text
    joined = " ".join(" ".join(texts).split())
    for n in range(1, 61):
        assert f"Artikel nummer {n:02d} med en lång beskrivning" in joined
    assert "Att betala" in texts[-1]


def test_norwegian_letters_survive() -> None:
    lines = (make_line("1", "Ærlig søppeltømming på Øvre Årstad, blåbærsyltetøy", "2", "99.90"),)
    invoice = make_invoice(lines=lines, seller_country="NO", buyer_name="Bjørnæs Ørsta ÆØÅ AS")

    (text,) = page_texts(render_pdf(invoice, language="nb"))

    assert "Ærlig søppeltømming på Øvre Årstad, blåbærsyltetøy" in text
    assert "Bjørnæs Ørsta ÆØÅ AS" in text
    assert "Å betale" in text
    assert "KID-nummer" in text
    assert "Kontonummer" in text
    assert "1234.56.78903" in text
    assert "Side 1/1" in text
    assert "10.03.2025" in text


def test_english_invoice() -> None:
    (text,) = page_texts(render_pdf(make_invoice(), language="en"))

    assert "INVOICE" in text
    assert "Amount due" in text
    assert "15,663.73 SEK" in text
    assert "Page 1/1" in text


def test_text_outside_the_font_is_replaced_not_fatal() -> None:
    # cp1252 draws the en dash, euro, ellipsis and curly quotes; beyond it accents drop or "?".
    typographic = "Pris \u2013 5 \u20ac per styck \u2026 \u201ckvalitet\u201d"
    lines = (make_line("1", f"{typographic} \u2265 \u015d \U0001f600", "1", "5"),)

    (text,) = page_texts(render_pdf(make_invoice(lines=lines)))

    assert f"{typographic} ? s ?" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Konsulttimmar, 12 st à 950,00", "Konsulttimmar, 12 st à 950,00"),
        ("Pris \u2013 5 \u20ac \u201cok\u201d", "Pris \u2013 5 \u20ac \u201cok\u201d"),
        ("", ""),
        ("rad ett\nrad två\tflik", "rad ett rad två flik"),
        ("av\u00adstava\x00\x1b\u200b", "avstava"),
        ("1\u00a0000", "1\u00a0000"),
        ("\u015d \u2265 \U0001f600", "s ? ?"),
    ],
)
def test_safe_text_keeps_what_the_core_fonts_draw(text: str, expected: str) -> None:
    assert safe_text(text) == expected


def test_attachments_are_embedded_and_listed() -> None:
    attachments = [("tidrapport.pdf", b"%PDF-1.4 fake"), ("underlag.csv", b"a;b\n1;2\n")]

    data = render_pdf(make_invoice(), attachments=attachments)

    reader = PdfReader(BytesIO(data))
    assert reader.attachments == {
        "tidrapport.pdf": [b"%PDF-1.4 fake"],
        "underlag.csv": [b"a;b\n1;2\n"],
    }
    last = reader.pages[-1].extract_text()
    assert "Bilagor" in last
    assert "tidrapport.pdf" in last
    assert "underlag.csv" in last


def test_attachments_with_the_same_name_are_all_kept() -> None:
    data = render_pdf(make_invoice(), attachments=[("a/bild.png", b"1"), ("b\\bild.png", b"2")])

    assert PdfReader(BytesIO(data)).attachments == {"bild.png": [b"1"], "bild (2).png": [b"2"]}


def test_empty_attachment_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        render_pdf(make_invoice(), attachments=[("tom.txt", b"")])


def test_same_invoice_gives_the_same_bytes() -> None:
    invoice = make_invoice()

    assert render_pdf(invoice, assignment=FACTOR) == render_pdf(invoice, assignment=FACTOR)


ONE_LINE = "Konsulttimmar, systemintegration mot Fortnox"


@pytest.mark.parametrize("new_x", [XPos.RIGHT, XPos.LEFT, XPos.LMARGIN])
@pytest.mark.parametrize("y", [100.0, 264.0], ids=["mid-page", "at the page break"])
@pytest.mark.parametrize(
    ("too_narrow", "lines"),
    [(-5.0, 1), (0.0, 1), (1e-6, 2), (0.01, 2), (12.0, 2)],
    ids=["wide", "at the limit", "1e-6 mm over", "0.01 mm over", "a word over"],
)
def test_a_text_is_set_as_fpdf2s_multi_cell_sets_it(
    too_narrow: float, lines: int, y: float, new_x: XPos
) -> None:
    # The one-line fast path (a cell, no line breaking) must count, place and draw exactly what
    # fpdf2's multi_cell does, also where the text is at the width limit or just over it.
    invoice = make_invoice()
    drawn = []
    for fast in (True, False):
        document = _InvoiceDocument(invoice, "sv", None)
        document.add_page()
        document._font(9)
        width = document.get_string_width(ONE_LINE) + 2 * document.c_margin - too_narrow
        fpdf2_lines = document.multi_cell(
            width, 4.6, ONE_LINE, dry_run=True, output=MethodReturnValue.LINES
        )
        assert isinstance(fpdf2_lines, list)
        assert len(fpdf2_lines) == lines
        assert document._count_lines(ONE_LINE, width, 4.6) == lines
        assert document._one_line(ONE_LINE, width) == (lines == 1)
        document.set_xy(40, y)
        if fast:
            document._multi_cell(width, 4.6, ONE_LINE, new_x=new_x)
        else:
            document.multi_cell(width, 4.6, ONE_LINE, align="L", new_x=new_x)
        assert document.page_no() == (2 if y > 260 else 1)
        drawn.append((document.get_x(), document.get_y(), bytes(document.output())))
    assert drawn[0] == drawn[1]


class _Fpdf2Cells(_InvoiceDocument):
    """The invoice drawn with fpdf2's own ``cell`` and ``set_font`` everywhere: what the
    direct ones must equal."""

    cell = FPDF.cell

    def _font(self, size: float, style: str = "", color: DeviceRGB = _INK) -> None:
        self.set_font("helvetica", style, size)
        if self.text_color != color:
            self.set_text_color(color)

    def _multi_cell(self, width: float, height: float, text: str, **moves: Any) -> None:
        # One line as fpdf2's cell draws it (the document's own writes it directly).
        moves = {"new_y": YPos.NEXT, **moves}
        if self._one_line(text, width):
            FPDF.cell(self, width, height, text, align="L", **moves)
        else:
            self.multi_cell(width, height, text, align="L", **moves)


def _awkward_lines() -> tuple[InvoiceLine, ...]:
    """Lines with what a content stream escapes or a cell may mishandle: parentheses, a
    backslash, text outside the font, long descriptions, articles and allowances, and enough of
    them to break pages with the table's header repeated."""
    texts = (
        "Konsult (senior) \\ timmar",
        "Pris \u2013 5 \u20ac per styck \u2026 \u201ckvalitet\u201d \u2265 \U0001f600",
        "Ærlig søppeltømming på Øvre Årstad, blåbærsyltetøy",
        "Artikel med en mycket lång beskrivning som inte får plats på en rad i tabellen " * 2,
        ")(",
    )
    lines = []
    for n in range(1, 41):
        line = make_line(str(n), texts[n % len(texts)], str(n % 7 + 1), f"{n * 13.5:.2f}")
        if n % 4 == 0:
            line = line.model_copy(
                update={"article_number": f"A-{n}", "allowance_amount": Decimal("1.50")}
            )
        lines.append(line)
    return tuple(lines)


def _documents() -> list[tuple[str, Invoice, dict[str, object]]]:
    note = "Tack för er beställning!\nBetala (gärna) i tid \\ OCR krävs."
    return [
        ("plain", make_invoice(), {}),
        ("factored, English", make_invoice(), {"assignment": FACTOR, "language": "en"}),
        ("rounding, Norwegian", make_invoice(seller_country="NO", rounding=Decimal("0.27")), {}),
        (
            "credit note",
            make_invoice(
                document_type=DocumentType.CREDIT_NOTE,
                preceding_invoice=InvoiceReference(number="1041", issue_date=dt.date(2025, 3, 1)),
            ),
            {"assignment": FACTOR},
        ),
        (
            "pages of awkward lines",
            make_invoice(lines=_awkward_lines()).model_copy(update={"note": note}),
            {},
        ),
        (
            "attachments and enclosures",
            make_invoice(buyer_name="Bolaget (i likvidation) AB"),
            {
                "attachments": [("tid(rapport).pdf", b"%PDF-1.4 fake"), ("a.csv", b"a;b")],
                "enclosures": [
                    Enclosure("bilaga.pdf", 1234, pages=2),
                    Enclosure("kalkyl.xlsx", 99_000, not_printed="file_type"),
                ],
            },
        ),
    ]


@pytest.mark.parametrize(
    ("name", "invoice", "options"), _documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_direct_cell_draws_what_fpdf2s_cell_draws(
    name: str, invoice: Invoice, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # _InvoiceDocument.cell writes one plain line of text itself (change 13 in
    # docs/performance.md): the whole PDF must be the same bytes as with fpdf2's own cell.
    left_to_fpdf2: list[str] = []
    fpdf2_cell = FPDF.cell

    def counted(document: FPDF, w: float, h: float, text: str, *args: Any, **kw: Any) -> bool:
        left_to_fpdf2.append(text)
        return fpdf2_cell(document, w, h, text, *args, **kw)

    with monkeypatch.context() as patched:
        patched.setattr(FPDF, "cell", counted)
        direct = render_pdf(invoice, **options)
    monkeypatch.setattr("nordflow_documents.pdf._InvoiceDocument", _Fpdf2Cells)
    by_fpdf2 = render_pdf(invoice, **options)

    assert direct == by_fpdf2
    # Only the page numbers (the page count is filled in at the end) were fpdf2's to draw.
    assert left_to_fpdf2
    assert all("/{nb}" in text for text in left_to_fpdf2)
    assert len(PdfReader(BytesIO(direct)).pages) >= (3 if "pages" in name else 1)


def test_a_cell_fpdf2_must_draw_is_left_to_it() -> None:
    # What the direct cell does not write (a fill, a border, a centred or empty text, the page
    # count) is fpdf2's, with the same result.
    drawn = []
    for cls in (_InvoiceDocument, _Fpdf2Cells):
        document = cls(make_invoice(), "sv", None)
        document.add_page()
        document._font(9)
        document.set_xy(20, 40)
        document.cell(50, 5, "fylld", fill=True, new_x=XPos.LMARGIN)
        document.cell(50, 5, "ram", border=1, align="C")
        document.cell(50, 5, "", new_x=XPos.LEFT)
        document.cell(30, 5, "Sida 1/{nb}", align="R")
        drawn.append((document.get_x(), document.get_y(), bytes(document.output())))
    assert drawn[0] == drawn[1]


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        ("12298", "sv", "12 298,00"),
        ("1234567.891", "sv", "1 234 567,89"),
        ("0.005", "sv", "0,01"),
        ("-1500.5", "nb", "-1 500,50"),
        ("999", "sv", "999,00"),
        ("12298", "en", "12,298.00"),
    ],
)
def test_format_amount(value: str, language: Language, expected: str) -> None:
    assert format_amount(Decimal(value), language) == expected


@pytest.mark.parametrize(
    ("value", "min_decimals", "expected"),
    [
        ("2", 0, "2"),
        ("1.500", 0, "1,5"),
        ("100", 0, "100"),
        ("289.5", 2, "289,50"),
        ("0.125", 2, "0,125"),
        ("1000", 2, "1 000,00"),
    ],
)
def test_format_quantity(value: str, min_decimals: int, expected: str) -> None:
    assert format_quantity(Decimal(value), min_decimals=min_decimals) == expected


@pytest.mark.parametrize(
    ("account", "scheme", "expected"),
    [
        ("50501055", "SE:BANKGIRO", "5050-1055"),
        ("1234567", "SE:BANKGIRO", "123-4567"),
        ("4455667", "SE:PLUSGIRO", "445566-7"),
        ("se4550000000058398257466", "IBAN", "SE45 5000 0000 0583 9825 7466"),
        ("1234.56.78903", "NO:BBAN", "1234.56.78903"),
    ],
)
def test_format_account(account: str, scheme: str, expected: str) -> None:
    assert format_account(account, scheme) == expected
