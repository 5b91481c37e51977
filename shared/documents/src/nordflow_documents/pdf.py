"""The invoice as a recipient reads it: an A4 PDF of a canonical invoice or credit note."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from fpdf import FPDF
from fpdf.drawing_primitives import DeviceCMYK, DeviceGray, DeviceRGB
from fpdf.enums import Align, MethodReturnValue, TextMode, XPos, YPos
from fpdf.fonts import CoreFont, TTFFont
from fpdf.util import escape_parens
from nordflow_schemas.invoice import (
    DocumentType,
    Invoice,
    InvoiceLine,
    Party,
    VatBreakdown,
    VatCategory,
)
from nordflow_schemas.money import money

Language = Literal["sv", "en", "nb"]
# Why an attachment of a letter was not printed (the invoice names the reason to the reader).
NotPrinted = Literal["file_type", "encrypted", "damaged", "too_many_pages"]
# The Creator in every PDF's metadata: older than this package, kept so that the same invoice
# still renders the same bytes.
CREATOR: Final = "Nordflow distribution-router"


@dataclass(frozen=True, slots=True)
class Assignment:
    """Notice that the invoice was assigned to a factor: the debtor must pay the factor instead.

    ``text`` is the factor's own wording; None prints the standard notice in the invoice's
    language. ``{factor_name}`` in it is replaced by the factor's name.
    """

    factor_name: str
    account_id: str
    account_scheme: str
    payment_reference: str | None = None
    text: str | None = None

    def notice(self, language: Language) -> str:
        """The assignment text as printed on the invoice."""
        template = self.text if self.text is not None else _LABELS[language].assignment
        return template.replace("{factor_name}", self.factor_name)


@dataclass(frozen=True, slots=True)
class Enclosure:
    """An attachment of a printed letter, listed on the invoice so the reader knows what came.

    ``pages``: how many pages it takes after the invoice; ``not_printed``: why it is not in
    the envelope (a spreadsheet cannot be printed; a password-protected or damaged PDF).
    """

    filename: str
    size: int
    pages: int = 0
    not_printed: NotPrinted | None = None


@dataclass(frozen=True, slots=True)
class _Labels:
    """Every fixed text on the invoice, in one language."""

    invoice: str
    credit_note: str
    number: str
    issue_date: str
    due_date: str
    credited_invoice: str
    customer_number: str
    buyer_reference: str
    order_reference: str
    terms: str
    buyer: str
    org_no: str
    vat_id: str
    email: str
    f_tax: str
    description: str
    quantity: str
    unit: str
    unit_price: str
    vat_rate: str
    amount: str
    line_allowance: str
    vat_rate_col: str
    taxable: str
    vat: str
    line_total: str
    allowance: str
    charge: str
    net: str
    rounding: str
    prepaid: str
    amount_due: str
    credit_amount: str
    payment_box: str
    credit_box: str
    payee: str
    reference: str
    ocr: str
    kid: str
    account: str
    bank_account: str
    factor: str
    credit_settlement: str
    assignment: str
    attachments: str
    enclosures: str
    enclosure_printed: str
    enclosure_not_printed: str
    enclosure_request: str
    not_printed: dict[NotPrinted, str]
    page: str
    vat_categories: dict[VatCategory, str]
    units: dict[str, str]
    countries: dict[str, str]


# UN/ECE Recommendation 20 unit codes: those meaning one piece, and those whose symbol is the
# same in every language.
_PIECE_CODES = ("C62", "H87", "EA")
_UNIT_SYMBOLS = {"KGM": "kg", "MTR": "m", "KMT": "km", "MTK": "m²", "MTQ": "m³", "LTR": "l"}


def _units(piece: str, words: dict[str, str]) -> dict[str, str]:
    """One language's unit names: its word for a piece, its other words, the shared symbols."""
    return {**dict.fromkeys(_PIECE_CODES, piece), **words, **_UNIT_SYMBOLS}


