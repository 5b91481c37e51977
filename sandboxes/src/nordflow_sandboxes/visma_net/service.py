"""Use cases of the Visma.net sandbox on one company: customers, invoices, customer payments."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.values import ZERO
from nordflow_sandboxes.visma_net.domain import (
    DEFAULT_SALES_ACCOUNT,
    DEFAULT_VAT_CODE,
    VAT_CODES,
    Company,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentLine,
    credit_days,
)
from nordflow_sandboxes.visma_net.errors import bad_request, not_found, precondition_failed
from nordflow_sandboxes.visma_net.values import (
    CONDITIONS,
    as_bool,
    as_date,
    as_decimal,
    as_text,
    compare,
    etag_matches,
    etag_of,
    kid_for,
    parse_filter_moment,
    unwrap,
)

if TYPE_CHECKING:
    from nordflow_sandboxes.visma_net.state import VismaNetState

T = TypeVar("T")

CUSTOMER_STATUSES = frozenset({"Active", "OnHold", "CreditHold", "Inactive", "OneTime"})
SUPPORTED_PAYMENT_TYPES = frozenset({"Payment", "Refund"})
# What each payment type settles: a payment pays invoices, a refund pays out credit notes.
SETTLED_BY = {"Payment": "Invoice", "Refund": "CreditNote"}
# Fields a PUT may change before release, and the few it may still change after release.
EDITABLE_BEFORE_RELEASE = frozenset(
    {
        "documentDueDate",
        "documentDate",
        "invoiceText",
        "note",
        "externalReference",
        "customerRefNumber",
        "paymentReference",
        "hold",
    }
)
EDITABLE_AFTER_RELEASE = frozenset({"documentDueDate", "note"})


@dataclass(frozen=True)
class Page:
    """One page of a list, and the facts for each item's `metadata`."""

    items: list[Any]
    total_count: int
    max_page_size: int


# ---------------------------------------------------------------------------- helpers


def decode_body(raw: bytes) -> dict[str, Any]:
    """The JSON object a POST or PUT carries."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    return body


def lower_query(query: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query parameters with lower-cased names (the API binds them case-insensitively)."""
    return {key.lower(): value for key, value in query}


def _positive_int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name.lower())
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"'{name}' must be an integer, got '{raw}'") from exc
    if value < 1:
        raise bad_request(f"'{name}' must be at least 1")
    return value


def paginate(items: list[T], query: dict[str, str], state: VismaNetState) -> Page:
    """Apply `pageNumber`/`pageSize`; a size above the maximum is limited to the maximum."""
    number = _positive_int(query, "pageNumber", 1)
    size = min(_positive_int(query, "pageSize", state.default_page_size), state.max_page_size)
    start = (number - 1) * size
    return Page(items[start : start + size], len(items), state.max_page_size)


def filter_modified(
    items: list[T], query: dict[str, str], state: VismaNetState, stamp: Callable[[T], Any]
) -> list[T]:
    """Apply `lastModifiedDateTime` + `lastModifiedDateTimeCondition` (default `>=`)."""
    raw = query.get("lastmodifieddatetime")
    if not raw:
        return items
    condition = query.get("lastmodifieddatetimecondition") or ">="
    if condition not in CONDITIONS:
        raise bad_request(
            f"Invalid lastModifiedDateTimeCondition '{condition}': use >, >=, < or <="
        )
    moment = parse_filter_moment(raw, state.api_timezone)
    return [item for item in items if compare(stamp(item), condition, moment)]


def _check_if_match(if_match: str | None, rowversion: int, resource: str) -> None:
    if if_match is not None and not etag_matches(if_match, etag_of(rowversion)):
        raise precondition_failed(resource)


def _required_text(body: dict[str, Any], name: str, max_length: int | None = None) -> str:
    value = as_text(name, unwrap(body, name), max_length)
    if not value:
        raise bad_request(f"'{name}' is required")
    return value


# -------------------------------------------------------------------------- customers


