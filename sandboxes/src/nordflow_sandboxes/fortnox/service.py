"""Fortnox use cases on one company: customers, invoices and payments (callers hold the lock)."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from nordflow_schemas.money import money

from nordflow_sandboxes.fortnox import fields as f
from nordflow_sandboxes.fortnox.domain import (
    CUSTOMER_FIELDS,
    CUSTOMER_READ_ONLY,
    DEFAULT_SALES_ACCOUNT,
    DEFAULT_SALES_ACCOUNT_BY_VAT_TYPE,
    DISCOUNT_TYPES,
    INVOICE_CONTROLLED_FIELDS,
    INVOICE_PASSTHROUGH_FIELDS,
    INVOICE_READ_ONLY,
    INVOICE_TYPES,
    PAYMENT_READ_ONLY,
    PAYMENT_WRITABLE,
    ROW_READ_ONLY,
    ROW_WRITABLE,
    SWEDISH_VAT_RATES,
    WRITE_OFF_FIELDS,
    Company,
    Customer,
    Invoice,
    InvoiceRow,
    Payment,
    WriteOff,
)
from nordflow_sandboxes.fortnox.errors import (
    CUSTOMER_NUMBER_IN_USE,
    INVALID_CHARACTERS,
    INVALID_IDENTIFIER,
    INVALID_PARAMETER,
    FortnoxError,
    bad_request,
    not_found,
    rule_violation,
)
from nordflow_sandboxes.fortnox.values import parse_lastmodified
from nordflow_sandboxes.kit.values import ZERO, ocr_for_document

T = TypeVar("T")
Query = Mapping[str, str]

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_CUSTOMER_NUMBER = re.compile(r"^[A-Za-z0-9._-]{1,1024}$")

# Customer card fields copied onto a new invoice (invoice field <- customer field).
_COPIED_FROM_CUSTOMER = {
    "CustomerName": "Name",
    "Address1": "Address1",
    "Address2": "Address2",
    "ZipCode": "ZipCode",
    "City": "City",
    "Country": "Country",
    "OrganisationNumber": "OrganisationNumber",
    "Phone1": "Phone1",
    "Phone2": "Phone2",
    "DeliveryName": "DeliveryName",
    "DeliveryAddress1": "DeliveryAddress1",
    "DeliveryAddress2": "DeliveryAddress2",
    "DeliveryZipCode": "DeliveryZipCode",
    "DeliveryCity": "DeliveryCity",
    "DeliveryCountry": "DeliveryCountry",
    "YourReference": "YourReference",
    "OurReference": "OurReference",
    "PriceList": "PriceList",
    "TermsOfDelivery": "TermsOfDelivery",
    "WayOfDelivery": "WayOfDelivery",
    "CostCenter": "CostCenter",
    "Project": "Project",
}


@dataclass(frozen=True)
class Page:
    """One page of a list answer with Fortnox's MetaInformation numbers."""

    items: list[Any]
    current_page: int
    total_pages: int
    total_resources: int


# ---------------------------------------------------------------- identifiers and paging


def parse_number(raw: str, what: str) -> int:
    """A numeric identifier from the URL path (DocumentNumber, payment Number)."""
    if not raw.isdigit() or int(raw) <= 0:
        raise bad_request(
            INVALID_IDENTIFIER, f"A valid identifier was not provided. ({what}: {raw!r})"
        )
    return int(raw)


def paginate(items: Sequence[T], query: Query) -> Page:
    """Apply `page` (1-based) and `limit` (default 100, max 500)."""
    page = _positive_param(query, "page", 1)
    limit = _positive_param(query, "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise bad_request(
            INVALID_PARAMETER, f"Ogiltig parameter i anropet. limit is at most {MAX_LIMIT}"
        )
    total = len(items)
    start = (page - 1) * limit
    return Page(
        items=list(items[start : start + limit]),
        current_page=page,
        total_pages=math.ceil(total / limit),
        total_resources=total,
    )


