"""Read an on-premise document into the builder: a JSON batch invoice or a SIE 4i voucher.

JSON invoices (services/erp-poller/INGESTION.md) are close to the canonical model: amounts
positive on credit notes too, net per line = quantity x unit price unless `net_amount` says
otherwise, VAT per (category, rate) on the summed nets, the source's totals checked. The
payment account is the document's (`payment.account_id`) when it states one.

A SIE voucher carries no invoice lines, only postings: each revenue row (BAS class 3) becomes
a line, the output VAT rows give the VAT (BAS 2610-2619 is 25 %, 2620-2629 12 %, 2630-2639
6 %; Norwegian NS 2700-2709 is derived from the ratio and must be 25, 15 or 12 %), the
receivable row (1500-1519) is the amount due, the rounding account (3740 öres- och
kronutjämning) the rounding, and the customer is the dimension-8 object (SIE's "kund"). What
cannot be derived, e.g. which rate a revenue row has when several are booked and its account
does not say, is a named issue, never a guess. The voucher's company must be the seller of
the tenant's profile.

SIE 4 has no customer addresses. When the connection's customer register knows the voucher's
customer, erp-poller puts the entry in `related["customer"]` and the buyer comes from it
(name, party type, organisation and VAT number, e-mail, GLN as PEPPOL electronic address
scheme 0088, postal address), so the invoice can be delivered; otherwise the buyer is the
object's name and number only, and can be sent only once the register knows it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.invoice import Party, VatCategory
from nordflow_schemas.money import CENT, money

from ..domain.builder import InvoiceBuilder, Mapped, net_price, never_raises, totals, vat_sums
from ..domain.reader import Reader, optional_text

CATEGORIES = {c.value: c for c in VatCategory}
SWEDISH_VAT_ACCOUNTS = (
    (range(2610, 2620), Decimal(25)),
    (range(2620, 2630), Decimal(12)),
    (range(2630, 2640), Decimal(6)),
)
NORWEGIAN_VAT_ACCOUNTS = range(2700, 2710)
NORWEGIAN_RATES = (Decimal(25), Decimal(15), Decimal(12))
RECEIVABLE = range(1500, 1520)
REVENUE = range(3000, 4000)
ROUNDING = range(3740, 3750)
# BAS sales accounts 30xx-34xx end in 1, 2, 3 for 25, 12, 6 % (3001, 3002, 3003 ...).
RATE_BY_LAST_DIGIT = {"1": Decimal(25), "2": Decimal(12), "3": Decimal(6)}
GLN_SCHEME = "0088"  # ISO 6523 ICD of GS1 Global Location Numbers


@never_raises("Invoice")
def map_on_premise(event: ErpDocumentFetched) -> Mapped:
    """The canonical invoice, or every problem found (never an exception)."""
    if "transactions" in event.payload:
        return _map_voucher(event)
    return _map_json(event)


# -------------------------------------------------------------------------------- JSON


def _json_lines(b: InvoiceBuilder, doc: dict[str, Any]) -> None:
    r = b.r
    rows = r.objects(doc, "lines", "Invoice.lines")
    if not rows and not r.has_issue("Invoice.lines"):
        r.fail("Invoice.lines", "BR-16", "an invoice needs at least one line")
    for i, row in rows:
        f = f"Invoice.lines[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = r.decimal(row, "quantity", f"{f}.quantity")
        price = r.decimal(row, "unit_price", f"{f}.unit_price")
        rate = r.vat_rate(row, "vat_rate", f"{f}.vat_rate")
        net = money(r.decimal(row, "net_amount", f"{f}.net_amount", default=quantity * price))
        code = str(row.get("vat_category") or ("S" if rate > 0 else "Z")).upper()
        category = CATEGORIES.get(code)
        if category is None:
            r.fail(f"{f}.vat_category", "NF-VAT-CATEGORY", f"unknown VAT category {code!r}")
            category = VatCategory.STANDARD
        if category is not VatCategory.STANDARD and rate != 0:
            r.fail(
                f"{f}.vat_rate",
                "NF-VAT-CATEGORY",
                f"VAT category {code} takes rate 0, not {rate} %",
            )
        b.add_line(
            f,
            description=description,
            article_number=optional_text(row.get("article_number")),
            quantity=quantity,
            unit_code=optional_text(row.get("unit_code")),
            unit_price=price,
            allowance=money(quantity * price - net),
            net=net,
            category=category,
            rate=rate,
            account=optional_text(row.get("account_number")),
        )


def _json_payable(
    r: Reader, doc: dict[str, Any], net: Decimal, vat: Decimal, rates: int
) -> Decimal:
    """The amount due: the document's stated totals checked against the lines'."""
    stated = r.mapping(doc, "totals", "Invoice.totals")
    if not stated:
        return net + vat
    if stated.get("net") not in (None, ""):
        value = r.decimal(stated, "net", "Invoice.totals.net")
        if value != net:
            r.fail(
                "Invoice.totals.net",
                "NF-TOTAL",
                f"Invoice.totals.net {value} differs from the sum of the lines {net}",
            )
    if stated.get("vat") not in (None, ""):
        value = r.decimal(stated, "vat", "Invoice.totals.vat")
        if abs(value - vat) > CENT * rates:
            r.fail(
                "Invoice.totals.vat",
                "NF-VAT-TOTAL",
                f"Invoice.totals.vat {value} differs from the VAT of the lines {vat}",
            )
    payable = r.decimal(stated, "payable", "Invoice.totals.payable")
    if abs(payable - (net + vat)) > 1:
        r.fail(
            "Invoice.totals.payable",
            "NF-TOTAL",
            f"Invoice.totals.payable {payable} is not net {net} + VAT {vat} "
            "(rounding is at most 1)",
        )
    return payable


def _map_json(event: ErpDocumentFetched) -> Mapped:
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload
    credit = event.kind.value == "credit_note"
    issue_date = r.date(doc, "issue_date", "Invoice.issue_date", required=True)
    due_date = r.date(doc, "due_date", "Invoice.due_date")
    currency = (r.text(doc, "currency", "Invoice.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Invoice.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    _json_lines(b, doc)
    vat = b.vat_breakdown()
    net_total, vat_total = vat_sums(vat)
    payable = _json_payable(r, doc, net_total, vat_total, len(vat))

    buyer = r.mapping(doc, "buyer", "Invoice.buyer")
    buyer_name = r.text(buyer, "name", "Invoice.buyer.name", required=True)
    buyer_address = b.address_of(
        r.mapping(buyer, "address", "Invoice.buyer.address"), "Invoice.buyer.address"
    )
    endpoint = r.mapping(buyer, "electronic_address", "Invoice.buyer.electronic_address")
    payment = r.mapping(doc, "payment", "Invoice.payment")
    preceding = r.mapping(doc, "preceding_invoice", "Invoice.preceding_invoice")
    preceding_number = r.text(preceding, "number", "Invoice.preceding_invoice.number")
    preceding_date = r.date(preceding, "issue_date", "Invoice.preceding_invoice.issue_date")
    if credit and preceding_number is None:
        r.fail(
            "Invoice.preceding_invoice.number",
            "NF-CREDIT-REF",
            "a credit note must name the invoice it credits",
        )
    party = b.buyer(
        buyer_name,
        private=str(buyer.get("party_type") or "").lower() == "private",
        company_id=buyer.get("company_id"),
        vat_id=buyer.get("vat_id"),
        electronic_address=b.endpoint(
            endpoint.get("scheme"), endpoint.get("value"), "Invoice.buyer.electronic_address"
        )
        if endpoint
        else None,
        address=buyer_address,
        email=buyer.get("email"),
        customer_number=buyer.get("customer_number"),
    )
    return b.build(
        credit=credit,
        number=event.source.document_number or event.source.document_id,
        issue_date=issue_date,
        due_date=due_date,
        currency=currency,
        buyer=party,
        vat=vat,
        totals=totals(net_total, vat_total, payable=payable),
        payment_reference=optional_text(payment.get("reference")),
        account_id=optional_text(payment.get("account_id")),
        account_scheme=optional_text(payment.get("account_scheme")),
        terms=optional_text(payment.get("terms")),
        buyer_reference=optional_text(doc.get("buyer_reference")),
        order_reference=optional_text(doc.get("order_reference")),
        note=optional_text(doc.get("note")),
        payment_method=optional_text(payment.get("method")),
        preceding=b.credited(
            preceding_number,
            document_id=optional_text(preceding.get("document_id")),
            issue_date=preceding_date,
        )
        if credit and preceding_number
        else None,
    )


# ----------------------------------------------------------------------------- SIE 4i


def _account(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 6 else None


def _swedish_rate(account: int) -> Decimal | None:
    return next((rate for accounts, rate in SWEDISH_VAT_ACCOUNTS if account in accounts), None)


def _digits(value: Any) -> str:
    return "".join(c for c in str(value or "") if c.isdigit())


@dataclass
class _Postings:
    """What a voucher's #TRANS rows say, in the canonical sign (positive on an invoice)."""

    rows: int = 0
    revenue: list[tuple[str, dict[str, Any], Decimal, int]] = field(default_factory=list)
    vat_booked: dict[Decimal, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    payable: Decimal = Decimal(0)
    rounding: Decimal = Decimal(0)
    customer: tuple[str, str | None] | None = None  # the dimension-8 object: number, name


def _postings(r: Reader, doc: dict[str, Any], sign: Decimal) -> _Postings:
    """Sort each row by its account; the Norwegian output VAT's rate from the revenue."""
    p = _Postings()
    norwegian_vat = Decimal(0)
    rows = r.objects(doc, "transactions", "voucher.transactions")
    p.rows = len(rows)
    if not rows and not r.has_issue("voucher.transactions"):
        r.fail("voucher.transactions", "NF-REQUIRED", "a voucher needs #TRANS rows")
    for i, row in rows:
        f = f"voucher.transactions[{i}]"
        account = _account(row.get("account"))
        amount = r.decimal(row, "amount", f"{f}.amount")
        for _, dimension in r.objects(row, "objects", f"{f}.objects"):
            number = optional_text(dimension.get("object"))
            if str(dimension.get("dimension")) == "8" and p.customer is None and number:
                p.customer = (number, optional_text(dimension.get("name")))
        if account is None:
            r.fail(f"{f}.account", "NF-SIE-ACCOUNT", f"{f}.account must be an account number")
        elif account in RECEIVABLE:
            p.payable -= amount * sign
        elif account in ROUNDING:
            p.rounding += amount * sign
        elif account in REVENUE:
            p.revenue.append((f, row, amount * sign, account))
        elif (rate := _swedish_rate(account)) is not None:
            p.vat_booked[rate] += amount * sign
        elif account in NORWEGIAN_VAT_ACCOUNTS:
            norwegian_vat += amount * sign
        else:
            r.fail(
                f"{f}.account",
                "NF-SIE-ACCOUNT",
                f"account {account} is not a receivable (1500-1519), revenue (3000-3999), "
                "output VAT (2610-2639, 2700-2709) or rounding (3740) account: "
                "the invoice cannot be derived",
            )
    if not p.revenue and rows:
        r.fail("voucher.transactions", "NF-SIE-REVENUE", "no revenue row (accounts 3000-3999)")
    net_revenue = sum((net for _, _, net, _ in p.revenue), Decimal(0))
    if norwegian_vat:
        if p.vat_booked:
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT",
                "Swedish (26xx) and Norwegian (27xx) output VAT in one voucher",
            )
        ratio = (norwegian_vat * 100 / net_revenue).quantize(Decimal(1)) if net_revenue else None
        if ratio in NORWEGIAN_RATES:
            p.vat_booked[Decimal(ratio)] += norwegian_vat
        else:
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT-RATE",
                f"output VAT {norwegian_vat} on 27xx is not 25, 15 or 12 % of the revenue "
                f"{net_revenue}: the rate cannot be derived",
            )
    return p