def create_customer(company: Company, body: dict[str, Any], state: VismaNetState) -> Customer:
    """`POST /v1/customer`: a new customer card (number assigned when absent)."""
    number = as_text("number", unwrap(body, "number"), 30)
    if number is None or number == "":
        number = company.next_customer_number()
    elif number in company.customers:
        raise bad_request(f"Customer number '{number}' is already in use")
    name = _required_text(body, "name", 255)
    status = as_text("status", unwrap(body, "status")) or "Active"
    if status not in CUSTOMER_STATUSES:
        raise bad_request(f"'status' must be one of {', '.join(sorted(CUSTOMER_STATUSES))}")
    contact = unwrap(body, "mainContact")
    email = None
    if isinstance(contact, dict):
        email = as_text("mainContact.email", unwrap(contact, "email"), 255)
    address_raw = unwrap(body, "mainAddress")
    address: dict[str, str | None] = {}
    if isinstance(address_raw, dict):
        for key in ("addressLine1", "addressLine2", "postalCode", "city", "countryId"):
            address[key] = as_text(f"mainAddress.{key}", unwrap(address_raw, key), 100)
    now = state.now()
    company.last_customer_internal_id += 1
    customer = Customer(
        internal_id=company.last_customer_internal_id,
        number=number,
        name=name,
        status=status,
        currency_id=as_text("currencyId", unwrap(body, "currencyId"), 5) or "NOK",
        credit_terms_id=as_text("creditTermsId", unwrap(body, "creditTermsId"), 10) or "30",
        corporate_id=as_text("corporateId", unwrap(body, "corporateId"), 50),
        vat_registration_id=as_text("vatRegistrationId", unwrap(body, "vatRegistrationId"), 50),
        gln=as_text("gln", unwrap(body, "gln"), 13),
        email=email,
        accept_auto_invoices=bool(
            as_bool("acceptAutoInvoices", unwrap(body, "acceptAutoInvoices"))
        ),
        send_invoices_by_email=bool(
            as_bool("sendInvoicesByEmail", unwrap(body, "sendInvoicesByEmail"))
        ),
        address=address,
        note=as_text("note", unwrap(body, "note")),
        created=now,
        last_modified=now,
        rowversion=state.next_rowversion(),
    )
    company.customers[number] = customer
    return customer


def get_customer(company: Company, number: str) -> Customer:
    """One customer card, or a 404."""
    customer = company.customers.get(number)
    if customer is None:
        raise not_found(f"Customer {number} not found")
    return customer


def list_customers(company: Company, query: dict[str, str], state: VismaNetState) -> Page:
    """`GET /v1/customer`: by number; `status`, `name` and lastModified filters."""
    items = sorted(company.customers.values(), key=lambda c: (len(c.number), c.number))
    if status := query.get("status"):
        items = [c for c in items if c.status.lower() == status.lower()]
    if name := query.get("name"):
        items = [c for c in items if name.lower() in c.name.lower()]
    items = filter_modified(items, query, state, lambda c: c.last_modified)
    return paginate(items, query, state)


# --------------------------------------------------------------------------- invoices


def _decode_line(raw: Any, index: int, lines_key: str = "invoiceLines") -> InvoiceLine:
    name = f"{lines_key}[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(f"'{name}' must be an object")
    operation = raw.get("operation")
    if operation not in (None, "Insert"):
        raise bad_request(f"'{name}.operation' must be Insert on a new invoice")
    vat_code = as_text(f"{name}.vatCodeId", unwrap(raw, "vatCodeId")) or DEFAULT_VAT_CODE
    if vat_code not in VAT_CODES:
        raise bad_request(
            f"'{name}.vatCodeId' '{vat_code}' is not a VAT code of this company "
            f"(sandbox codes: {', '.join(VAT_CODES)})"
        )
    quantity = as_decimal(f"{name}.quantity", unwrap(raw, "quantity"))
    price = as_decimal(f"{name}.unitPriceInCurrency", unwrap(raw, "unitPriceInCurrency"))
    if price is None:
        price = as_decimal(f"{name}.unitPrice", unwrap(raw, "unitPrice"))
    discount = as_decimal(f"{name}.discountPercent", unwrap(raw, "discountPercent")) or ZERO
    if not ZERO <= discount <= 100:
        raise bad_request(f"'{name}.discountPercent' must be between 0 and 100")
    return InvoiceLine(
        line_number=index + 1,
        inventory_number=as_text(f"{name}.inventoryNumber", unwrap(raw, "inventoryNumber"), 30),
        description=as_text(f"{name}.description", unwrap(raw, "description"), 256),
        quantity=Decimal(1) if quantity is None else quantity,
        unit_price=ZERO if price is None else price,
        discount_percent=discount,
        vat_code_id=vat_code,
        account_number=as_text(f"{name}.accountNumber", unwrap(raw, "accountNumber"), 10)
        or DEFAULT_SALES_ACCOUNT,
        uom=as_text(f"{name}.uom", unwrap(raw, "uom"), 6),
        note=as_text(f"{name}.note", unwrap(raw, "note")),
    )