_LABELS: dict[Language, _Labels] = {
    "sv": _Labels(
        invoice="FAKTURA",
        credit_note="KREDITFAKTURA",
        number="Fakturanummer",
        issue_date="Fakturadatum",
        due_date="Förfallodatum",
        credited_invoice="Krediterar faktura",
        customer_number="Kundnummer",
        buyer_reference="Er referens",
        order_reference="Ert ordernummer",
        terms="Betalningsvillkor",
        buyer="Kund",
        org_no="Org.nr",
        vat_id="Momsreg.nr",
        email="E-post",
        f_tax="Godkänd för F-skatt",
        description="Beskrivning",
        quantity="Antal",
        unit="Enhet",
        unit_price="À-pris",
        vat_rate="Moms %",
        amount="Belopp",
        line_allowance="Rabatt",
        vat_rate_col="Momssats",
        taxable="Underlag",
        vat="Moms",
        line_total="Summa rader",
        allowance="Rabatt",
        charge="Avgift",
        net="Summa exkl. moms",
        rounding="Öresavrundning",
        prepaid="Förskottsbetalt",
        amount_due="Att betala",
        credit_amount="Kreditbelopp",
        payment_box="Betalningsinformation",
        credit_box="Kreditering",
        payee="Betalningsmottagare",
        reference="Referens",
        ocr="OCR-nummer",
        kid="KID-nummer",
        account="Konto",
        bank_account="Bankkonto",
        factor="Fordringsägare",
        credit_settlement="Kreditbeloppet avräknas mot faktura {number}.",
        assignment=(
            "Fordran har överlåtits till {factor_name}. "
            "Betalning med befriande verkan kan endast ske till {factor_name}."
        ),
        attachments="Bilagor (bifogade i denna PDF)",
        enclosures="Bilagor",
        enclosure_printed="utskriven efter fakturan, {pages} s.",
        enclosure_not_printed="ej utskriven: {reason}",
        enclosure_request="Bilagor som inte skrivits ut kan fås från avsändaren.",
        not_printed={
            "file_type": "filtypen kan inte skrivas ut",
            "encrypted": "lösenordsskyddad PDF",
            "damaged": "filen kan inte läsas",
            "too_many_pages": "för många sidor för ett brev",
        },
        page="Sida",
        vat_categories={
            VatCategory.ZERO: "Nollskattesats",
            VatCategory.EXEMPT: "Undantagen från moms",
            VatCategory.REVERSE_CHARGE: "Omvänd betalningsskyldighet",
            VatCategory.INTRA_COMMUNITY: "Unionsintern försäljning",
            VatCategory.EXPORT: "Export",
            VatCategory.NOT_SUBJECT: "Ej momspliktig",
        },
        units=_units(
            "st",
            {
                "HUR": "tim",
                "DAY": "dag",
                "WEE": "v",
                "MON": "mån",
                "ANN": "år",
                "SET": "set",
                "XPK": "fp",
            },
        ),
        countries={
            "SE": "Sverige",
            "NO": "Norge",
            "DK": "Danmark",
            "FI": "Finland",
            "IS": "Island",
            "DE": "Tyskland",
            "GB": "Storbritannien",
        },
    ),
    "en": _Labels(
        invoice="INVOICE",
        credit_note="CREDIT NOTE",
        number="Invoice number",
        issue_date="Invoice date",
        due_date="Due date",
        credited_invoice="Credits invoice",
        customer_number="Customer number",
        buyer_reference="Your reference",
        order_reference="Your order number",
        terms="Payment terms",
        buyer="Customer",
        org_no="Reg. no.",
        vat_id="VAT no.",
        email="E-mail",
        f_tax="Approved for F-tax",
        description="Description",
        quantity="Qty",
        unit="Unit",
        unit_price="Unit price",
        vat_rate="VAT %",
        amount="Amount",
        line_allowance="Discount",
        vat_rate_col="VAT rate",
        taxable="Taxable amount",
        vat="VAT",
        line_total="Sum of lines",
        allowance="Discount",
        charge="Charge",
        net="Total excl. VAT",
        rounding="Rounding",
        prepaid="Prepaid",
        amount_due="Amount due",
        credit_amount="Credit amount",
        payment_box="Payment information",
        credit_box="Credit",
        payee="Payee",
        reference="Reference",
        ocr="Payment reference (OCR)",
        kid="Payment reference (KID)",
        account="Account",
        bank_account="Bank account",
        factor="Creditor",
        credit_settlement="The credit amount is set off against invoice {number}.",
        assignment=(
            "This invoice has been assigned to {factor_name}. "
            "Payment with discharging effect can only be made to {factor_name}."
        ),
        attachments="Attachments (embedded in this PDF)",
        enclosures="Attachments",
        enclosure_printed="printed after the invoice, {pages} p.",
        enclosure_not_printed="not printed: {reason}",
        enclosure_request="Attachments that are not printed can be requested from the sender.",
        not_printed={
            "file_type": "this file type cannot be printed",
            "encrypted": "password-protected PDF",
            "damaged": "the file cannot be read",
            "too_many_pages": "too many pages for one letter",
        },
        page="Page",
        vat_categories={
            VatCategory.ZERO: "Zero rated",
            VatCategory.EXEMPT: "Exempt from VAT",
            VatCategory.REVERSE_CHARGE: "Reverse charge",
            VatCategory.INTRA_COMMUNITY: "Intra-community supply",
            VatCategory.EXPORT: "Export",
            VatCategory.NOT_SUBJECT: "Not subject to VAT",
        },
        units=_units(
            "pcs",
            {
                "HUR": "h",
                "DAY": "days",
                "WEE": "wk",
                "MON": "mo",
                "ANN": "yr",
                "SET": "set",
                "XPK": "pk",
            },
        ),
        countries={
            "SE": "Sweden",
            "NO": "Norway",
            "DK": "Denmark",
            "FI": "Finland",
            "IS": "Iceland",
            "DE": "Germany",
            "GB": "United Kingdom",
        },
    ),
    "nb": _Labels(
        invoice="FAKTURA",
        credit_note="KREDITNOTA",
        number="Fakturanummer",
        issue_date="Fakturadato",
        due_date="Forfallsdato",
        credited_invoice="Krediterer faktura",
        customer_number="Kundenummer",
        buyer_reference="Deres referanse",
        order_reference="Deres ordrenummer",
        terms="Betalingsbetingelser",
        buyer="Kunde",
        org_no="Org.nr.",
        vat_id="MVA-nr.",
        email="E-post",
        f_tax="Godkänd för F-skatt",
        description="Beskrivelse",
        quantity="Antall",
        unit="Enhet",
        unit_price="Pris",
        vat_rate="MVA %",
        amount="Beløp",
        line_allowance="Rabatt",
        vat_rate_col="MVA-sats",
        taxable="Grunnlag",
        vat="MVA",
        line_total="Sum linjer",
        allowance="Rabatt",
        charge="Gebyr",
        net="Sum eks. MVA",
        rounding="Øreavrunding",
        prepaid="Forskuddsbetalt",
        amount_due="Å betale",
        credit_amount="Kreditbeløp",
        payment_box="Betalingsinformasjon",
        credit_box="Kreditering",
        payee="Betalingsmottaker",
        reference="Referanse",
        ocr="OCR-nummer",
        kid="KID-nummer",
        account="Konto",
        bank_account="Kontonummer",
        factor="Fordringshaver",
        credit_settlement="Kreditbeløpet motregnes mot faktura {number}.",
        assignment=(
            "Fordringen er overdratt til {factor_name}. "
            "Betaling med frigjørende virkning kan kun skje til {factor_name}."
        ),
        attachments="Vedlegg (innebygd i denne PDF-en)",
        enclosures="Vedlegg",
        enclosure_printed="skrevet ut etter fakturaen, {pages} s.",
        enclosure_not_printed="ikke skrevet ut: {reason}",
        enclosure_request="Vedlegg som ikke er skrevet ut, kan fås fra avsenderen.",
        not_printed={
            "file_type": "filtypen kan ikke skrives ut",
            "encrypted": "passordbeskyttet PDF",
            "damaged": "filen kan ikke leses",
            "too_many_pages": "for mange sider for ett brev",
        },
        page="Side",
        vat_categories={
            VatCategory.ZERO: "Nullsats",
            VatCategory.EXEMPT: "Unntatt fra MVA",
            VatCategory.REVERSE_CHARGE: "Omvendt avgiftsplikt",
            VatCategory.INTRA_COMMUNITY: "Salg innen EU",
            VatCategory.EXPORT: "Eksport",
            VatCategory.NOT_SUBJECT: "Utenfor MVA-loven",
        },
        units=_units(
            "stk",
            {
                "HUR": "t",
                "DAY": "dag",
                "WEE": "uke",
                "MON": "mnd",
                "ANN": "år",
                "SET": "sett",
                "XPK": "pk",
            },
        ),
        countries={
            "SE": "Sverige",
            "NO": "Norge",
            "DK": "Danmark",
            "FI": "Finland",
            "IS": "Island",
            "DE": "Tyskland",
            "GB": "Storbritannia",
        },
    ),
}