def _revenue_lines(b: InvoiceBuilder, doc: dict[str, Any], p: _Postings) -> None:
    """A line per revenue row, at the only rate booked or the one its BAS account says."""
    r = b.r
    rates = sorted(rate for rate, vat in p.vat_booked.items() if vat)
    for f, row, net, account in p.revenue:
        if not rates:
            rate = Decimal(0)
        elif len(rates) == 1:
            rate = rates[0]
        else:
            hinted = RATE_BY_LAST_DIGIT.get(str(account)[-1]) if account < 3500 else None
            if hinted is None or hinted not in rates:
                r.fail(
                    f"{f}.account",
                    "NF-SIE-VAT-RATE",
                    f"VAT is booked at {', '.join(map(str, rates))} % and account {account} "
                    "does not say which applies to this row",
                )
                continue
            rate = hinted
        quantity = abs(r.decimal(row, "quantity", f"{f}.quantity", default=Decimal(1))) or Decimal(
            1
        )
        b.add_line(
            f,
            description=optional_text(row.get("text"))
            or optional_text(row.get("account_name"))
            or optional_text(doc.get("text"))
            or f"Account {account}",
            quantity=quantity,
            unit_price=net_price(net, quantity),
            net=money(net),
            category=VatCategory.STANDARD if rate > 0 else VatCategory.ZERO,
            rate=rate,
            account=str(account),
        )