def create_invoice(company: Company, body: dict[str, Any], state: VismaNetState) -> Invoice:
    """`POST /v1/customerinvoice`: a new invoice, status Balanced (or Hold with `hold`)."""
    return _create_document(company, body, state, document_type="Invoice", lines_key="invoiceLines")


def create_credit_note(company: Company, body: dict[str, Any], state: VismaNetState) -> Invoice:
    """`POST /v1/customerCreditNote`: a credit note, its lines under `lines` (positive amounts).

    `applicationLines` (`documentType` Invoice, `refNbr`, `amountPaid` VAT included) name the
    invoices it credits; they must be the same customer's, in the same currency, and together
    take no more than the credit note's amount. `origInvoiceDate` defaults to the document
    date, as in Visma.net.
    """
    note = _create_document(company, body, state, document_type="CreditNote", lines_key="lines")
    raw = body.get("applicationLines") or []
    if not isinstance(raw, list):
        del company.invoices[note.reference_number]
        raise bad_request("'applicationLines' must be a list")
    try:
        lines = [_decode_application_line(item, index) for index, item in enumerate(raw)]
        for line in lines:
            _check_creditable(company, note, line)
        if sum((line.amount_paid for line in lines), ZERO) > note.amount:
            raise bad_request(
                f"The application lines take more than the credit note's amount {note.amount}"
            )
    except Exception:
        del company.invoices[note.reference_number]
        raise
    note.application_lines = lines
    return note


def _decode_application_line(raw: Any, index: int) -> PaymentLine:
    def creditable(document_type: str) -> str | None:
        if document_type in {"Invoice", "DebitNote"}:
            return None
        return f"{document_type} cannot be credited"

    return _decode_settling_line(raw, f"applicationLines[{index}]", "credit note", creditable)


def _decode_settling_line(
    raw: Any, name: str, record: str, refusal: Callable[[str], str | None]
) -> PaymentLine:
    """A line of a new payment or credit note naming a document it settles, and how much.

    `refusal` says why a document type cannot be settled by this `record`, if it cannot.
    """
    if not isinstance(raw, dict):
        raise bad_request(f"'{name}' must be an object")
    if raw.get("operation") not in (None, "Insert"):
        raise bad_request(f"'{name}.operation' must be Insert on a new {record}")
    document_type = as_text(f"{name}.documentType", unwrap(raw, "documentType")) or "Invoice"
    reason = refusal(document_type)
    if reason is not None:
        raise bad_request(f"'{name}.documentType' {reason}")
    ref_nbr = as_text(f"{name}.refNbr", unwrap(raw, "refNbr"), 15)
    if not ref_nbr:
        raise bad_request(f"'{name}.refNbr' is required")
    amount = as_decimal(f"{name}.amountPaid", unwrap(raw, "amountPaid"))
    if amount is None or amount <= 0:
        raise bad_request(f"'{name}.amountPaid' must be a positive amount")
    return PaymentLine(document_type, ref_nbr, money(amount))


def _check_creditable(company: Company, note: Invoice, line: PaymentLine) -> Invoice:
    invoice = company.invoices.get(line.ref_nbr)
    if invoice is None or invoice.credit_note:
        raise bad_request(f"Invoice {line.ref_nbr} does not exist")
    if invoice.customer_number != note.customer_number:
        raise bad_request(
            f"Invoice {line.ref_nbr} belongs to customer {invoice.customer_number}, "
            f"not {note.customer_number}"
        )
    if invoice.currency_id != note.currency_id:
        raise bad_request(
            f"Invoice {line.ref_nbr} is in {invoice.currency_id}, not {note.currency_id}"
        )
    return invoice