def _positive_param(query: Query, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise bad_request(INVALID_PARAMETER, f"Ogiltig parameter i anropet. {name}={raw!r}")
    return int(raw)


def _modified_since(query: Query) -> datetime | None:
    raw = query.get("lastmodified")
    return parse_lastmodified(raw) if raw else None


def _contains(haystack: str, needle: str) -> bool:
    """Fortnox search parameters match by case-insensitive containment (SQL ILIKE '%x%')."""
    return needle.lower() in haystack.lower()


def _apply_searches(
    items: Iterable[T], query: Query, searches: Mapping[str, Callable[[T], str]]
) -> list[T]:
    selected = list(items)
    for param, getter in searches.items():
        needle = query.get(param)
        if needle:
            selected = [item for item in selected if _contains(getter(item), needle)]
    return selected


def _sort_order(query: Query) -> bool:
    order = query.get("sortorder", "ascending")
    if order not in {"ascending", "descending"}:
        raise bad_request(INVALID_PARAMETER, f"Ogiltig parameter i anropet. sortorder={order!r}")
    return order == "descending"


def _customer_sort_key(number: str) -> tuple[int, int, str]:
    return (0, int(number), "") if number.isdigit() else (1, 0, number)


# ---------------------------------------------------------------------------- customers


def get_customer(company: Company, number: str) -> Customer:
    """The customer with this number, or a 404."""
    customer = company.customers.get(number)
    if customer is None:
        raise not_found(f"Kunden hittades inte (CustomerNumber {number!r})")
    return customer


def create_customer(company: Company, body: Mapping[str, Any], now: datetime) -> Customer:
    """Register a customer; CustomerNumber is assigned when absent, Name is required."""
    f.check_field_names(body, {*CUSTOMER_FIELDS, "CustomerNumber"}, CUSTOMER_READ_ONLY, "Customer")
    raw_number = body.get("CustomerNumber")
    if raw_number in (None, ""):
        number = company.next_customer_number()
    else:
        number = f.as_text("CustomerNumber", raw_number, 1024)
        if not _CUSTOMER_NUMBER.match(number):
            raise bad_request(
                INVALID_CHARACTERS, f"Värdet innehåller ej tillåtna tecken. ({number})"
            )
        if number in company.customers:
            raise bad_request(CUSTOMER_NUMBER_IN_USE, f"Kundnummer {number} används redan.")
    values = _decode_customer_values(body)
    if not values.get("Name"):
        raise f.invalid_value("Customer.Name", "Name is required")
    defaults: dict[str, Any] = {
        "Active": True,
        "Type": "COMPANY",
        "VATType": "SEVAT",
        "Currency": "SEK",
    }
    customer = Customer(number=number, values={**defaults, **values}, last_modified=now)
    company.customers[number] = customer
    return customer


def update_customer(
    company: Company, number: str, body: Mapping[str, Any], now: datetime
) -> Customer:
    """Change fields of an existing customer (fields not sent are kept)."""
    customer = get_customer(company, number)
    f.check_field_names(body, {*CUSTOMER_FIELDS, "CustomerNumber"}, CUSTOMER_READ_ONLY, "Customer")
    if body.get("CustomerNumber") not in (None, "", number):
        raise rule_violation("CustomerNumber cannot be changed")
    values = _decode_customer_values(body)
    if "Name" in values and not values["Name"]:
        raise f.invalid_value("Customer.Name", "Name cannot be empty")
    customer.values.update(values)
    customer.last_modified = now
    return customer


def _decode_customer_values(body: Mapping[str, Any]) -> dict[str, Any]:
    values = {
        name: CUSTOMER_FIELDS[name].decode(f"Customer.{name}", raw)
        for name, raw in body.items()
        if name in CUSTOMER_FIELDS
    }
    for name in ("CountryCode", "DeliveryCountryCode", "VisitingCountryCode", "Currency"):
        if values.get(name):
            values[name] = str(values[name]).upper()
    gln = values.get("GLN")
    if gln and (len(gln) != 13 or not gln.isdigit()):
        raise f.invalid_value("Customer.GLN", "a GLN has 13 digits")
    return values


def list_customers(company: Company, query: Query) -> list[Customer]:
    """Customers matching the search parameters, sorted by CustomerNumber."""
    since = _modified_since(query)
    items = [c for c in company.customers.values() if since is None or c.last_modified >= since]
    flt = query.get("filter")
    if flt:
        if flt not in {"active", "inactive"}:
            raise bad_request(INVALID_PARAMETER, f"Ogiltig parameter i anropet. filter={flt!r}")
        items = [c for c in items if bool(c.values.get("Active", True)) == (flt == "active")]
    items = _apply_searches(
        items,
        query,
        {
            "customernumber": lambda c: c.number,
            "name": lambda c: c.name,
            "organisationnumber": lambda c: c.get_text("OrganisationNumber"),
            "email": lambda c: c.get_text("Email"),
            "gln": lambda c: c.get_text("GLN"),
            "city": lambda c: c.get_text("City"),
            "zipcode": lambda c: c.get_text("ZipCode"),
            "phone": lambda c: c.get_text("Phone1"),
        },
    )
    sortby = query.get("sortby", "customernumber")
    if sortby == "customernumber":
        items.sort(key=lambda c: _customer_sort_key(c.number), reverse=_sort_order(query))
    elif sortby == "name":
        items.sort(key=lambda c: c.name.lower(), reverse=_sort_order(query))
    else:
        raise bad_request(INVALID_PARAMETER, f"Ogiltig parameter i anropet. sortby={sortby!r}")
    return items


# ----------------------------------------------------------------------------- invoices


def get_invoice(company: Company, number: int) -> Invoice:
    """The invoice with this DocumentNumber, or a 404."""
    invoice = company.invoices.get(number)
    if invoice is None:
        raise not_found(f"Fakturan hittades inte (DocumentNumber {number})")
    return invoice


def _terms_days(terms: str) -> int:
    """Days until due for a terms-of-payment code ("30" -> 30; codes such as "K" -> 0)."""
    return int(terms) if terms.isdigit() else 0


def create_invoice(
    company: Company, body: Mapping[str, Any], now: datetime, today: date
) -> Invoice:
    """Create an invoice for an existing customer and compute its amounts."""
    f.check_field_names(
        body,
        {*INVOICE_PASSTHROUGH_FIELDS, *INVOICE_CONTROLLED_FIELDS},
        INVOICE_READ_ONLY,
        "Invoice",
    )
    raw_customer = body.get("CustomerNumber")
    if raw_customer in (None, ""):
        raise f.invalid_value("Invoice.CustomerNumber", "CustomerNumber is required")
    customer = existing_customer(company, f.as_text("Invoice.CustomerNumber", raw_customer))

    document_number = _new_document_number(company, body.get("DocumentNumber"))
    invoice_date = _optional_date(body, "InvoiceDate") or today
    terms = _text_or(body, "TermsOfPayment", customer.get_text("TermsOfPayment") or "30")
    due_date = _optional_date(body, "DueDate") or invoice_date + timedelta(days=_terms_days(terms))
    if due_date < invoice_date:
        raise f.invalid_value("Invoice.DueDate", "DueDate cannot be before InvoiceDate")
    currency = _text_or(body, "Currency", customer.get_text("Currency") or "SEK").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise f.invalid_value("Invoice.Currency", f"not a currency code: {currency!r}")

    values = _customer_copy(customer)
    values.update(_decode_passthrough(body))
    invoice = Invoice(
        document_number=document_number,
        customer_number=customer.number,
        invoice_date=invoice_date,
        due_date=due_date,
        terms_of_payment=terms,
        invoice_type=_enum_or(body, "InvoiceType", INVOICE_TYPES, "INVOICE"),
        currency=currency,
        currency_rate=_currency_rate(body, currency, Decimal(1)),
        currency_unit=f.as_int("Invoice.CurrencyUnit", body["CurrencyUnit"])
        if body.get("CurrencyUnit")
        else 1,
        vat_included=f.as_bool("Invoice.VATIncluded", body["VATIncluded"])
        if body.get("VATIncluded") is not None
        else bool(customer.values.get("ShowPriceVATIncluded", False)),
        freight=_decimal_or(body, "Freight", ZERO),
        administration_fee=_decimal_or(body, "AdministrationFee", ZERO),
        rows=_decode_rows(body.get("InvoiceRows"), customer),
        values=values,
        ocr=_text_or(body, "OCR", "") or ocr_for_document(document_number),
        created=now,
        last_modified=now,
    )
    reference = body.get("CreditInvoiceReference")
    if reference not in (None, "", 0, "0"):
        original = _creditable(company, parse_number(str(reference), "CreditInvoiceReference"))
        if original.customer_number != customer.number:
            raise rule_violation(
                "A credit invoice must have the same customer as the credited invoice"
            )
        _link_credit(original, invoice, now)
    invoice.recompute()
    company.invoices[document_number] = invoice
    company.next_document_number = max(company.next_document_number, document_number + 1)
    return invoice


def update_invoice(
    company: Company, number: int, body: Mapping[str, Any], now: datetime
) -> Invoice:
    """Change an unbooked, uncancelled invoice; InvoiceRows, when sent, replace all rows.

    All or nothing: when any field is refused the invoice is left as it was.
    """
    invoice = get_invoice(company, number)
    snapshot = copy.deepcopy(invoice)
    try:
        return _update_invoice(company, invoice, body, now)
    except FortnoxError:
        invoice.__dict__.update(snapshot.__dict__)
        raise


def _update_invoice(
    company: Company, invoice: Invoice, body: Mapping[str, Any], now: datetime
) -> Invoice:
    number = invoice.document_number
    f.check_field_names(
        body,
        {*INVOICE_PASSTHROUGH_FIELDS, *INVOICE_CONTROLLED_FIELDS},
        INVOICE_READ_ONLY,
        "Invoice",
    )
    if invoice.booked:
        raise rule_violation(
            f"Invoice {number} is booked and can no longer be changed; credit it instead"
        )
    if invoice.cancelled:
        raise rule_violation(f"Invoice {number} is cancelled and can no longer be changed")
    if body.get("DocumentNumber") not in (None, "") and str(body["DocumentNumber"]) != str(number):
        raise rule_violation("DocumentNumber cannot be changed")
    reference = body.get("CreditInvoiceReference")
    if reference not in (None, "") and str(reference) != str(invoice.credit_invoice_reference):
        raise rule_violation(
            "CreditInvoiceReference cannot be changed; use PUT /3/invoices/{n}/credit"
        )

    customer = company.customers.get(invoice.customer_number)
    new_customer = body.get("CustomerNumber")
    if new_customer not in (None, "", invoice.customer_number):
        customer = existing_customer(company, f.as_text("Invoice.CustomerNumber", new_customer))
        invoice.customer_number = customer.number
        invoice.values.update(_customer_copy(customer))
    invoice.values.update(_decode_passthrough(body))

    if "InvoiceDate" in body:
        invoice.invoice_date = _optional_date(body, "InvoiceDate") or invoice.invoice_date
    if "TermsOfPayment" in body:
        invoice.terms_of_payment = _text_or(body, "TermsOfPayment", invoice.terms_of_payment)
    if body.get("DueDate"):
        invoice.due_date = f.as_date("Invoice.DueDate", body["DueDate"])
    elif "InvoiceDate" in body or "TermsOfPayment" in body:
        invoice.due_date = invoice.invoice_date + timedelta(
            days=_terms_days(invoice.terms_of_payment)
        )
    if invoice.due_date < invoice.invoice_date:
        raise f.invalid_value("Invoice.DueDate", "DueDate cannot be before InvoiceDate")
    if body.get("Currency"):
        invoice.currency = f.as_text("Invoice.Currency", body["Currency"]).upper()
    if "CurrencyRate" in body:
        invoice.currency_rate = _currency_rate(body, invoice.currency, invoice.currency_rate)
    if body.get("CurrencyUnit"):
        invoice.currency_unit = f.as_int("Invoice.CurrencyUnit", body["CurrencyUnit"])
    if body.get("InvoiceType"):
        invoice.invoice_type = f.as_enum("Invoice.InvoiceType", body["InvoiceType"], INVOICE_TYPES)
    if body.get("VATIncluded") is not None:
        invoice.vat_included = f.as_bool("Invoice.VATIncluded", body["VATIncluded"])
    if "Freight" in body:
        invoice.freight = _decimal_or(body, "Freight", ZERO)
    if "AdministrationFee" in body:
        invoice.administration_fee = _decimal_or(body, "AdministrationFee", ZERO)
    if body.get("OCR"):
        invoice.ocr = f.as_text("Invoice.OCR", body["OCR"])
    if "InvoiceRows" in body and customer is not None:
        invoice.rows = _decode_rows(body["InvoiceRows"], customer)
    invoice.recompute()
    if invoice.settled and (
        (invoice.settled > 0) != (invoice.total > 0) or abs(invoice.settled) > abs(invoice.total)
    ):
        raise rule_violation(
            f"The new total {invoice.total} is below the {invoice.settled} already paid; "
            "delete the payments first"
        )
    invoice.last_modified = now
    return invoice


def bookkeep_invoice(company: Company, number: int, now: datetime) -> Invoice:
    """Book the invoice (voucher series B); a booked invoice can no longer be changed."""
    invoice = get_invoice(company, number)
    if invoice.cancelled:
        raise rule_violation(f"Invoice {number} is cancelled and cannot be booked")
    if invoice.booked:
        raise rule_violation(f"Invoice {number} is already booked")
    invoice.booked = True
    invoice.voucher = company.take_voucher("B")
    invoice.last_modified = now
    return invoice


def cancel_invoice(company: Company, number: int, now: datetime) -> Invoice:
    """Void an unbooked invoice without payments; its balance becomes 0."""
    invoice = get_invoice(company, number)
    if invoice.booked:
        raise rule_violation(
            f"Invoice {number} is booked and cannot be cancelled; credit it instead"
        )
    if invoice.cancelled:
        raise rule_violation(f"Invoice {number} is already cancelled")
    if any(p.invoice_number == number for p in company.payments.values()):
        raise rule_violation(f"Invoice {number} has payments and cannot be cancelled")
    invoice.cancelled = True
    invoice.last_modified = now
    if invoice.credit and invoice.credit_invoice_reference:
        # Voiding a credit invoice frees the original to be credited again.
        original = company.invoices.get(invoice.credit_invoice_reference)
        if original is not None and original.credit_invoice_reference == number:
            original.credit_invoice_reference = 0
            original.last_modified = now
    return invoice


def credit_invoice(company: Company, number: int, now: datetime, today: date) -> Invoice:
    """Create a credit invoice mirroring `number` (negated quantities) and link the two.

    Answers the original invoice, whose CreditInvoiceReference now names the credit invoice.
    """
    original = _creditable(company, number)
    document_number = company.next_document_number
    rows = [
        InvoiceRow(
            row_id=index,
            account_number=row.account_number,
            article_number=row.article_number,
            cost_center=row.cost_center,
            delivered_quantity=-row.delivered_quantity,
            description=row.description,
            discount=row.discount,
            discount_type=row.discount_type,
            house_work=row.house_work,
            price=row.price,
            project=row.project,
            stock_point_code=row.stock_point_code,
            unit=row.unit,
            vat=row.vat,
        )
        for index, row in enumerate(original.rows, start=1)
    ]
    credit = Invoice(
        document_number=document_number,
        customer_number=original.customer_number,
        invoice_date=today,
        due_date=today + timedelta(days=_terms_days(original.terms_of_payment)),
        terms_of_payment=original.terms_of_payment,
        invoice_type=original.invoice_type,
        currency=original.currency,
        currency_rate=original.currency_rate,
        currency_unit=original.currency_unit,
        vat_included=original.vat_included,
        freight=-original.freight,
        administration_fee=-original.administration_fee,
        rows=rows,
        values={k: (dict(v) if isinstance(v, dict) else v) for k, v in original.values.items()},
        ocr=ocr_for_document(document_number),
        created=now,
        last_modified=now,
    )
    _link_credit(original, credit, now)
    credit.recompute()
    company.invoices[document_number] = credit
    company.next_document_number = document_number + 1
    return original


def externalprint_invoice(company: Company, number: int, now: datetime) -> Invoice:
    """Mark the invoice as sent outside Fortnox (`Sent` becomes true)."""
    invoice = get_invoice(company, number)
    if invoice.cancelled:
        raise rule_violation(f"Invoice {number} is cancelled")
    invoice.sent = True
    invoice.last_modified = now
    return invoice


def list_invoices(company: Company, query: Query, today: date) -> list[Invoice]:
    """Invoices matching `filter`, `lastmodified` and the search parameters."""
    since = _modified_since(query)
    items = [i for i in company.invoices.values() if since is None or i.last_modified >= since]
    flt = query.get("filter")
    if flt:
        predicate = _INVOICE_FILTERS.get(flt)
        if predicate is None:
            raise bad_request(
                INVALID_PARAMETER,
                f"Ogiltig parameter i anropet. filter={flt!r}; one of {sorted(_INVOICE_FILTERS)}",
            )
        items = [i for i in items if predicate(i, today)]
    from_date = query.get("fromdate")
    if from_date:
        start = f.as_date("fromdate", from_date)
        items = [i for i in items if i.invoice_date >= start]
    to_date = query.get("todate")
    if to_date:
        end = f.as_date("todate", to_date)
        items = [i for i in items if i.invoice_date <= end]
    for param, attribute in (("invoicetype", "invoice_type"), ("currency", "currency")):
        wanted = query.get(param)
        if wanted:
            items = [i for i in items if str(getattr(i, attribute)).upper() == wanted.upper()]
    items = _apply_searches(
        items,
        query,
        {
            "customernumber": lambda i: i.customer_number,
            "customername": lambda i: i.get_text("CustomerName"),
            "documentnumber": lambda i: str(i.document_number),
            "ocr": lambda i: i.ocr,
            "externalinvoicereference1": lambda i: i.get_text("ExternalInvoiceReference1"),
            "externalinvoicereference2": lambda i: i.get_text("ExternalInvoiceReference2"),
            "yourreference": lambda i: i.get_text("YourReference"),
            "ourreference": lambda i: i.get_text("OurReference"),
            "yourordernumber": lambda i: i.get_text("YourOrderNumber"),
            "project": lambda i: i.get_text("Project"),
        },
    )
    sort_keys: dict[str, Callable[[Invoice], Any]] = {
        "documentnumber": lambda i: i.document_number,
        "customername": lambda i: (i.get_text("CustomerName").lower(), i.document_number),
        "customernumber": lambda i: (_customer_sort_key(i.customer_number), i.document_number),
        "invoicedate": lambda i: (i.invoice_date, i.document_number),
        "ocr": lambda i: (i.ocr, i.document_number),
        "total": lambda i: (i.total, i.document_number),
    }
    sortby = query.get("sortby", "documentnumber")
    if sortby not in sort_keys:
        raise bad_request(INVALID_PARAMETER, f"Ogiltig parameter i anropet. sortby={sortby!r}")
    items.sort(key=sort_keys[sortby], reverse=_sort_order(query))
    return items


_INVOICE_FILTERS: dict[str, Callable[[Invoice, date], bool]] = {
    "cancelled": lambda i, _today: i.cancelled,
    "unbooked": lambda i, _today: not i.booked and not i.cancelled,
    "unpaid": lambda i, _today: i.booked and not i.cancelled and i.balance != 0,
    "unpaidoverdue": lambda i, today: (
        i.booked and not i.cancelled and i.balance != 0 and i.due_date < today
    ),
    "fullypaid": lambda i, _today: i.booked and not i.cancelled and i.balance == 0,
}


def existing_customer(company: Company, number: str) -> Customer:
    """The customer of that number, or a 400 naming it."""
    customer = company.customers.get(number)
    if customer is None:
        raise rule_violation(
            f"Kunden hittades inte: customer {number!r} does not exist; "
            "create it first (POST /3/customers)"
        )
    return customer


def _new_document_number(company: Company, raw: Any) -> int:
    if raw in (None, ""):
        number = company.next_document_number
        while number in company.invoices:
            number += 1
        return number
    number = parse_number(str(raw), "DocumentNumber")
    if number in company.invoices:
        raise rule_violation(f"DocumentNumber {number} is already used")
    return number


def _creditable(company: Company, number: int) -> Invoice:
    original = company.invoices.get(number)
    if original is None:
        raise rule_violation(f"Invoice {number} does not exist")
    if original.cancelled:
        raise rule_violation(f"Invoice {number} is cancelled and cannot be credited")
    if original.credit:
        raise rule_violation(f"Invoice {number} is a credit invoice and cannot be credited")
    if original.credit_invoice_reference:
        raise rule_violation(
            f"Invoice {number} is already credited by invoice {original.credit_invoice_reference}"
        )
    return original


def _link_credit(original: Invoice, credit: Invoice, now: datetime) -> None:
    credit.credit = True
    credit.credit_invoice_reference = original.document_number
    original.credit_invoice_reference = credit.document_number
    original.last_modified = now


def _customer_copy(customer: Customer) -> dict[str, Any]:
    values: dict[str, Any] = {
        field: customer.values[source]
        for field, source in _COPIED_FROM_CUSTOMER.items()
        if customer.values.get(source) not in (None, "")
    }
    if customer.get_text("EmailInvoice"):
        values["EmailInformation"] = {"EmailAddressTo": customer.get_text("EmailInvoice")}
    return values


def _decode_passthrough(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: INVOICE_PASSTHROUGH_FIELDS[name].decode(f"Invoice.{name}", raw)
        for name, raw in body.items()
        if name in INVOICE_PASSTHROUGH_FIELDS
    }


def _decode_rows(raw: Any, customer: Customer) -> list[InvoiceRow]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise f.invalid_value("Invoice.InvoiceRows", "expected a list of rows")
    vat_type = str(customer.values.get("VATType") or "SEVAT")
    return [decode_row(index, row, vat_type) for index, row in enumerate(raw, start=1)]


def decode_row(index: int, raw: Any, vat_type: str, where: str | None = None) -> InvoiceRow:
    """One invoice (or order) row; ``where`` names it in errors."""
    where = where or f"Invoice.InvoiceRows[{index - 1}]"
    if not isinstance(raw, dict):
        raise f.invalid_value(where, "each row must be an object")
    f.check_field_names(raw, ROW_WRITABLE, ROW_READ_ONLY, where)
    default_vat = 25 if vat_type == "SEVAT" else 0
    vat = f.as_int(f"{where}.VAT", raw["VAT"]) if raw.get("VAT") not in (None, "") else default_vat
    if vat not in SWEDISH_VAT_RATES:
        raise f.invalid_value(
            f"{where}.VAT", f"Swedish VAT rates are {sorted(SWEDISH_VAT_RATES)}, got {vat}"
        )
    if raw.get("AccountNumber") not in (None, "", 0):
        account = f.as_account(f"{where}.AccountNumber", raw["AccountNumber"])
    else:
        account = DEFAULT_SALES_ACCOUNT_BY_VAT_TYPE.get(vat_type) or DEFAULT_SALES_ACCOUNT[vat]

    def text(name: str, max_length: int | None = None) -> str:
        return f.as_text(f"{where}.{name}", raw.get(name), max_length)

    def number(name: str) -> Decimal:
        value = raw.get(name)
        return ZERO if value in (None, "") else f.as_decimal(f"{where}.{name}", value)

    discount_type = raw.get("DiscountType") or "PERCENT"
    return InvoiceRow(
        row_id=index,
        account_number=account,
        article_number=text("ArticleNumber"),
        cost_center=text("CostCenter"),
        delivered_quantity=number("DeliveredQuantity"),
        description=text("Description", 255),
        discount=number("Discount"),
        discount_type=f.as_enum(f"{where}.DiscountType", discount_type, DISCOUNT_TYPES),
        house_work=f.as_bool(f"{where}.HouseWork", raw["HouseWork"])
        if raw.get("HouseWork") is not None
        else False,
        price=number("Price"),
        project=text("Project"),
        stock_point_code=text("StockPointCode"),
        unit=text("Unit"),
        vat=vat,
    )


def _optional_date(body: Mapping[str, Any], name: str) -> date | None:
    value = body.get(name)
    return None if value in (None, "") else f.as_date(f"Invoice.{name}", value)


def _text_or(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name)
    return default if value in (None, "") else f.as_text(f"Invoice.{name}", value)


def _enum_or(body: Mapping[str, Any], name: str, allowed: frozenset[str], default: str) -> str:
    value = body.get(name)
    return default if value in (None, "") else f.as_enum(f"Invoice.{name}", value, allowed)


def _decimal_or(body: Mapping[str, Any], name: str, default: Decimal) -> Decimal:
    value = body.get(name)
    return default if value in (None, "") else f.as_decimal(f"Invoice.{name}", value)


def _currency_rate(body: Mapping[str, Any], currency: str, default: Decimal) -> Decimal:
    rate = _decimal_or(body, "CurrencyRate", default)
    if currency == "SEK":
        return Decimal(1)
    if rate <= 0:
        raise f.invalid_value("Invoice.CurrencyRate", "must be positive")
    return rate


# ----------------------------------------------------------------------------- payments


def get_payment(company: Company, number: int) -> Payment:
    """The payment with this Number, or a 404."""
    payment = company.payments.get(number)
    if payment is None:
        raise not_found(f"Inbetalningen hittades inte (Number {number})")
    return payment


def create_payment(
    company: Company,
    body: Mapping[str, Any],
    now: datetime,
    today: date,
    *,
    require_booked_invoice: bool,
) -> Payment:
    """Register a payment on an invoice; it must not exceed the open balance in sign or size."""
    f.check_field_names(body, PAYMENT_WRITABLE, PAYMENT_READ_ONLY, "InvoicePayment")
    if body.get("InvoiceNumber") in (None, ""):
        raise f.invalid_value("InvoicePayment.InvoiceNumber", "InvoiceNumber is required")
    invoice_number = f.as_int("InvoicePayment.InvoiceNumber", body["InvoiceNumber"])
    invoice = company.invoices.get(invoice_number)
    if invoice is None:
        raise rule_violation(f"Invoice {invoice_number} does not exist")
    if require_booked_invoice and not invoice.booked:
        raise rule_violation(
            f"Invoice {invoice_number} must be booked before a payment can be registered"
        )
    payment = Payment(
        number=company.next_payment_number,
        invoice_number=invoice_number,
        amount=ZERO,
        amount_currency=ZERO,
        currency=invoice.currency,
        currency_rate=invoice.currency_rate,
        currency_unit=invoice.currency_unit,
        payment_date=today,
        mode_of_payment="",
        mode_of_payment_account=1930,
        write_offs=[],
        last_modified=now,
    )
    _apply_payment_fields(payment, body, invoice, creating=True)
    _settle(invoice, payment, now)
    company.payments[payment.number] = payment
    company.next_payment_number += 1
    return payment


def update_payment(
    company: Company, number: int, body: Mapping[str, Any], now: datetime
) -> Payment:
    """Change an unbooked payment; the invoice balance follows."""
    payment = get_payment(company, number)
    f.check_field_names(body, PAYMENT_WRITABLE, PAYMENT_READ_ONLY, "InvoicePayment")
    if payment.booked:
        raise rule_violation(f"Payment {number} is booked and can no longer be changed")
    if (
        body.get("InvoiceNumber") not in (None, "")
        and f.as_int("InvoicePayment.InvoiceNumber", body["InvoiceNumber"])
        != payment.invoice_number
    ):
        raise rule_violation("InvoiceNumber of a payment cannot be changed")
    invoice = get_invoice(company, payment.invoice_number)
    before = (
        payment.amount,
        payment.amount_currency,
        payment.payment_date,
        list(payment.write_offs),
    )
    invoice.settled -= payment.settles
    try:
        _apply_payment_fields(payment, body, invoice, creating=False)
        _settle(invoice, payment, now)
    except FortnoxError:
        payment.amount, payment.amount_currency, payment.payment_date, payment.write_offs = before
        invoice.settled += payment.settles
        raise
    payment.last_modified = now
    return payment


def bookkeep_payment(company: Company, number: int, now: datetime) -> Payment:
    """Book the payment (voucher series C); the invoice must be booked first."""
    payment = get_payment(company, number)
    if payment.booked:
        raise rule_violation(f"Payment {number} is already booked")
    invoice = get_invoice(company, payment.invoice_number)
    if not invoice.booked:
        raise rule_violation(f"Invoice {invoice.document_number} must be booked before its payment")
    payment.booked = True
    payment.voucher = company.take_voucher("C")
    payment.last_modified = now
    return payment


def delete_payment(company: Company, number: int, now: datetime) -> None:
    """Remove an unbooked payment and reopen the invoice by its amount."""
    payment = get_payment(company, number)
    if payment.booked:
        raise rule_violation(f"Payment {number} is booked and cannot be deleted")
    invoice = get_invoice(company, payment.invoice_number)
    invoice.settled -= payment.settles
    if invoice.balance != 0:
        invoice.final_pay_date = None
    invoice.last_modified = now
    del company.payments[number]


def list_payments(company: Company, query: Query) -> list[Payment]:
    """Payments sorted by payment date; `invoicenumber` is a sandbox addition (exact match)."""
    since = _modified_since(query)
    items = [p for p in company.payments.values() if since is None or p.last_modified >= since]
    wanted = query.get("invoicenumber")
    if wanted:
        items = [p for p in items if str(p.invoice_number) == wanted]
    items.sort(key=lambda p: (p.payment_date, p.number), reverse=_sort_order(query))
    return items


def _apply_payment_fields(
    payment: Payment, body: Mapping[str, Any], invoice: Invoice, *, creating: bool
) -> None:
    if body.get("PaymentDate") not in (None, ""):
        payment.payment_date = f.as_date("InvoicePayment.PaymentDate", body["PaymentDate"])
    if payment.payment_date < invoice.invoice_date:
        raise rule_violation(
            f"PaymentDate {payment.payment_date} cannot precede "
            f"the invoice date {invoice.invoice_date}"
        )
    if body.get("ModeOfPayment") is not None:
        payment.mode_of_payment = f.as_text("InvoicePayment.ModeOfPayment", body["ModeOfPayment"])
    if body.get("ModeOfPaymentAccount") not in (None, ""):
        payment.mode_of_payment_account = f.as_account(
            "InvoicePayment.ModeOfPaymentAccount", body["ModeOfPaymentAccount"]
        )
    if invoice.currency != "SEK" and body.get("CurrencyRate") not in (None, ""):
        payment.currency_rate = f.as_decimal("InvoicePayment.CurrencyRate", body["CurrencyRate"])
    if body.get("CurrencyUnit") not in (None, ""):
        payment.currency_unit = f.as_int("InvoicePayment.CurrencyUnit", body["CurrencyUnit"])
    if "WriteOffs" in body:
        payment.write_offs = _decode_write_offs(body["WriteOffs"], invoice.currency)

    amount = body.get("Amount")
    amount_currency = body.get("AmountCurrency")
    if amount in (None, "") and amount_currency in (None, ""):
        if creating:
            raise f.invalid_value("InvoicePayment.Amount", "Amount or AmountCurrency is required")
        return
    unit = Decimal(payment.currency_unit or 1)
    rate = payment.currency_rate
    if amount_currency not in (None, ""):
        payment.amount_currency = f.as_decimal("InvoicePayment.AmountCurrency", amount_currency)
        payment.amount = (
            f.as_decimal("InvoicePayment.Amount", amount)
            if amount not in (None, "")
            else money(payment.amount_currency * rate / unit)
        )
    else:
        payment.amount = f.as_decimal("InvoicePayment.Amount", amount)
        payment.amount_currency = money(payment.amount * unit / rate)
    if invoice.currency == "SEK" and payment.amount != payment.amount_currency:
        raise f.invalid_value(
            "InvoicePayment.AmountCurrency", "must equal Amount for a SEK invoice"
        )


def _decode_write_offs(raw: Any, currency: str) -> list[WriteOff]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise f.invalid_value("InvoicePayment.WriteOffs", "expected a list")
    write_offs = []
    for index, item in enumerate(raw):
        where = f"InvoicePayment.WriteOffs[{index}]"
        if not isinstance(item, dict):
            raise f.invalid_value(where, "each write-off must be an object")
        f.check_field_names(item, WRITE_OFF_FIELDS, (), where)
        if item.get("Amount") in (None, "") or item.get("AccountNumber") in (None, ""):
            raise f.invalid_value(where, "Amount and AccountNumber are required")
        write_offs.append(
            WriteOff(
                amount=f.as_decimal(f"{where}.Amount", item["Amount"]),
                account_number=f.as_account(f"{where}.AccountNumber", item["AccountNumber"]),
                currency=f.as_text(f"{where}.Currency", item.get("Currency")) or currency,
                description=f.as_text(f"{where}.Description", item.get("Description")),
                cost_center=f.as_text(f"{where}.CostCenter", item.get("CostCenter")),
                project=f.as_text(f"{where}.Project", item.get("Project")),
                transaction_information=f.as_text(
                    f"{where}.TransactionInformation", item.get("TransactionInformation")
                ),
            )
        )
    return write_offs


def _settle(invoice: Invoice, payment: Payment, now: datetime) -> None:
    """Apply the payment to the invoice balance, enforcing sign and size."""
    if invoice.cancelled:
        raise rule_violation(f"Invoice {invoice.document_number} is cancelled")
    settles = payment.settles
    balance = invoice.balance
    if settles == 0:
        raise f.invalid_value("InvoicePayment.Amount", "a payment must not be zero")
    if balance == 0:
        raise rule_violation(f"Invoice {invoice.document_number} is already fully paid")
    if (settles > 0) != (balance > 0):
        raise rule_violation(
            f"Payment {settles} has the wrong sign for invoice {invoice.document_number} "
            f"with balance {balance} (a credit invoice takes a negative payment, a refund)"
        )
    if abs(settles) > abs(balance):
        raise rule_violation(
            f"Payment {settles} exceeds the open balance {balance} "
            f"of invoice {invoice.document_number}"
        )
    invoice.settled += settles
    invoice.final_pay_date = payment.payment_date if invoice.balance == 0 else None
    invoice.last_modified = now