def _voucher_buyer(
    b: InvoiceBuilder, event: ErpDocumentFetched, customer: tuple[str, str | None] | None
) -> Party | None:
    """The buyer: the customer register's entry for the voucher's customer object when
    erp-poller found one (``related["customer"]``), else the object's name and number."""
    r = b.r
    card = r.mapping(event.related, "customer", "related.customer")
    if customer is None:
        r.fail(
            "voucher.transactions.objects",
            "NF-SIE-CUSTOMER",
            "no customer: put the dimension-8 (kund) object on the receivable row",
        )
    elif card:
        registered = optional_text(card.get("customer_number"))
        if registered is not None and registered != customer[0]:
            r.fail(
                "related.customer.customer_number",
                "NF-SIE-CUSTOMER",
                f"the registered customer {registered!r} is not the voucher's {customer[0]!r}",
            )
        r.text(card, "name", "related.customer.name", required=True)
    elif customer[1] is None:
        r.fail(
            "voucher.transactions.objects",
            "NF-SIE-CUSTOMER",
            f"customer object {customer[0]!r} has no name: declare it with #OBJEKT 8",
        )
    address = b.address_of(
        r.mapping(card, "address", "related.customer.address"), "related.customer.address"
    )
    if customer is None:
        return None
    if not card:
        return b.buyer(customer[1], address=address, customer_number=customer[0])
    gln = optional_text(card.get("gln"))
    return b.buyer(
        optional_text(card.get("name")),
        private=str(card.get("type") or "").lower() == "private",
        company_id=card.get("organisation_number"),
        vat_id=card.get("vat_number"),
        electronic_address=b.endpoint(GLN_SCHEME, gln, "related.customer.gln") if gln else None,
        address=address,
        email=card.get("email"),
        customer_number=customer[0],
    )