def _create_document(
    company: Company,
    body: dict[str, Any],
    state: VismaNetState,
    *,
    document_type: str,
    lines_key: str,
) -> Invoice:
    customer = company.customers.get(_required_text(body, "customerNumber"))
    if customer is None:
        raise bad_request(f"Customer '{unwrap(body, 'customerNumber')}' does not exist")
    reference = as_text("referenceNumber", unwrap(body, "referenceNumber"), 15)
    if reference and reference in company.invoices:
        raise bad_request(f"Document '{reference}' already exists")
    lines_raw = body.get(lines_key)
    if not isinstance(lines_raw, list) or not lines_raw:
        raise bad_request(f"'{lines_key}' must hold at least one line")
    lines = [_decode_line(raw, index, lines_key) for index, raw in enumerate(lines_raw)]
    document_date = as_date("documentDate", unwrap(body, "documentDate")) or state.today()
    terms = as_text("creditTermsId", unwrap(body, "creditTermsId"), 10) or customer.credit_terms_id
    due = as_date("documentDueDate", unwrap(body, "documentDueDate"))
    if due is None:
        due = document_date + timedelta(days=credit_days(terms))
    if due < document_date:
        raise bad_request("'documentDueDate' cannot be before 'documentDate'")
    rate = as_decimal("exchangeRate", unwrap(body, "exchangeRate"))
    if rate is not None and rate <= 0:
        raise bad_request("'exchangeRate' must be positive")
    reference = reference or company.next_invoice_number()
    hold = as_bool("hold", unwrap(body, "hold"))
    now = state.now()
    invoice = Invoice(
        reference_number=reference,
        customer_number=customer.number,
        customer_name=customer.name,
        document_date=document_date,
        due_date=due,
        currency_id=as_text("currencyId", unwrap(body, "currencyId"), 5) or customer.currency_id,
        credit_terms_id=terms,
        status="Hold" if hold else "Balanced",
        lines=lines,
        payment_reference=as_text("paymentReference", unwrap(body, "paymentReference"), 40)
        or kid_for(reference),
        external_reference=as_text("externalReference", unwrap(body, "externalReference"), 40),
        customer_ref_number=as_text("customerRefNumber", unwrap(body, "customerRefNumber"), 40),
        invoice_text=as_text("invoiceText", unwrap(body, "invoiceText"), 150),
        note=as_text("note", unwrap(body, "note")),
        created=now,
        last_modified=now,
        rowversion=state.next_rowversion(),
        document_type=document_type,
        exchange_rate=Decimal(1) if rate is None else rate,
        orig_invoice_date=as_date("origInvoiceDate", unwrap(body, "origInvoiceDate")),
    )
    invoice.balance = invoice.amount
    company.invoices[reference] = invoice
    return invoice


def get_invoice(company: Company, reference: str) -> Invoice:
    """One invoice, or a 404."""
    invoice = company.invoices.get(reference)
    if invoice is None:
        raise not_found(f"Invoice {reference} not found")
    return invoice


def list_invoices(company: Company, query: dict[str, str], state: VismaNetState) -> Page:
    """`GET /v1/customerinvoice`: by reference number; filters as documented, others ignored."""
    items = sorted(
        company.invoices.values(), key=lambda i: (len(i.reference_number), i.reference_number)
    )
    if status := query.get("status"):
        items = [i for i in items if i.status.lower() == status.lower()]
    if customer := query.get("customer"):
        items = [i for i in items if i.customer_number == customer]
    if document_type := query.get("documenttype"):
        items = [i for i in items if i.document_type.lower() == document_type.lower()]
    for param, attribute in (
        ("externalreference", "external_reference"),
        ("customerrefnumber", "customer_ref_number"),
    ):
        if wanted := query.get(param):
            items = [i for i in items if getattr(i, attribute) == wanted]
    items = filter_modified(items, query, state, lambda i: i.last_modified)
    return paginate(items, query, state)


def _touch_invoice(invoice: Invoice, state: VismaNetState) -> None:
    invoice.last_modified = state.now()
    invoice.rowversion = state.next_rowversion()


def update_invoice(
    company: Company,
    reference: str,
    body: dict[str, Any],
    if_match: str | None,
    state: VismaNetState,
) -> Invoice:
    """`PUT /v1/customerinvoice/{n}`: change header fields (only the due date once released)."""
    invoice = get_invoice(company, reference)
    _check_if_match(if_match, invoice.rowversion, f"Invoice {reference}")
    fields = {key for key, value in body.items() if value is not None}
    if invoice.status == "Closed":
        raise bad_request(f"Invoice {reference} is closed and cannot be changed")
    allowed = EDITABLE_AFTER_RELEASE if invoice.released else EDITABLE_BEFORE_RELEASE
    refused = sorted(fields - allowed)
    if refused:
        state_text = "a released invoice" if invoice.released else "an invoice in the sandbox"
        raise bad_request(f"{', '.join(refused)} cannot be changed on {state_text}")
    due = as_date("documentDueDate", unwrap(body, "documentDueDate")) or invoice.due_date
    document_date = as_date("documentDate", unwrap(body, "documentDate")) or invoice.document_date
    if due < document_date:
        raise bad_request("'documentDueDate' cannot be before 'documentDate'")
    invoice.due_date, invoice.document_date = due, document_date
    for name, attribute, limit in (
        ("invoiceText", "invoice_text", 150),
        ("note", "note", None),
        ("externalReference", "external_reference", 40),
        ("customerRefNumber", "customer_ref_number", 40),
        ("paymentReference", "payment_reference", 40),
    ):
        if name in fields:
            setattr(invoice, attribute, as_text(name, unwrap(body, name), limit))
    hold = as_bool("hold", unwrap(body, "hold"))
    if hold is not None:
        invoice.status = "Hold" if hold else "Balanced"
    _touch_invoice(invoice, state)
    return invoice