_ACCOUNT_SCHEMES = {"SE:BANKGIRO": "Bankgiro", "SE:PLUSGIRO": "Plusgiro", "IBAN": "IBAN"}


def format_amount(value: Decimal, language: Language = "sv") -> str:
    """Money with two decimals and grouped thousands: ``12 298,00`` (sv, nb), ``12,298.00`` (en)."""
    return _format_decimal(money(value), language)


def format_quantity(value: Decimal, language: Language = "sv", *, min_decimals: int = 0) -> str:
    """A quantity or price with as many decimals as it has, at least ``min_decimals``."""
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    value = value.normalize()
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < min_decimals:
        value = value.quantize(Decimal(1).scaleb(-min_decimals))
    return _format_decimal(value, language)


def format_account(account_id: str, scheme: str | None) -> str:
    """An account number grouped as its scheme writes it: 5050-1055, 445566-7, IBAN in fours."""
    compact = "".join(account_id.split()).replace("-", "")
    kind = (scheme or "").upper()
    if kind == "SE:BANKGIRO" and compact.isdigit() and len(compact) in (7, 8):
        return f"{compact[:-4]}-{compact[-4:]}"
    if kind == "SE:PLUSGIRO" and compact.isdigit() and 2 <= len(compact) <= 8:
        return f"{compact[:-1]}-{compact[-1]}"
    if kind == "IBAN" and compact.isalnum():
        upper = compact.upper()
        return " ".join(upper[i : i + 4] for i in range(0, len(upper), 4))
    return account_id


def render_pdf(
    invoice: Invoice,
    *,
    assignment: Assignment | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
    enclosures: Sequence[Enclosure] = (),
    language: Language | None = None,
) -> bytes:
    """Render ``invoice`` as an A4 PDF; with ``assignment`` (or the invoice's own payee) the
    factor is paid, not the seller.

    ``attachments`` (file name, content) are embedded in the PDF and listed on its last page
    (the electronic channels). ``enclosures`` are the attachments of a printed letter, listed
    on the last page as printed after the invoice or not printed, with the reason.
    ``language`` defaults to the buyer's country: Swedish for SE, Norwegian for NO, else English.
    The output is deterministic: the same invoice gives the same bytes.
    """
    lang: Language = language or language_for(invoice)
    document = _InvoiceDocument(invoice, lang, assignment or assignment_of(invoice))
    document.render(_unique_names(attachments), enclosures)
    return bytes(document.output())


def assignment_of(invoice: Invoice) -> Assignment | None:
    """The notice an assigned invoice carries (its payee, paid to the payment account)."""
    payee, payment = invoice.payee, invoice.payment
    if payee is None or payment.account_id is None:
        return None
    return Assignment(
        factor_name=payee.name,
        account_id=payment.account_id,
        account_scheme=payment.account_scheme or "",
        payment_reference=payment.payment_reference,
        text=payee.assignment_text,
    )


def language_for(invoice: Invoice) -> Language:
    """The invoice's language: the buyer's country (SE Swedish, NO Norwegian), else English."""
    return _language_for(invoice.buyer.address.country_code)


def creation_time(invoice: Invoice) -> dt.datetime:
    """The creation date in the metadata of ``invoice``'s documents: its issue date, 00:00 UTC."""
    return dt.datetime.combine(invoice.issue_date, dt.time(), tzinfo=dt.UTC)


def safe_text(text: str) -> str:
    """One line of text as the PDF core fonts can draw it (see ``_safe``)."""
    return _safe(text)


def _language_for(country_code: str) -> Language:
    if country_code == "SE":
        return "sv"
    if country_code == "NO":
        return "nb"
    return "en"


def _format_decimal(value: Decimal, language: Language) -> str:
    whole, _, fraction = f"{abs(value):f}".partition(".")
    thousands, decimal_mark = (",", ".") if language == "en" else (" ", ",")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = thousands.join(groups) + (decimal_mark + fraction if fraction else "")
    return f"-{text}" if value < 0 else text


def _format_date(value: dt.date, language: Language) -> str:
    return value.strftime("%d.%m.%Y") if language == "nb" else value.isoformat()


def _safe(text: str, *, multiline: bool = False) -> str:
    """Text the PDF core fonts can draw (cp1252): other letters lose accents, the rest is ``?``."""
    if text.isprintable() and _encodable(text):
        # No control, format or separator character but the space, all in cp1252: the loop
        # below would keep every character (most texts; it is the slow part).
        return text
    out: list[str] = []
    for char in text:
        if char == "\n":
            out.append("\n" if multiline else " ")
        elif char == "\t":
            out.append(" ")
        elif unicodedata.category(char).startswith("C"):
            continue
        elif _encodable(char):
            out.append(char)
        else:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(base if base and _encodable(base) else "?")
    return "".join(out)