def _map_voucher(event: ErpDocumentFetched) -> Mapped:
    r = Reader()
    b = InvoiceBuilder(r, event)
    doc = event.payload
    credit = event.kind.value == "credit_note"
    # Invoices credit revenue (negative in SIE) and debit the receivable; credit notes the reverse.
    sign = Decimal(1) if credit else Decimal(-1)
    issue_date = r.date(doc, "date", "voucher.date", required=True)
    currency = (r.text(doc, "currency", "voucher.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("voucher.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    company = r.mapping(doc, "company", "voucher.company")
    company_number = _digits(company.get("organisation_number"))[-10:]
    seller_id = b.profile.seller.company_id if b.profile else None
    seller_number = _digits(seller_id)[-10:]
    if company_number and seller_number and company_number != seller_number:
        r.fail(
            "voucher.company.organisation_number",
            "NF-SIE-COMPANY",
            f"the SIE file is from organisation {company.get('organisation_number')}, "
            f"not the seller {seller_id}",
        )

    p = _postings(r, doc, sign)
    _revenue_lines(b, doc, p)
    vat = b.vat_breakdown(booked={rate: money(v) for rate, v in p.vat_booked.items()})
    for breakdown in vat:
        expected = money(breakdown.taxable_amount * breakdown.rate / 100)
        if abs(expected - breakdown.tax_amount) > CENT * (len(p.revenue) + 1):
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT",
                f"output VAT {breakdown.tax_amount} at {breakdown.rate} % should be {expected} "
                f"on revenue {breakdown.taxable_amount}",
            )
    net_total, vat_total = vat_sums(vat)
    if b.lines and not r.issues and p.payable != net_total + vat_total + p.rounding:
        r.fail(
            "voucher.transactions",
            "NF-SIE-BALANCE",
            f"receivable {p.payable} is not revenue {net_total} + VAT {vat_total} "
            f"+ rounding {p.rounding}",
        )
    buyer = _voucher_buyer(b, event, p.customer)
    return b.build(
        credit=credit,
        number=event.source.document_number or event.source.document_id,
        issue_date=issue_date,
        currency=currency,
        buyer=buyer,
        vat=vat,
        totals=totals(net_total, vat_total, rounding=p.rounding, payable=p.payable),
        note=optional_text(doc.get("text")),
    )