def release_invoice(
    company: Company, reference: str, if_match: str | None, state: VismaNetState
) -> Invoice:
    """`POST /v1/customerinvoice/{n}/action/release`: Balanced becomes Open."""
    invoice = get_invoice(company, reference)
    _check_if_match(if_match, invoice.rowversion, f"Invoice {reference}")
    if invoice.hold:
        raise bad_request(f"Invoice {reference} is on hold and cannot be released")
    if invoice.released:
        raise bad_request(f"Invoice {reference} is already released")
    # A credit note's applications are booked on release, all or nothing, like a payment's.
    credited = [_check_creditable(company, invoice, line) for line in invoice.application_lines]
    for target, line in zip(credited, invoice.application_lines, strict=True):
        if target.status != "Open" or line.amount_paid > target.balance:
            raise bad_request(
                f"Invoice {line.ref_nbr} is {target.status} with balance {target.balance}; "
                f"{line.amount_paid} cannot be applied"
            )
    for target, line in zip(credited, invoice.application_lines, strict=True):
        target.balance -= line.amount_paid
        if target.balance == 0:
            target.status = "Closed"
        _touch_invoice(target, state)
        invoice.balance -= line.amount_paid
    invoice.status = "Open" if invoice.balance else "Closed"
    _touch_invoice(invoice, state)
    return invoice


# --------------------------------------------------------------------------- payments


def _decode_payment_line(raw: Any, index: int, payment_type: str) -> PaymentLine:
    def payable(document_type: str) -> str | None:
        if document_type == SETTLED_BY[payment_type]:
            return None
        return f"{document_type} cannot be settled by a {payment_type} in the sandbox"

    return _decode_settling_line(raw, f"paymentLines[{index}]", "payment", payable)


def _check_applicable(company: Company, payment: Payment, line: PaymentLine) -> Invoice:
    invoice = company.invoices.get(line.ref_nbr)
    refund = payment.type == "Refund"
    if invoice is None or invoice.credit_note != refund:
        kind = "Credit note" if refund else "Invoice"
        raise bad_request(f"{kind} {line.ref_nbr} does not exist")
    if invoice.customer_number != payment.customer_number:
        raise bad_request(
            f"Invoice {line.ref_nbr} belongs to customer {invoice.customer_number}, "
            f"not {payment.customer_number}"
        )
    if invoice.status != "Open":
        raise bad_request(f"Invoice {line.ref_nbr} is {invoice.status}; only Open invoices apply")
    if invoice.currency_id != payment.currency:
        raise bad_request(
            f"Invoice {line.ref_nbr} is in {invoice.currency_id}, not {payment.currency}"
        )
    if line.amount_paid > invoice.balance:
        raise bad_request(
            f"Amount paid {line.amount_paid} exceeds the balance {invoice.balance} "
            f"of invoice {line.ref_nbr}"
        )
    return invoice


