"""Map an on-premise document: a JSON batch invoice, or a SIE 4i customer invoice voucher.

JSON invoices (services/erp-poller/INGESTION.md) are close to the canonical model: amounts
positive on credit notes too, net per line = quantity x unit price unless `net_amount` says
otherwise, VAT per (category, rate) on the summed nets, the source's totals checked.

A SIE voucher carries no invoice lines, only postings: each revenue row (BAS class 3) becomes
a line, the output VAT rows give the VAT (BAS 2610-2619 is 25 %, 2620-2629 12 %, 2630-2639
6 %; Norwegian NS 2700-2709 is derived from the ratio and must be 25, 15 or 12 %), the
receivable row (1500-1519) is the amount due, the rounding account (3740 öres- och
kronutjämning) the rounding, and the customer is the dimension-8 object (SIE's "kund"). What
cannot be derived, e.g. which rate a revenue row has when several are booked and its account
does not say, is a named issue, never a guess.

SIE 4 has no customer addresses. When the connection's customer register knows the voucher's
customer, erp-poller puts the entry in `related["customer"]` and the buyer comes from it
(name, party type, organisation and VAT number, e-mail, GLN as PEPPOL electronic address
scheme 0088, postal address), so the invoice can be delivered; otherwise the buyer is the
object's name and number only, and can be sent only once the register knows it.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from nordflow_schemas.common import canonical_invoice_id
from nordflow_schemas.events import ErpDocumentFetched, ValidationIssue
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
    Totals,
    VatBreakdown,
    VatCategory,
)
from pydantic import ValidationError

from .fortnox import Reader
from .winner import (
    PRICE_PLACES,
    address,
    breakdown,
    mapping,
    money,
    objects,
    schema_issues,
    seller_party,
    text_or_none,
)

CENT = Decimal("0.01")
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


def map_on_premise(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """The canonical invoice, or every problem found (never an exception)."""
    try:
        if "transactions" in event.payload:
            return _map_voucher(event)
        return _map_json(event)
    except ArithmeticError as exc:  # a last guard: a strange number must not stop the consumer
        return [ValidationIssue(field="Invoice", rule="NF-NUMBER", message=str(exc))]


# -------------------------------------------------------------------------------- JSON


def _map_json(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    r = Reader()
    doc = event.payload
    seller, seller_country = seller_party(r, event.related.get("seller", {}))
    credit = event.kind.value == "credit_note"
    issue_date = r.date(doc, "issue_date", "Invoice.issue_date", required=True)
    due_date = r.date(doc, "due_date", "Invoice.due_date")
    currency = (r.text(doc, "currency", "Invoice.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("Invoice.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")

    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    rows = objects(r, doc, "lines", "Invoice.lines")
    if not rows and "Invoice.lines" not in {i.field for i in r.issues}:
        r.fail("Invoice.lines", "BR-16", "an invoice needs at least one line")
    for i, row in rows:
        f = f"Invoice.lines[{i}]"
        description = r.text(row, "description", f"{f}.description", required=True)
        quantity = r.decimal(row, "quantity", f"{f}.quantity")
        price = r.decimal(row, "unit_price", f"{f}.unit_price")
        rate = r.decimal(row, "vat_rate", f"{f}.vat_rate")
        if not Decimal(0) <= rate < Decimal(100):
            r.fail(f"{f}.vat_rate", "NF-VAT-RATE", f"{f}.vat_rate must be 0..99 %, got {rate}")
            rate = Decimal(0)
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
        taxable[(category, rate)] += net
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=description or "(no description)",
                    article_number=text_or_none(row.get("article_number")),
                    quantity=quantity,
                    unit_code=str(row.get("unit_code") or "C62"),
                    unit_price=price,
                    allowance_amount=money(quantity * price - net),
                    net_amount=net,
                    vat_category=category,
                    vat_rate=rate,
                    account_number=text_or_none(row.get("account_number")),
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    vat = breakdown(taxable)
    net_total = sum((b.taxable_amount for b in vat), Decimal(0))
    vat_total = sum((b.tax_amount for b in vat), Decimal(0))
    totals = mapping(r, doc, "totals", "Invoice.totals")
    payable = net_total + vat_total
    if totals:
        if totals.get("net") not in (None, ""):
            stated = r.decimal(totals, "net", "Invoice.totals.net")
            if stated != net_total:
                r.fail(
                    "Invoice.totals.net",
                    "NF-TOTAL",
                    f"Invoice.totals.net {stated} differs from the sum of the lines {net_total}",
                )
        if totals.get("vat") not in (None, ""):
            stated = r.decimal(totals, "vat", "Invoice.totals.vat")
            if abs(stated - vat_total) > CENT * len(vat):
                r.fail(
                    "Invoice.totals.vat",
                    "NF-VAT-TOTAL",
                    f"Invoice.totals.vat {stated} differs from the VAT of the lines {vat_total}",
                )
        payable = r.decimal(totals, "payable", "Invoice.totals.payable")
        if abs(payable - (net_total + vat_total)) > 1:
            r.fail(
                "Invoice.totals.payable",
                "NF-TOTAL",
                f"Invoice.totals.payable {payable} is not net {net_total} + VAT {vat_total} "
                "(rounding is at most 1)",
            )

    buyer = mapping(r, doc, "buyer", "Invoice.buyer")
    buyer_name = r.text(buyer, "name", "Invoice.buyer.name", required=True)
    buyer_address = address(
        r,
        mapping(r, buyer, "address", "Invoice.buyer.address"),
        "Invoice.buyer.address",
        seller_country,
    )
    endpoint = mapping(r, buyer, "electronic_address", "Invoice.buyer.electronic_address")
    payment = mapping(r, doc, "payment", "Invoice.payment")
    preceding = mapping(r, doc, "preceding_invoice", "Invoice.preceding_invoice")
    preceding_number = r.text(preceding, "number", "Invoice.preceding_invoice.number")
    preceding_date = r.date(preceding, "issue_date", "Invoice.preceding_invoice.issue_date")
    if credit and preceding_number is None:
        r.fail(
            "Invoice.preceding_invoice.number",
            "NF-CREDIT-REF",
            "a credit note must name the invoice it credits",
        )
    if r.issues or seller is None:
        return r.issues

    preceding_id = text_or_none(preceding.get("document_id"))
    try:
        return Invoice(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            source=event.source,
            document_type=DocumentType.CREDIT_NOTE if credit else DocumentType.INVOICE,
            number=event.source.document_number or event.source.document_id,
            issue_date=issue_date,  # type: ignore[arg-type]  # required: issue recorded if None
            due_date=due_date,
            currency=currency,
            seller=seller,
            buyer=Party(
                name=str(buyer_name),
                party_type=PartyType.PRIVATE
                if str(buyer.get("party_type") or "").lower() == "private"
                else PartyType.COMPANY,
                company_id=text_or_none(buyer.get("company_id")),
                vat_id=text_or_none(buyer.get("vat_id")),
                electronic_address=ElectronicAddress(
                    scheme=str(endpoint.get("scheme")), value=str(endpoint.get("value"))
                )
                if endpoint
                else None,
                address=buyer_address,
                email=text_or_none(buyer.get("email")),
                customer_number=text_or_none(buyer.get("customer_number")),
            ),
            lines=tuple(lines),
            vat_breakdown=vat,
            totals=Totals(
                line_extension=net_total,
                tax_exclusive=net_total,
                tax_total=vat_total,
                tax_inclusive=net_total + vat_total,
                rounding=payable - (net_total + vat_total),
                payable=payable,
            ),
            payment=PaymentInstructions(
                payment_reference=text_or_none(payment.get("reference")),
                account_id=text_or_none(payment.get("account_id")),
                account_scheme=text_or_none(payment.get("account_scheme")),
                terms=text_or_none(payment.get("terms")),
            ),
            buyer_reference=text_or_none(doc.get("buyer_reference")),
            order_reference=text_or_none(doc.get("order_reference")),
            note=text_or_none(doc.get("note")),
            payment_method=text_or_none(payment.get("method")),
            preceding_invoice=InvoiceReference(
                number=preceding_number,
                issue_date=preceding_date,
                invoice_id=canonical_invoice_id(
                    event.tenant_id,
                    event.source.system.value,
                    event.source.connection_id,
                    preceding_id,
                )
                if preceding_id
                else None,
            )
            if credit and preceding_number
            else None,
        )
    except ValidationError as exc:
        return schema_issues(exc)


# ----------------------------------------------------------------------------- SIE 4i


def _account(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 6 else None


def _swedish_rate(account: int) -> Decimal | None:
    return next((rate for accounts, rate in SWEDISH_VAT_ACCOUNTS if account in accounts), None)


def _digits(value: Any) -> str:
    return "".join(c for c in str(value or "") if c.isdigit())


def _map_voucher(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    r = Reader()
    doc = event.payload
    profile = event.related.get("seller", {})
    seller, seller_country = seller_party(r, profile)
    credit = event.kind.value == "credit_note"
    # Invoices credit revenue (negative in SIE) and debit the receivable; credit notes the reverse.
    sign = Decimal(1) if credit else Decimal(-1)
    issue_date = r.date(doc, "date", "voucher.date", required=True)
    currency = (r.text(doc, "currency", "voucher.currency") or "SEK").upper()
    if not (len(currency) == 3 and currency.isalpha() and currency.isascii()):
        r.fail("voucher.currency", "NF-CURRENCY", f"not an ISO 4217 currency: {currency!r}")
    company = mapping(r, doc, "company", "voucher.company")
    company_number = _digits(company.get("organisation_number"))[-10:]
    seller_number = _digits(profile.get("organisation_number"))[-10:]
    if company_number and seller_number and company_number != seller_number:
        r.fail(
            "voucher.company.organisation_number",
            "NF-SIE-COMPANY",
            f"the SIE file is from organisation {company.get('organisation_number')}, "
            f"not the seller {profile.get('organisation_number')}",
        )

    revenue: list[tuple[str, dict[str, Any], Decimal, int]] = []
    vat_booked: dict[Decimal, Decimal] = defaultdict(Decimal)
    norwegian_vat = Decimal(0)
    payable = Decimal(0)
    rounding = Decimal(0)
    customer: tuple[str, str | None] | None = None
    rows = objects(r, doc, "transactions", "voucher.transactions")
    if not rows and "voucher.transactions" not in {i.field for i in r.issues}:
        r.fail("voucher.transactions", "NF-REQUIRED", "a voucher needs #TRANS rows")
    for i, row in rows:
        f = f"voucher.transactions[{i}]"
        account = _account(row.get("account"))
        amount = r.decimal(row, "amount", f"{f}.amount")
        for _, obj in objects(r, row, "objects", f"{f}.objects"):
            if str(obj.get("dimension")) == "8" and customer is None and obj.get("object"):
                customer = (str(obj["object"]), text_or_none(obj.get("name")))
        if account is None:
            r.fail(f"{f}.account", "NF-SIE-ACCOUNT", f"{f}.account must be an account number")
        elif account in RECEIVABLE:
            payable -= amount * sign
        elif account in ROUNDING:
            rounding += amount * sign
        elif account in REVENUE:
            revenue.append((f, row, amount * sign, account))
        elif (rate := _swedish_rate(account)) is not None:
            vat_booked[rate] += amount * sign
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
    if not revenue and rows:
        r.fail("voucher.transactions", "NF-SIE-REVENUE", "no revenue row (accounts 3000-3999)")
    net_revenue = sum((net for _, _, net, _ in revenue), Decimal(0))
    if norwegian_vat:
        if vat_booked:
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT",
                "Swedish (26xx) and Norwegian (27xx) output VAT in one voucher",
            )
        ratio = (norwegian_vat * 100 / net_revenue).quantize(Decimal(1)) if net_revenue else None
        if ratio in NORWEGIAN_RATES:
            vat_booked[Decimal(ratio)] += norwegian_vat
        else:
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT-RATE",
                f"output VAT {norwegian_vat} on 27xx is not 25, 15 or 12 % of the revenue "
                f"{net_revenue}: the rate cannot be derived",
            )

    # Which rate each revenue row has: the only one booked, or what its BAS account says.
    rates = sorted(r_ for r_, v in vat_booked.items() if v)
    lines: list[InvoiceLine] = []
    taxable: dict[tuple[VatCategory, Decimal], Decimal] = defaultdict(Decimal)
    for f, row, net, account in revenue:
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
        category = VatCategory.STANDARD if rate > 0 else VatCategory.ZERO
        taxable[(category, rate)] += money(net)
        quantity = abs(r.decimal(row, "quantity", f"{f}.quantity", default=Decimal(1))) or Decimal(
            1
        )
        try:
            lines.append(
                InvoiceLine(
                    line_id=str(len(lines) + 1),
                    description=text_or_none(row.get("text"))
                    or text_or_none(row.get("account_name"))
                    or text_or_none(doc.get("text"))
                    or f"Account {account}",
                    quantity=quantity,
                    unit_price=(net / quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_UP),
                    net_amount=money(net),
                    vat_category=category,
                    vat_rate=rate,
                    account_number=str(account),
                )
            )
        except ValidationError as exc:
            r.fail_model(f, "NF-ROW", exc)

    vat = tuple(
        VatBreakdown(
            category=b.category,
            rate=b.rate,
            taxable_amount=b.taxable_amount,
            tax_amount=money(vat_booked.get(b.rate, Decimal(0))) if b.rate else b.tax_amount,
        )
        for b in breakdown(taxable)
    )
    for b in vat:
        expected = money(b.taxable_amount * b.rate / 100)
        if abs(expected - b.tax_amount) > CENT * (len(revenue) + 1):
            r.fail(
                "voucher.transactions",
                "NF-SIE-VAT",
                f"output VAT {b.tax_amount} at {b.rate} % should be {expected} "
                f"on revenue {b.taxable_amount}",
            )
    net_total = sum((b.taxable_amount for b in vat), Decimal(0))
    vat_total = sum((b.tax_amount for b in vat), Decimal(0))
    if lines and not r.issues and payable != net_total + vat_total + rounding:
        r.fail(
            "voucher.transactions",
            "NF-SIE-BALANCE",
            f"receivable {payable} is not revenue {net_total} + VAT {vat_total} "
            f"+ rounding {rounding}",
        )
    card = mapping(r, event.related, "customer", "related.customer")
    if customer is None:
        r.fail(
            "voucher.transactions.objects",
            "NF-SIE-CUSTOMER",
            "no customer: put the dimension-8 (kund) object on the receivable row",
        )
    elif card:
        registered = text_or_none(card.get("customer_number"))
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
    buyer_address = address(
        r,
        mapping(r, card, "address", "related.customer.address"),
        "related.customer.address",
        seller_country,
    )
    if r.issues or seller is None or customer is None:
        return r.issues

    number = event.source.document_number or event.source.document_id
    try:
        return Invoice(
            invoice_id=event.invoice_id,
            tenant_id=event.tenant_id,
            source=event.source,
            document_type=DocumentType.CREDIT_NOTE if credit else DocumentType.INVOICE,
            number=number,
            issue_date=issue_date,  # type: ignore[arg-type]  # required: issue recorded if None
            currency=currency,
            seller=seller,
            buyer=_registered_buyer(card, customer[0], buyer_address)
            if card
            else Party(name=str(customer[1]), customer_number=customer[0], address=buyer_address),
            lines=tuple(lines),
            vat_breakdown=vat,
            totals=Totals(
                line_extension=net_total,
                tax_exclusive=net_total,
                tax_total=vat_total,
                tax_inclusive=net_total + vat_total,
                rounding=rounding,
                payable=payable,
            ),
            payment=PaymentInstructions(
                account_id=text_or_none(profile.get("bankgiro")),
                account_scheme="SE:BANKGIRO" if profile.get("bankgiro") else None,
            ),
            note=text_or_none(doc.get("text")),
        )
    except ValidationError as exc:
        return schema_issues(exc)


def _registered_buyer(card: dict[str, Any], number: str, buyer_address: Address) -> Party:
    """The buyer from the connection's customer register entry (erp-poller's JSON shape:
    customer_number, name, type, organisation_number, vat_number, email, gln, address)."""
    gln = text_or_none(card.get("gln"))
    return Party(
        name=str(text_or_none(card.get("name"))),
        party_type=PartyType.PRIVATE
        if str(card.get("type") or "").lower() == "private"
        else PartyType.COMPANY,
        company_id=text_or_none(card.get("organisation_number")),
        vat_id=text_or_none(card.get("vat_number")),
        electronic_address=ElectronicAddress(scheme=GLN_SCHEME, value=gln) if gln else None,
        address=buyer_address,
        email=text_or_none(card.get("email")),
        customer_number=number,
    )