def _encodable(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _unique_names(attachments: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Attachments with a bare, unique file name each (a PDF names its embedded files)."""
    seen: set[str] = set()
    unique: list[tuple[str, bytes]] = []
    for index, (name, content) in enumerate(attachments, start=1):
        base = _bare_name(name) or f"attachment-{index}"
        if not content:
            raise ValueError(f"attachment {base!r} is empty")
        stem, dot, suffix = base.rpartition(".")
        if not dot:
            stem, suffix = base, ""
        candidate, counter = base, 1
        while candidate in seen:
            counter += 1
            candidate = f"{stem} ({counter}){dot}{suffix}"
        seen.add(candidate)
        unique.append((candidate, content))
    return unique


def _bare_name(path: str) -> str:
    """The file name without any folders a sender's path gave it (``C:\\in\\a.pdf`` → ``a.pdf``)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1].strip()


def _file_size(size: int) -> str:
    return f"{size} B" if size < 1024 else f"{-(-size // 1024)} kB"


# Layout, in millimetres on A4 (210 x 297).
_LEFT = 18.0
_RIGHT = 192.0
_WIDTH = _RIGHT - _LEFT
_FOOTER_TOP = 272.0
_LINE = 4.6
# Lines table: description, quantity, unit, unit price, VAT %, net amount.
_COLUMNS = (80.0, 16.0, 14.0, 24.0, 14.0, 26.0)
_UNIT_INDENT = 1.5  # keeps the left-aligned unit clear of the right-aligned quantity
_TOTALS_X = 116.0
_TOTALS_LABEL = 42.0


def _rgb(red: int, green: int, blue: int) -> DeviceRGB:
    """A colour as fpdf2 keeps it (what ``set_text_color(red, green, blue)`` converts to)."""
    return DeviceRGB(red / 255, green / 255, blue / 255)


# Converted once per process, not at every colour change.
_INK = _rgb(30, 30, 30)
_MUTED = _rgb(105, 105, 105)
_ACCENT = _rgb(22, 62, 110)
_RULE = _rgb(205, 210, 216)
_SHADE = _rgb(236, 240, 245)
_NOTICE = _rgb(255, 244, 214)
_WHITE = _rgb(255, 255, 255)


def _points(font: CoreFont | TTFFont, text: str, size_pt: float) -> float:
    """``font.get_text_width(text, size_pt, None)[1]``: a core font's width of ``text`` in
    points, its character widths summed in the same order (so to the same float), without a
    generator."""
    if isinstance(font, CoreFont):
        return sum(map(font.cw.__getitem__, text)) * size_pt * 0.001
    return font.get_text_width(text, size_pt, None)[1]


_COLOR_OPERATORS: dict[DeviceRGB | DeviceCMYK | DeviceGray, str] = {}


def _color_operator(color: DeviceRGB | DeviceCMYK | DeviceGray) -> str:
    """The operator that sets ``color`` for text, as fpdf2's ``cell`` writes it (the few
    colours of this module are converted once per process)."""
    operator = _COLOR_OPERATORS.get(color)
    if operator is None:
        operator = color.serialize().lower()
        if len(_COLOR_OPERATORS) < 64:
            _COLOR_OPERATORS[color] = operator
    return operator


class _InvoiceDocument(FPDF):
    """One invoice's PDF: a full heading on page 1, a short one after, the seller in the footer."""

    def __init__(self, invoice: Invoice, language: Language, assignment: Assignment | None):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.invoice = invoice
        self.language: Language = language
        self.labels = _LABELS[language]
        self.assignment = assignment
        self.currency = invoice.currency
        self.is_credit = invoice.document_type is DocumentType.CREDIT_NOTE
        self.title_text = self.labels.credit_note if self.is_credit else self.labels.invoice
        # cp1252 is latin-1 plus the typographic marks (euro, dashes, quotes) ERP texts often carry.
        self.core_fonts_encoding = "cp1252"
        self.set_margins(_LEFT, 15, 210 - _RIGHT)
        self.set_auto_page_break(auto=True, margin=297 - _FOOTER_TOP + 5)
        self.set_creation_date(creation_time(invoice))
        self.set_title(_safe(f"{self.title_text} {invoice.number}"))
        self.set_author(_safe(invoice.seller.name))
        self.set_creator(CREATOR)
        self.set_lang({"sv": "sv-SE", "en": "en", "nb": "nb-NO"}[language])
        self.alias_nb_pages()

    # Page furniture -------------------------------------------------------------------------

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self._font(9, "B")
        self.set_xy(_LEFT, 10)
        self.cell(_WIDTH / 2, 5, _safe(self.invoice.seller.name))
        self.set_xy(_LEFT + _WIDTH / 2, 10)
        self.cell(_WIDTH / 2, 5, _safe(f"{self.title_text} {self.invoice.number}"), align="R")
        self._rule(16.5)
        self.set_y(20)

    def footer(self) -> None:
        seller, labels = self.invoice.seller, self.labels
        self._rule(_FOOTER_TOP)
        column = _WIDTH / 3
        address = [seller.name, *_address_lines(seller, labels, with_country=True)]
        identity = _identity_lines(seller, labels)
        if seller.address.country_code == "SE":
            identity.append(labels.f_tax)
        contact = [f"{labels.email} {seller.email}" if seller.email else ""]
        for index, rows in enumerate((address, identity, contact)):
            self.set_xy(_LEFT + index * column, _FOOTER_TOP + 2)
            for row_index, row in enumerate(r for r in rows if r):
                self._font(7.5, "B" if index == 0 and row_index == 0 else "", _MUTED)
                self.set_x(_LEFT + index * column)
                self._multi_cell(column - 2, 3.5, _safe(row), new_x=XPos.LMARGIN)
        self._font(7.5, "", _MUTED)
        self.set_xy(_RIGHT - 30, 297 - 12)
        self.cell(30, 3.5, f"{labels.page} {self.page_no()}/{{nb}}", align="R")

    # The document ---------------------------------------------------------------------------

    def render(
        self, attachments: Sequence[tuple[str, bytes]], enclosures: Sequence[Enclosure]
    ) -> None:
        self.add_page()
        self._heading()
        self._lines_table()
        self._summary()
        self._payment_box()
        self._attachments(attachments)
        self._enclosures(enclosures)

    def _heading(self) -> None:
        invoice, labels = self.invoice, self.labels
        # Seller, top left.
        self.set_xy(_LEFT, 15)
        self._font(15, "B", _ACCENT)
        self._multi_cell(96, 6.5, _safe(invoice.seller.name), new_x=XPos.LMARGIN)
        self._font(9)
        for row in _address_lines(invoice.seller, labels, with_country=False):
            self._multi_cell(96, _LINE, _safe(row), new_x=XPos.LMARGIN)
        if invoice.seller.email:
            self._multi_cell(96, _LINE, _safe(invoice.seller.email), new_x=XPos.LMARGIN)
        left_bottom = self.get_y()

        # Title, number and dates, top right.
        self.set_xy(118, 14)
        self._font(20, "B", _ACCENT)
        self.cell(_RIGHT - 118, 9, self.title_text, align="R")
        facts = [
            (labels.number, invoice.number),
            (labels.issue_date, self._date(invoice.issue_date)),
        ]
        if invoice.due_date is not None and not self.is_credit:
            facts.append((labels.due_date, self._date(invoice.due_date)))
        if invoice.preceding_invoice is not None:
            facts.append((labels.credited_invoice, self._preceding()))
        self.set_y(26)
        right_bottom = self._facts(facts, x=122, label_width=32, bold_values=True)

        # References, left; the buyer's address where a window envelope shows it, right.
        references = [
            (labels.customer_number, invoice.buyer.customer_number),
            (labels.buyer_reference, invoice.buyer_reference),
            (labels.order_reference, invoice.order_reference),
            (labels.terms, invoice.payment.terms),
        ]
        top = max(left_bottom, right_bottom, 44.0) + 6
        self.set_y(top)
        refs_bottom = self._facts(
            [(k, v) for k, v in references if v], x=_LEFT, label_width=34, value_width=56
        )
        buyer_bottom = self._buyer(x=118, y=top)
        self.set_y(max(refs_bottom, buyer_bottom) + 6)
        if invoice.note:
            self._font(9, "I")
            self._multi_cell(_WIDTH, _LINE, _safe(invoice.note, multiline=True), new_x=XPos.LMARGIN)
            self.ln(3)

    def _buyer(self, *, x: float, y: float) -> float:
        buyer, labels = self.invoice.buyer, self.labels
        width = _RIGHT - x
        self.set_xy(x, y)
        self._font(7.5, "B", _MUTED)
        self.cell(width, 4, labels.buyer.upper(), new_x=XPos.LEFT, new_y=YPos.NEXT)
        self._font(10.5, "B")
        self._multi_cell(width, 5.2, _safe(buyer.name), new_x=XPos.LEFT)
        self._font(10)
        foreign = buyer.address.country_code != self.invoice.seller.address.country_code
        for row in _address_lines(buyer, labels, with_country=foreign):
            self._multi_cell(width, 5, _safe(row), new_x=XPos.LEFT)
        self._font(8, "", _MUTED)
        identity = _identity_lines(buyer, labels)
        if identity:
            self.set_xy(x, self.get_y() + 1)
        for row in identity:
            self._multi_cell(width, 3.8, _safe(row), new_x=XPos.LEFT)
        return self.get_y()

    def _facts(
        self,
        facts: Sequence[tuple[str, str | None]],
        *,
        x: float,
        label_width: float,
        value_width: float | None = None,
        bold_values: bool = False,
    ) -> float:
        """Label/value rows from the current y at ``x``; returns the y below them."""
        width = value_width if value_width is not None else _RIGHT - x - label_width
        y = self.get_y()
        for label, value in facts:
            self.set_xy(x, y)
            self._font(8.5, "", _MUTED)
            self.cell(label_width, _LINE, _safe(label))
            self._font(9, "B" if bold_values else "")
            self.set_xy(x + label_width, y)
            self._multi_cell(width, _LINE, _safe(value or ""), new_x=XPos.LEFT)
            y = self.get_y() + 0.6
        return y

    # Lines ------------------------------------------------------------------------------------

    def _lines_table(self) -> None:
        self._table_header()
        for line in self.invoice.lines:
            self._line_row(line)

    def _table_header(self) -> None:
        labels = self.labels
        titles = (
            labels.description,
            labels.quantity,
            labels.unit,
            f"{labels.unit_price} ({self.currency})",
            labels.vat_rate,
            f"{labels.amount} ({self.currency})",
        )
        y = self.get_y()
        self.set_fill_color(_SHADE)
        self.rect(_LEFT, y, _WIDTH, 7, style="F")
        self._font(8, "B")
        x = _LEFT
        for index, (title, width) in enumerate(zip(titles, _COLUMNS, strict=True)):
            indent = _UNIT_INDENT if index == 2 else 0.0
            self.set_xy(x + indent, y + 1.2)
            self.cell(width - indent, _LINE, _safe(title), align="L" if index in (0, 2) else "R")
            x += width
        self.set_y(y + 8)

    def _line_row(self, line: InvoiceLine) -> None:
        labels, lang = self.labels, self.language
        description = line.description
        if line.article_number:
            description = f"{line.article_number} - {description}"
        if line.allowance_amount:
            description += f"\n{labels.line_allowance} {format_amount(line.allowance_amount, lang)}"
        description = _safe(description, multiline=True)
        self._font(9)
        height = self._count_lines(description, _COLUMNS[0], _LINE) * _LINE + 2.4
        if self._new_page_unless_fits(height):
            self._table_header()
            self._font(9)
        y = self.get_y()
        self.set_xy(_LEFT, y + 1.2)
        self._multi_cell(_COLUMNS[0], _LINE, description)
        cells = (
            (format_quantity(line.quantity, lang), "R"),
            (_safe(labels.units.get(line.unit_code, line.unit_code)), "L"),
            (format_quantity(line.unit_price, lang, min_decimals=2), "R"),
            (format_quantity(line.vat_rate, lang), "R"),
            (format_amount(line.net_amount, lang), "R"),
        )
        x = _LEFT + _COLUMNS[0]
        for (text, align), width in zip(cells, _COLUMNS[1:], strict=True):
            indent = _UNIT_INDENT if align == "L" else 0.0
            self.set_xy(x + indent, y + 1.2)
            self.cell(width - indent, _LINE, text, align=align)
            x += width
        self._rule(y + height)
        self.set_y(y + height + 0.4)

    # VAT summary and totals -----------------------------------------------------------------

    def _summary(self) -> None:
        invoice, labels, lang = self.invoice, self.labels, self.language
        totals = invoice.totals
        rows: list[tuple[str, Decimal, bool]] = []
        if invoice.allowances_charges:
            rows.append((labels.line_total, totals.line_extension, False))
            for change in invoice.allowances_charges:
                label = change.reason or (labels.charge if change.is_charge else labels.allowance)
                rows.append((label, change.amount if change.is_charge else -change.amount, False))
        rows += [
            (labels.net, totals.tax_exclusive, False),
            (labels.vat, totals.tax_total, False),
            (labels.rounding, totals.rounding, False),
        ]
        if totals.prepaid:
            rows.append((labels.prepaid, -totals.prepaid, False))
        rows.append(
            (labels.credit_amount if self.is_credit else labels.amount_due, totals.payable, True)
        )
        # VAT summary, left: a reverse-charge or exemption note wraps, it is never cut.
        columns = (36.0, 27.0, 23.0)
        self._font(8.5)
        vat_rows = [
            (label, self._count_lines(label, columns[0], 4.2))
            for label in (_safe(self._vat_label(item)) for item in invoice.vat_breakdown)
        ]
        vat_height = 8 + sum(1.3 + 4.2 * count for _, count in vat_rows)
        self._font(9)
        totals_height = sum(
            1.1 + 4.4 * self._count_lines(_safe(label), _TOTALS_LABEL, 4.4) for label, _, _ in rows
        )
        height = max(vat_height, totals_height + 5) + 8
        self._new_page_unless_fits(height)
        top = self.get_y() + 5

        self.set_xy(_LEFT, top)
        self._font(8, "B")
        self.set_fill_color(_SHADE)
        self.rect(_LEFT, top, sum(columns), 6.5, style="F")
        heads = (labels.vat_rate_col, f"{labels.taxable} ({self.currency})", labels.vat)
        x = _LEFT
        for index, (head, width) in enumerate(zip(heads, columns, strict=True)):
            self.set_xy(x, top + 1)
            self.cell(width, _LINE, _safe(head), align="L" if index == 0 else "R")
            x += width
        y = top + 7.5
        self._font(8.5)
        for (label, count), item in zip(vat_rows, invoice.vat_breakdown, strict=True):
            self.set_xy(_LEFT, y)
            self._multi_cell(columns[0], 4.2, label)
            amounts = (
                format_amount(item.taxable_amount, lang),
                format_amount(item.tax_amount, lang),
            )
            x = _LEFT + columns[0]
            for text, width in zip(amounts, columns[1:], strict=True):
                self.set_xy(x, y)
                self.cell(width, 4.2, text, align="R")
                x += width
            y += 1.3 + 4.2 * count
        vat_bottom = y

        # Totals, right.
        x, label_width, value_width = _TOTALS_X, _TOTALS_LABEL, _RIGHT - _TOTALS_X - _TOTALS_LABEL
        y = top
        for label, amount, emphasised in rows:
            if emphasised:
                self._rule(y + 0.5, x_from=x)
                y += 1.8
            self._font(10.5 if emphasised else 9, "B" if emphasised else "")
            # The label first, so text extraction reads "label amount".
            self.set_xy(x, y + 0.55)
            self._multi_cell(label_width, 4.4, _safe(label))
            label_bottom = self.get_y()
            self.set_xy(x + label_width, y)
            self.cell(value_width, 5.5, f"{format_amount(amount, lang)} {self.currency}", align="R")
            y = max(y + 5.5, label_bottom + 1.1)
        self.set_y(max(vat_bottom, y) + 4)

    def _vat_label(self, item: VatBreakdown) -> str:
        rate = f"{format_quantity(item.rate, self.language)} %"
        if item.category is VatCategory.STANDARD:
            return rate
        reason = item.exemption_reason or self.labels.vat_categories.get(item.category, "")
        return f"{rate} {reason}".strip()

    # Payment ----------------------------------------------------------------------------------

    def _payment_box(self) -> None:
        invoice, labels, lang = self.invoice, self.labels, self.language
        assignment = self.assignment
        notice = assignment.notice(lang) if assignment else None
        amount_label = labels.credit_amount if self.is_credit else labels.amount_due
        amount = f"{format_amount(invoice.totals.payable, lang)} {self.currency}"
        left: list[tuple[str, str]] = []
        right: list[tuple[str, str]] = []
        text_rows: list[str] = []
        if self.is_credit:
            title = labels.credit_box
            if invoice.preceding_invoice is not None:
                left.append((labels.credited_invoice, self._preceding()))
                text_rows.append(
                    labels.credit_settlement.replace("{number}", invoice.preceding_invoice.number)
                )
            if assignment is not None:
                right.append((labels.factor, assignment.factor_name))
        else:
            title = labels.payment_box
            if invoice.due_date is not None:
                left.append((labels.due_date, self._date(invoice.due_date)))
            if assignment is not None:
                scheme: str | None = assignment.account_scheme
                account: str | None = assignment.account_id
                reference = assignment.payment_reference
                payee = assignment.factor_name
            else:
                scheme = invoice.payment.account_scheme
                account = invoice.payment.account_id
                reference = invoice.payment.payment_reference
                payee = invoice.seller.name
            if account:
                right.append((self._scheme_label(scheme, account), format_account(account, scheme)))
            if reference:
                right.append((self._reference_label(scheme), reference))
            else:
                right.append((labels.reference, invoice.number))
            right.append((labels.payee, payee))

        self._font(9)
        inner = _WIDTH - 8
        notice_lines = self._count_lines(_safe(notice), inner - 4, 4.6) if notice else 0
        body = max(13.0 + 5.2 * len(left), 5.2 * len(right)) + 2
        extra = sum(self._count_lines(_safe(t), inner, _LINE) for t in text_rows) * _LINE
        height = 9 + body + extra + (notice_lines * 4.6 + 6 if notice else 0) + 3
        self._new_page_unless_fits(height + 4)
        top = self.get_y() + 4
        self.set_draw_color(_ACCENT)
        self.set_line_width(0.4)
        self.rect(_LEFT, top, _WIDTH, height, round_corners=True, corner_radius=2)
        self.set_line_width(0.2)
        self.set_fill_color(_ACCENT)
        self.rect(_LEFT, top, _WIDTH, 7.5, style="F", round_corners=True, corner_radius=2)
        self.rect(_LEFT, top + 4, _WIDTH, 3.5, style="F")
        self.set_xy(_LEFT + 4, top + 1.5)
        self._font(9, "B", _WHITE)
        self.cell(inner, _LINE, _safe(title.upper()))

        # Amount (and due date), left; where to pay, right.
        self.set_xy(_LEFT + 4, top + 10)
        self._font(8.5, "", _MUTED)
        self.cell(70, _LINE, _safe(amount_label))
        self.set_xy(_LEFT + 4, top + 14.5)
        self._font(15, "B", _ACCENT)
        self.cell(70, 7, amount)
        self.set_y(top + 23)
        self._facts(left, x=_LEFT + 4, label_width=32, value_width=40, bold_values=True)
        self.set_y(top + 10)
        self._facts(right, x=100, label_width=38, value_width=_RIGHT - 104 - 38, bold_values=True)

        y = top + 9 + body
        self._font(9)
        for row in text_rows:
            self.set_xy(_LEFT + 4, y)
            self._multi_cell(inner, _LINE, _safe(row), new_x=XPos.LMARGIN)
            y = self.get_y()
        if notice:
            self.set_fill_color(_NOTICE)
            self.rect(_LEFT + 4, y + 1, inner, notice_lines * 4.6 + 4, style="F")
            self.set_xy(_LEFT + 6, y + 3)
            self._font(9, "B")
            self._multi_cell(inner - 4, 4.6, _safe(notice), new_x=XPos.LMARGIN)
        self.set_draw_color(_RULE)
        self.set_y(top + height + 4)

    def _scheme_label(self, scheme: str | None, account: str) -> str:
        if scheme is None:
            compact = account.replace(" ", "")
            is_iban = compact[:2].isalpha() and compact[2:4].isdigit()
            return "IBAN" if is_iban else self.labels.account
        known = _ACCOUNT_SCHEMES.get(scheme.upper())
        if known:
            return known
        if scheme.upper().startswith("NO:"):
            return self.labels.bank_account
        return f"{self.labels.account} ({scheme})"

    def _reference_label(self, scheme: str | None) -> str:
        norwegian = (scheme or "").upper().startswith("NO:") or (
            self.invoice.seller.address.country_code == "NO"
            and not (scheme or "").upper().startswith("SE:")
        )
        return self.labels.kid if norwegian else self.labels.ocr

    # Attachments ------------------------------------------------------------------------------

    def _attachments(self, attachments: Sequence[tuple[str, bytes]]) -> None:
        if not attachments:
            return
        for name, content in attachments:
            self.embed_file(
                bytes=content,
                basename=name,
                creation_date=self.creation_date,
                modification_date=self.creation_date,
                compress=True,
            )
        height = 7 + _LINE * len(attachments)
        self._new_page_unless_fits(height)
        rows = [_safe(f"- {name} ({_file_size(len(content))})") for name, content in attachments]
        self._file_list(self.labels.attachments, rows)

    def _enclosures(self, enclosures: Sequence[Enclosure]) -> None:
        """The letter's attachments: each printed after the invoice, or why it is not."""
        if not enclosures:
            return
        labels = self.labels
        rows: list[str] = []
        for item in enclosures:
            name = _bare_name(item.filename) or "-"
            if item.not_printed is None:
                status = labels.enclosure_printed.replace("{pages}", str(item.pages))
            else:
                reason = labels.not_printed[item.not_printed]
                status = labels.enclosure_not_printed.replace("{reason}", reason)
            rows.append(_safe(f"- {name} ({_file_size(item.size)}): {status}"))
        missing = any(item.not_printed is not None for item in enclosures)
        self._font(9)
        height = 7 + sum(self._count_lines(row, _WIDTH, _LINE) for row in rows) * _LINE
        height += _LINE + 1 if missing else 0
        self._new_page_unless_fits(height)
        self.ln(1)
        self._file_list(labels.enclosures, rows)
        if missing:
            self._font(8.5, "I", _MUTED)
            self._multi_cell(_WIDTH, _LINE, _safe(labels.enclosure_request), new_x=XPos.LMARGIN)

    def _file_list(self, title: str, rows: Sequence[str]) -> None:
        """A bold title, then one row per file; the caller has made room for them."""
        self._font(9, "B")
        self.cell(_WIDTH, 6, _safe(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self._font(9)
        for row in rows:
            self._multi_cell(_WIDTH, _LINE, row, new_x=XPos.LMARGIN)

    # Helpers ----------------------------------------------------------------------------------

    def _font(self, size: float, style: str = "", color: DeviceRGB = _INK) -> None:
        # Most calls change nothing; fpdf2's setters would still parse the style and colour.
        if self.font_size_pt != size or self.font_style != style or not self.font_family:
            font = self.fonts.get(f"helvetica{style}")
            if font is None or self.font_family != "helvetica":
                self.set_font("helvetica", style, size)  # a style's first use adds its font
            else:
                # What set_font does for a font the document has, without parsing its name.
                self.underline = self.strikethrough = False
                self.font_style, self.font_size_pt = style, size
                self.current_font = font
                self.current_font_is_set_on_page = False
        if self.text_color is not color and self.text_color != color:
            self.set_text_color(color)

    def _rule(self, y: float, *, x_from: float = _LEFT) -> None:
        self.set_draw_color(_RULE)
        self.set_line_width(0.2)
        self.line(x_from, y, _RIGHT, y)

    def _date(self, value: dt.date) -> str:
        return _format_date(value, self.language)

    def _preceding(self) -> str:
        preceding = self.invoice.preceding_invoice
        if preceding is None:
            return ""
        if preceding.issue_date is None:
            return preceding.number
        return f"{preceding.number} ({self._date(preceding.issue_date)})"

    def _new_page_unless_fits(self, height: float) -> bool:
        """A new page unless ``height`` more fits above the footer; True when one was started."""
        if self.get_y() + height <= self.page_break_trigger:
            return False
        self.add_page()
        return True

    def _multi_cell(
        self,
        width: float,
        height: float,
        text: str,
        *,
        new_x: XPos = XPos.RIGHT,
        new_y: YPos = YPos.NEXT,
    ) -> None:
        """``multi_cell(width, height, text, align="L", new_x=, new_y=)``, drawn as a ``cell``
        when the text is one line: the same text at the same place, and the same position
        after it, without fpdf2's line breaking (most of the PDF's CPU time)."""
        line = self._one_line_text(text, width)
        if line and self._plain_text_state():
            # A multi_cell of one line is a cell of its width and height, moved by new_x/new_y.
            self._text_line(width, height, line, new_x=new_x, new_y=new_y)
        elif line is not None:
            self.cell(width, height, text, align="L", new_x=new_x, new_y=new_y)
        else:
            self.multi_cell(width, height, text, align="L", new_x=new_x, new_y=new_y)

    def cell(
        self,
        w: float | None = None,
        h: float | None = None,
        text: str = "",
        border: Literal[0, 1] | str = 0,
        ln: Literal["DEPRECATED"] = "DEPRECATED",
        align: str | Align = Align.L,
        fill: bool = False,
        link: str | int | None = "",
        center: bool = False,
        markdown: bool = False,
        new_x: str | XPos = XPos.RIGHT,
        new_y: str | YPos = YPos.TOP,
    ) -> bool:
        """fpdf2's ``cell``, with the one this document draws most written directly.

        That is one line of text, left or right in a cell of a given width and height, in the
        page's core font, without border, fill, link or the page count: fpdf2's own ``cell``
        splits it into styled fragments and sets them as a line of a paragraph, which is most
        of the PDF's CPU time. Here the same operators are written at the same place, byte for
        byte (``tests/test_pdf.py`` renders whole invoices both ways and compares them), and
        the position moves as fpdf2's would. Any other cell is fpdf2's.
        """
        if not (
            w
            and h is not None
            and text
            and border == 0
            and ln == "DEPRECATED"
            and align in (Align.L, Align.R, "L", "R")
            and not (fill or link or center or markdown)
            and new_x in (XPos.RIGHT, XPos.LEFT, XPos.LMARGIN)
            and new_y in (YPos.TOP, YPos.NEXT)
            and self._plain_text_state()
            and self.str_alias_nb_pages not in text
        ):
            return super().cell(
                w, h, text, border, ln, align, fill, link, center, markdown, new_x, new_y
            )
        return self._text_line(
            w, h, self.normalize_text(text), right=align in (Align.R, "R"), new_x=new_x, new_y=new_y
        )

    def _text_line(
        self,
        w: float,
        h: float,
        text: str,
        *,
        right: bool = False,
        new_x: str | XPos = XPos.RIGHT,
        new_y: str | YPos = YPos.TOP,
    ) -> bool:
        """The direct ``cell``: ``text`` (normalized, one line, not empty) left or right in a
        cell of ``w`` by ``h``, in the page's plain core font (``_plain_text_state``)."""
        font = self.current_font
        assert font is not None  # _plain_text_state checked it
        broke = self._perform_page_break_if_need_be(h)
        k = self.k
        if right:
            points = _points(font, text, self.font_size_pt)
            dx = w - self.c_margin - points / k
        else:
            dx = self.c_margin
        baseline = self.h - self.y - 0.5 * h - 0.3 * self.font_size  # as fpdf2 computes it
        color, fill = self.text_color, self.fill_color
        colored = color is not fill and color != fill
        if not self.current_font_is_set_on_page:
            self._out(self._set_font_for_page(font, self.font_size_pt))
        place = f"BT {(self.x + dx) * k:.2f} {baseline * k:.2f} Td"
        shown = f"({escape_parens(text)}) Tj ET"
        if colored and color is not None:
            self._out(f"q {place} {_color_operator(color)} {shown} Q")
        elif colored:
            self._out(f"q {place} {shown} Q")
        else:
            self._out(f"{place} {shown}")
        self._lasth = h
        if new_x == XPos.RIGHT:
            self.x += w
        elif new_x == XPos.LMARGIN:
            self.x = self.l_margin
        if new_y == YPos.NEXT:
            self.y += h
        return broke

    def _plain_text_state(self) -> bool:
        """The page's text is drawn plainly: a core font, filled, no decoration or spacing."""
        font = self.current_font
        return (
            self.page > 0
            and isinstance(font, CoreFont)
            and not self.text_shaping
            and self.text_mode == TextMode.FILL
            and not (self.underline or self.strikethrough)
            and self.char_spacing == 0
            and self.font_stretching == 100
            and not self._record_text_quad_points
            and not self._fallback_font_ids
        )

    def _count_lines(self, text: str, width: float, height: float) -> int:
        """The lines ``text`` takes in a ``multi_cell`` of ``width`` in the current font."""
        if self._one_line(text, width):
            return 1
        lines = self.multi_cell(width, height, text, dry_run=True, output=MethodReturnValue.LINES)
        return len(lines) if isinstance(lines, list) else 1

    def _one_line(self, text: str, width: float) -> bool:
        """True when ``multi_cell`` would set ``text`` (as ``_safe`` gives it) on one line."""
        return self._one_line_text(text, width) is not None

    def _one_line_text(self, text: str, width: float) -> str | None:
        """``text`` normalized for the font when ``multi_cell`` would set it on one line;
        None when it would not.

        The text has no line break and its width in the current font fits between the cell's
        margins. fpdf2 breaks a line only when it is wider than that (by more than 1e-9), so a
        text that fits here never wraps there; one that does not, or that has the page count
        alias (drawn with another width), takes fpdf2's own line breaking.
        """
        font = self.current_font
        if font is None or "\n" in text or self.str_alias_nb_pages in text:
            return None
        # The width as fpdf2 measures a fragment of text: the core font's character widths
        # (in thousandths of the font size) in points, then in document units.
        normalized = self.normalize_text(text)
        points = _points(font, normalized, self.font_size_pt)
        return normalized if points / self.k <= width - self.c_margin - self.c_margin else None


def _address_lines(party: Party, labels: _Labels, *, with_country: bool) -> list[str]:
    address = party.address
    rows = [line for line in address.lines if line]
    place = " ".join(p for p in (address.postal_code, address.city) if p)
    if place:
        rows.append(place)
    if with_country:
        rows.append(labels.countries.get(address.country_code, address.country_code))
    return rows


def _identity_lines(party: Party, labels: _Labels) -> list[str]:
    """The party's org. no. and VAT id, those it has, each with its label."""
    rows = []
    if party.company_id:
        rows.append(f"{labels.org_no} {party.company_id}")
    if party.vat_id:
        rows.append(f"{labels.vat_id} {party.vat_id}")
    return rows