def create_payment(company: Company, body: dict[str, Any], state: VismaNetState) -> Payment:
    """`POST /v1/customerPayment`: a payment applying to invoices; balances wait for release."""
    payment_type = as_text("type", unwrap(body, "type")) or "Payment"
    if payment_type not in SUPPORTED_PAYMENT_TYPES:
        raise bad_request(f"Payment type '{payment_type}' is not supported by the sandbox")
    customer = company.customers.get(_required_text(body, "customer"))
    if customer is None:
        raise bad_request(f"Customer '{unwrap(body, 'customer')}' does not exist")
    lines_raw = body.get("paymentLines") or []
    if not isinstance(lines_raw, list):
        raise bad_request("'paymentLines' must be a list")
    lines = [_decode_payment_line(raw, index, payment_type) for index, raw in enumerate(lines_raw)]
    if len({line.ref_nbr for line in lines}) != len(lines):
        raise bad_request("A document may be applied only once per payment")
    applied = sum((line.amount_paid for line in lines), ZERO)
    amount = as_decimal("paymentAmount", unwrap(body, "paymentAmount"))
    amount = applied if amount is None else money(amount)
    if amount <= 0:
        raise bad_request("'paymentAmount' must be positive")
    if applied > amount:
        raise bad_request(f"The applied amount {applied} exceeds the payment amount {amount}")
    hold = as_bool("hold", unwrap(body, "hold"))
    now = state.now()
    payment = Payment(
        ref_nbr=company.next_payment_number(),
        type=payment_type,
        status="Hold" if hold else "Balanced",
        application_date=as_date("applicationDate", unwrap(body, "applicationDate"))
        or state.today(),
        payment_ref=as_text("paymentRef", unwrap(body, "paymentRef"), 40),
        customer_number=customer.number,
        customer_name=customer.name,
        payment_method=as_text("paymentMethod", unwrap(body, "paymentMethod"), 10),
        cash_account=as_text("cashAccount", unwrap(body, "cashAccount"), 10),
        currency=as_text("currency", unwrap(body, "currency"), 5) or customer.currency_id,
        payment_amount=amount,
        invoice_text=as_text("invoiceText", unwrap(body, "invoiceText"), 150),
        lines=lines,
        created=now,
        last_modified=now,
        rowversion=state.next_rowversion(),
    )
    for line in lines:
        _check_applicable(company, payment, line)
    company.payments[payment.ref_nbr] = payment
    return payment


def get_payment(company: Company, ref_nbr: str) -> Payment:
    """One payment, or a 404."""
    payment = company.payments.get(ref_nbr)
    if payment is None:
        raise not_found(f"Payment {ref_nbr} not found")
    return payment


def list_payments(company: Company, query: dict[str, str], state: VismaNetState) -> Page:
    """`GET /v1/customerPayment`: by number; `customer`, `invoiceRefNbr`, `status`, ..."""
    items = sorted(company.payments.values(), key=lambda p: p.ref_nbr)
    if customer := query.get("customer"):
        items = [p for p in items if p.customer_number == customer]
    if invoice := query.get("invoicerefnbr"):
        items = [p for p in items if any(line.ref_nbr == invoice for line in p.lines)]
    if status := query.get("status"):
        items = [p for p in items if p.status.lower() == status.lower()]
    if payment_type := query.get("paymenttype"):
        items = [p for p in items if p.type.lower() == payment_type.lower()]
    items = filter_modified(items, query, state, lambda p: p.last_modified)
    return paginate(items, query, state)


def applications_of(company: Company, invoice: Invoice) -> list[tuple[Payment, PaymentLine]]:
    """The payments applied to an invoice (released or not), oldest first."""
    return [
        (payment, line)
        for payment in sorted(company.payments.values(), key=lambda p: p.ref_nbr)
        for line in payment.lines
        if line.ref_nbr == invoice.reference_number
    ]


def credit_notes_of(company: Company, invoice: Invoice) -> list[tuple[Invoice, PaymentLine]]:
    """The credit notes applied to an invoice (released or not), by number."""
    return [
        (note, line)
        for note in sorted(company.invoices.values(), key=lambda i: i.reference_number)
        if note.credit_note
        for line in note.application_lines
        if line.ref_nbr == invoice.reference_number
    ]


def release_payment(
    company: Company,
    ref_nbr: str,
    body: dict[str, Any],
    if_match: str | None,
    state: VismaNetState,
) -> Payment:
    """`POST /v1/customerPayment/{n}/action/release`: book it, reducing the invoices' balances.

    All or nothing: every application is checked again before any balance changes.
    """
    payment = get_payment(company, ref_nbr)
    _check_if_match(if_match, payment.rowversion, f"Payment {ref_nbr}")
    wanted_type = as_text("type", unwrap(body, "type"))
    if wanted_type is not None and wanted_type != payment.type:
        raise bad_request(f"Payment {ref_nbr} is of type {payment.type}, not {wanted_type}")
    if payment.hold:
        raise bad_request(f"Payment {ref_nbr} is on hold and cannot be released")
    if payment.released:
        raise bad_request(f"Payment {ref_nbr} is already released")
    invoices = [_check_applicable(company, payment, line) for line in payment.lines]
    for invoice, line in zip(invoices, payment.lines, strict=True):
        invoice.balance -= line.amount_paid
        if invoice.balance == 0:
            invoice.status = "Closed"
        _touch_invoice(invoice, state)
    payment.status = "Closed" if payment.available_balance == 0 else "Open"
    payment.last_modified = state.now()
    payment.rowversion = state.next_rowversion()
    return payment
