"""eAccounting use cases on one company: paging, customers, invoices, payments (callers lock)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.values import ZERO, ocr_for_document
from nordflow_sandboxes.visma_eaccounting.domain import (
    BANK_CHARGE,
    COMPLETE_PAYMENT,
    Article,
    BankAccount,
    Company,
    Customer,
    Invoice,
    InvoiceRow,
    Payment,
)
from nordflow_sandboxes.visma_eaccounting.errors import (
    CONFLICT,
    DATA_MODEL_VALIDATION_ERROR,
    FUTURE_DATE_CANNOT_BE_SET,
    INVALID_INPUT,
    QUERY_PARAMETER_ERROR,
    RESOURCE_NOT_FOUND,
    VismaApiError,
    invalid_field,
    not_found,
    rule_violation,
)

T = TypeVar("T")
Query = Mapping[str, str]
Body = dict[str, Any]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
NO_DOMESTIC_AMOUNT_ON_DOMESTIC_INVOICE = 4039
PAGING_PARAMETERS = frozenset({"$page", "$pagesize"})

# Writable customer text fields and their documented maximum lengths (CustomerApi).
CUSTOMER_TEXT_FIELDS: dict[str, int] = {
    "CustomerNumber": 16,
    "CorporateIdentityNumber": 20,
    "ContactPersonEmail": 255,
    "ContactPersonMobile": 50,
    "ContactPersonName": 100,
    "ContactPersonPhone": 50,
    "CurrencyCode": 3,
    "EmailAddress": 255,
    "InvoiceAddress1": 50,
    "InvoiceAddress2": 50,
    "InvoiceCountryCode": 2,
    "DeliveryAddress1": 50,
    "DeliveryAddress2": 50,
    "DeliveryCity": 50,
    "DeliveryCountryCode": 2,
    "DeliveryPostalCode": 10,
    "DeliveryCustomerName": 100,
    "Note": 4000,
    "MobilePhone": 50,
    "Telephone": 50,
    "VatNumber": 20,
    "WwwAddress": 255,
    "EdiGlnNumber": 255,
    "GLN": 255,
    "SalesDocumentLanguage": 2,
    "ElectronicAddress": 255,
    "ElectronicReference": 35,
    "EdiServiceDelivererId": 255,
}
CUSTOMER_REQUIRED_TEXT: dict[str, int] = {"Name": 50, "InvoiceCity": 50, "InvoicePostalCode": 10}
CUSTOMER_BOOL_FIELDS = ("IsPrivatePerson", "ReverseChargeOnConstructionServices")

# Writable invoice text fields stored as given (CustomerInvoiceApi).
INVOICE_TEXT_FIELDS: dict[str, int] = {
    "YourReference": 100,
    "OurReference": 100,
    "BuyersOrderReference": 35,
    "ElectronicReference": 2000,
    "InvoiceAddress1": 50,
    "InvoiceAddress2": 50,
    "InvoicePostalCode": 50,
    "InvoiceCity": 50,
    "InvoiceCountryCode": 2,
    "DeliveryCustomerName": 100,
    "DeliveryAddress1": 50,
    "DeliveryAddress2": 50,
    "DeliveryPostalCode": 10,
    "DeliveryCity": 50,
    "DeliveryCountryCode": 2,
    "SubscriptionNumber": 100,
    "ContractNumber": 100,
}
# Defaults the invoice takes from the customer card when the request leaves them out.
INVOICE_FROM_CUSTOMER = {
    "InvoiceAddress1": "InvoiceAddress1",
    "InvoiceAddress2": "InvoiceAddress2",
    "InvoicePostalCode": "InvoicePostalCode",
    "InvoiceCity": "InvoiceCity",
    "InvoiceCountryCode": "InvoiceCountryCode",
    "ElectronicReference": "ElectronicReference",
}


# ------------------------------------------------------------------------------ decoding


def decode_body(raw: bytes) -> Body:
    """Decode a JSON object; numbers stay exact (`Decimal`), as money must."""
    try:
        document = json.loads(raw or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VismaApiError(
            400, DATA_MODEL_VALIDATION_ERROR, f"The request body is not valid JSON: {exc}"
        ) from exc
    if not isinstance(document, dict):
        raise VismaApiError(
            400, DATA_MODEL_VALIDATION_ERROR, "The request body must be a JSON object"
        )
    return document


class Fields:
    """Case-insensitive access to a request object, as eAccounting's JSON binding reads it.

    Properties the API does not know are ignored, like the real API does.
    """

    def __init__(self, body: Mapping[str, Any], where: str = "") -> None:
        self._values = {key.lower(): value for key, value in body.items()}
        self._where = where

    def _name(self, name: str) -> str:
        return f"{self._where}{name}"

    def raw(self, name: str) -> Any:
        """The value as sent, or None."""
        return self._values.get(name.lower())

    def present(self, name: str) -> bool:
        """True when the property was sent and is not null."""
        return self._values.get(name.lower()) is not None

    def text(self, name: str, max_length: int, *, required: bool = False) -> str | None:
        """A string of at most `max_length` characters."""
        value = self.raw(name)
        if value is None:
            if required:
                raise invalid_field(self._name(name), "The field is required.")
            return None
        if not isinstance(value, str):
            raise invalid_field(self._name(name), "Expected a string.")
        if required and not value.strip():
            raise invalid_field(self._name(name), "The field is required.")
        if len(value) > max_length:
            raise invalid_field(self._name(name), f"At most {max_length} characters.")
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        """A number (JSON number or numeric string)."""
        value = self.raw(name)
        if value is None:
            if required:
                raise invalid_field(self._name(name), "The field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise invalid_field(self._name(name), "Expected a number.")
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise invalid_field(self._name(name), "Expected a number.") from exc
        if not number.is_finite():
            raise invalid_field(self._name(name), "Expected a finite number.")
        return number

    def integer(self, name: str, *, low: int, high: int, required: bool = False) -> int | None:
        """An integer within [low, high]."""
        value = self.raw(name)
        if value is None:
            if required:
                raise invalid_field(self._name(name), "The field is required.")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise invalid_field(self._name(name), f"Expected an integer from {low} to {high}.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """A JSON boolean; absent means `default`, as for a non-nullable .NET bool."""
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid_field(self._name(name), "Expected true or false.")
        return value

    def uuid(self, name: str, *, required: bool = False) -> str | None:
        """A GUID, normalised to lower case."""
        value = self.raw(name)
        if value is None:
            if required:
                raise invalid_field(self._name(name), "The field is required.")
            return None
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as exc:
            raise invalid_field(self._name(name), "Expected a GUID.") from exc

    def date(self, name: str, *, required: bool = False) -> date | None:
        """`yyyy-mm-dd`, or a date-time of which the date counts."""
        value = self.raw(name)
        if value is None:
            if required:
                raise invalid_field(self._name(name), "The field is required.")
            return None
        if not isinstance(value, str):
            raise invalid_field(self._name(name), "Expected a date (yyyy-mm-dd).")
        try:
            return date.fromisoformat(value[:10])
        except ValueError as exc:
            raise VismaApiError(
                400, INVALID_INPUT, f"{self._name(name)}: {value!r} is not a valid date"
            ) from exc


def parse_utc(raw: str, name: str) -> datetime:
    """An RFC 3339 instant; without an offset it is taken as UTC (the parameter says Utc)."""
    text = raw.strip().replace(" ", "+") if "T" in raw else raw.strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise VismaApiError(
            400, INVALID_INPUT, f"{name}={raw!r} is not an RFC 3339 date-time"
        ) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -------------------------------------------------------------------------------- paging


@dataclass(frozen=True)
class Page:
    """One page of a list and the numbers for `Meta`."""

    items: list[Any]
    current_page: int
    page_size: int
    total_pages: int
    total_results: int


def query_of(params: Mapping[str, str]) -> dict[str, str]:
    """Query parameters with lower-case names (eAccounting reads them case-insensitively)."""
    return {key.lower(): value for key, value in params.items()}


def refuse_unsupported(query: Query, supported: frozenset[str] = frozenset()) -> None:
    """OData options the sandbox does not implement are refused, never silently ignored."""
    for key in query:
        if key.startswith("$") and key not in PAGING_PARAMETERS | supported:
            raise VismaApiError(
                400,
                QUERY_PARAMETER_ERROR,
                f"The sandbox does not implement {key}; only $page, $pagesize and the "
                "documented named filters are supported",
            )


def paginate(items: Sequence[T], query: Query) -> Page:
    """Apply `$page` (1-based) and `$pagesize` (default 50, at most 1000)."""
    page = _positive(query, "$page", 1)
    size = min(_positive(query, "$pagesize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
    start = (page - 1) * size
    return Page(
        items=list(items[start : start + size]),
        current_page=page,
        page_size=size,
        total_pages=math.ceil(len(items) / size),
        total_results=len(items),
    )


def _positive(query: Query, name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise VismaApiError(400, QUERY_PARAMETER_ERROR, f"{name} must be a positive integer")
    return int(raw)


# ----------------------------------------------------------------------------- customers


def get_customer(company: Company, customer_id: str) -> Customer:
    """A customer by id, or 404."""
    customer = company.customers.get(_path_uuid(customer_id))
    if customer is None:
        raise not_found("Customer", customer_id)
    return customer


def list_customers(company: Company, query: Query) -> list[Customer]:
    """Every customer, by customer number."""
    refuse_unsupported(query)
    return sorted(company.customers.values(), key=lambda c: (len(c.number), c.number))


def create_customer(company: Company, body: Body, now: datetime) -> Customer:
    """Create a customer; `CustomerNumber` is assigned when absent and must be unique."""
    fields = Fields(body)
    stored: dict[str, Any] = {}
    for name, max_length in CUSTOMER_REQUIRED_TEXT.items():
        stored[name] = fields.text(name, max_length, required=True)
    for name, max_length in CUSTOMER_TEXT_FIELDS.items():
        value = fields.text(name, max_length)
        if value is not None:
            stored[name] = value
    for name in CUSTOMER_BOOL_FIELDS:
        stored[name] = fields.boolean(name, False)
    stored["IsActive"] = fields.boolean("IsActive", True)
    terms = fields.uuid("TermsOfPaymentId")
    if terms is not None and terms != company.terms_of_payment_id:
        raise VismaApiError(400, RESOURCE_NOT_FOUND, f"TermsOfPaymentId {terms} was not found")
    stored["CurrencyCode"] = (stored.get("CurrencyCode") or company.currency).upper()
    number = stored.pop("CustomerNumber", None) or company.next_customer_number()
    if any(c.number == number for c in company.customers.values()):
        raise VismaApiError(400, CONFLICT, f"CustomerNumber {number} is already in use")
    customer = Customer(id=str(uuid.uuid4()), number=number, created=now, changed=now)
    customer.fields = stored
    company.customers[customer.id] = customer
    return customer


# ------------------------------------------------------------------------------ invoices


def get_invoice(company: Company, invoice_id: str) -> Invoice:
    """An invoice by id, or 404."""
    invoice = company.invoices.get(_path_uuid(invoice_id))
    if invoice is None:
        raise not_found("CustomerInvoice", invoice_id)
    return invoice


def list_invoices(company: Company, query: Query) -> list[Invoice]:
    """Invoices by number; `modifiedSinceUtc` keeps those modified at or after the instant.

    The order never changes when an invoice is modified, so paging while invoices change
    neither skips nor repeats one (new invoices only append).
    """
    refuse_unsupported(query)
    invoices = sorted(company.invoices.values(), key=lambda i: i.number)
    raw = query.get("modifiedsinceutc")
    if raw:
        since = parse_utc(raw, "modifiedSinceUtc")
        invoices = [i for i in invoices if i.modified >= since]
    return invoices


def create_invoice(company: Company, body: Body, now: datetime, today: date) -> Invoice:
    """Create (and book) a customer invoice; totals are computed from the rows."""
    fields = Fields(body)
    customer_id = fields.uuid("CustomerId", required=True)
    customer = company.customers.get(customer_id or "")
    if customer is None:
        raise VismaApiError(400, RESOURCE_NOT_FOUND, f"Customer {customer_id} was not found")
    if fields.integer("RotReducedInvoicingType", low=0, high=2) not in (None, 0):
        raise VismaApiError(
            400, DATA_MODEL_VALIDATION_ERROR, "The sandbox does not implement ROT/RUT invoices"
        )
    is_credit = fields.boolean("IsCreditInvoice", False)
    rows = _decode_rows(company, fields.raw("Rows"))
    currency = str(customer.fields.get("CurrencyCode") or company.currency)
    rate = fields.decimal("CurrencyRate")
    if currency == company.currency:
        if rate not in (None, Decimal(1)):
            raise invalid_field("CurrencyRate", "A domestic invoice has currency rate 1.")
        rate = Decimal(1)
    elif rate is None or rate <= 0:
        raise invalid_field("CurrencyRate", f"Required and positive for {currency} invoices.")
    invoice_date = fields.date("InvoiceDate") or today
    due_date = fields.date("DueDate") or invoice_date + timedelta(
        days=company.terms_of_payment_days
    )
    if due_date < invoice_date:
        raise invalid_field("DueDate", "The due date is before the invoice date.")
    stored: dict[str, Any] = {}
    for name, max_length in INVOICE_TEXT_FIELDS.items():
        value = fields.text(name, max_length)
        if value is None and name in INVOICE_FROM_CUSTOMER:
            value = customer.fields.get(INVOICE_FROM_CUSTOMER[name])
        if value is not None:
            stored[name] = value
    stored["EuThirdParty"] = fields.boolean("EuThirdParty", False)
    stored["SendType"] = fields.integer("SendType", low=0, high=4)
    number = company.next_invoice_number
    invoice = Invoice(
        id=str(uuid.uuid4()),
        number=number,
        customer=customer,
        is_credit=is_credit,
        currency=currency,
        currency_rate=rate,
        invoice_date=invoice_date,
        due_date=due_date,
        delivery_date=fields.date("DeliveryDate"),
        rows=rows,
        created=now,
        modified=now,
        payment_reference=ocr_for_document(number),
        fields=stored,
    )
    total = invoice.total_ic
    if is_credit and total > 0:
        raise rule_violation("A credit invoice must have a total of zero or less")
    if not is_credit and total < 0:
        raise rule_violation("An invoice with a negative total must be a credit invoice")
    company.next_invoice_number += 1
    company.invoices[invoice.id] = invoice
    return invoice


def credit_invoice(
    company: Company, invoice_id: str, now: datetime, today: date, invoice_date: date | None = None
) -> Invoice:
    """Credit a booked invoice in full, as eAccounting's "Kreditera" does.

    The credit invoice has the original's rows with negated quantities, its currency and rate,
    and `ReferringInvoiceId` naming the original. The API has no endpoint for this (it shows
    `ReferringInvoiceId` read-only), so the sandbox offers it as an admin action.
    """
    original = get_invoice(company, invoice_id)
    if original.is_credit:
        raise rule_violation("A credit invoice cannot be credited")
    day = invoice_date or today
    if day < original.invoice_date:
        raise invalid_field(
            "InvoiceDate", "A credit invoice cannot predate the invoice it credits."
        )
    number = company.next_invoice_number
    credit = Invoice(
        id=str(uuid.uuid4()),
        number=number,
        customer=original.customer,
        is_credit=True,
        currency=original.currency,
        currency_rate=original.currency_rate,
        invoice_date=day,
        due_date=day,
        delivery_date=None,
        rows=[
            InvoiceRow(
                id=str(uuid.uuid4()),
                line_number=row.line_number,
                article=row.article,
                text=row.text,
                unit_price=row.unit_price,
                quantity=-row.quantity,
                discount=row.discount,
                is_vat_free=row.is_vat_free,
            )
            for row in original.rows
        ],
        created=now,
        modified=now,
        payment_reference=ocr_for_document(number),
        fields=dict(original.fields),
        referring_invoice_id=original.id,
    )
    company.next_invoice_number += 1
    company.invoices[credit.id] = credit
    return credit


def _decode_rows(company: Company, raw: Any) -> list[InvoiceRow]:
    if not isinstance(raw, list) or not raw:
        raise invalid_field("Rows", "At least one row is required.")
    rows = []
    for index, item in enumerate(raw):
        where = f"Rows[{index}]."
        if not isinstance(item, dict):
            raise invalid_field(f"Rows[{index}]", "Expected an object.")
        row = Fields(item, where)
        article: Article | None = None
        article_id = row.uuid("ArticleId")
        if article_id is not None:
            article = company.articles.get(article_id)
            if article is None:
                raise VismaApiError(
                    400, RESOURCE_NOT_FOUND, f"{where}ArticleId {article_id} was not found"
                )
        text = row.text("Text", 2000)
        unit_price = row.decimal("UnitPrice")
        quantity = row.decimal("Quantity") or ZERO
        discount = row.decimal("DiscountPercentage") or ZERO
        if not ZERO <= discount <= 1:
            raise invalid_field(f"{where}DiscountPercentage", "Between 0 and 1 (a fraction).")
        if article is None:
            if not text:
                raise invalid_field(f"{where}Text", "A text row needs at least one character.")
            if unit_price not in (None, ZERO) or quantity != 0:
                raise invalid_field(
                    f"{where}ArticleId", "A row with a price or quantity needs an article."
                )
        if unit_price is not None and unit_price != money(unit_price):
            raise invalid_field(f"{where}UnitPrice", "At most 2 decimals for domestic invoices.")
        rows.append(
            InvoiceRow(
                id=str(uuid.uuid4()),
                line_number=index,
                article=article,
                text=text or (article.name if article else ""),
                unit_price=(
                    unit_price
                    if unit_price is not None
                    else (article.net_price if article else ZERO)
                ),
                quantity=quantity,
                discount=discount,
                is_vat_free=row.boolean("IsVatFree", False),
            )
        )
    return rows


# ------------------------------------------------------------------------- bank accounts


def create_bank_account(company: Company, body: Body) -> BankAccount:
    """`POST /v2/bankaccounts`: an account payments can be registered to, on its ledger
    account (e.g. 1512 for what a factor owes)."""
    fields = Fields(body)
    name = fields.text("Name", 200, required=True)
    ledger = fields.integer("LedgerAccountNumber", low=1000, high=9999, required=True)
    assert name is not None
    assert ledger is not None
    if any(b.ledger_account_number == ledger for b in company.bank_accounts.values()):
        raise rule_violation(f"A bank account on ledger account {ledger} exists already")
    account = BankAccount(
        str(uuid.uuid4()),
        name,
        fields.text("BankAccountNumber", 50) or "",
        ledger,
        (fields.text("CurrencyCode", 3) or company.currency).upper(),
    )
    company.bank_accounts[account.id] = account
    return account


# ------------------------------------------------------------------------------ payments


def create_payment(
    company: Company, invoice_id: str, body: Body, now: datetime, today: date
) -> Payment:
    """Register a payment: it reduces `RemainingAmount` and is refused beyond it."""
    invoice = get_invoice(company, invoice_id)
    fields = Fields(body)
    account_id = fields.uuid("CompanyBankAccountId", required=True)
    if account_id not in company.bank_accounts:
        raise VismaApiError(
            400, RESOURCE_NOT_FOUND, f"CompanyBankAccountId {account_id} was not found"
        )
    amount = fields.decimal("PaymentAmount", required=True)
    currency = fields.text("PaymentCurrency", 3, required=True)
    payment_date = fields.date("PaymentDate", required=True)
    payment_type = fields.integer("PaymentType", low=1, high=4, required=True)
    bank_fee = fields.decimal("BankFeeAmount") or ZERO
    factoring_fee = fields.decimal("FactoringFeeAmount") or ZERO
    factoring_account = fields.integer("FactoringFeeAccountNumber", low=1000, high=99_999_999)
    domestic_amount = fields.decimal("DomesticPaymentAmount")
    # required=True above guarantees these
    assert amount is not None
    assert currency is not None
    assert payment_date is not None
    assert payment_type is not None
    if currency.upper() != invoice.currency:
        raise invalid_field("PaymentCurrency", f"The invoice is in {invoice.currency}.")
    if payment_date > today:
        raise VismaApiError(400, FUTURE_DATE_CANNOT_BE_SET, "PaymentDate cannot be in the future")
    if domestic_amount is not None and invoice.currency == company.currency:
        raise VismaApiError(
            400,
            NO_DOMESTIC_AMOUNT_ON_DOMESTIC_INVOICE,
            "DomesticPaymentAmount is only for invoices in a foreign currency",
        )
    if not ZERO <= bank_fee <= Decimal(1_000_000_000):
        raise invalid_field("BankFeeAmount", "Between 0 and 1000000000.")
    if factoring_fee and factoring_account is None:
        raise invalid_field("FactoringFeeAccountNumber", "Required with a FactoringFeeAmount.")
    for name, value in (("PaymentAmount", amount), ("FactoringFeeAmount", factoring_fee)):
        if value != money(value):
            raise invalid_field(name, "At most 2 decimals.")
    payment = Payment(
        bank_transaction_id=str(uuid.uuid4()),
        invoice_id=invoice.id,
        bank_account_id=account_id,
        amount=amount,
        currency=invoice.currency,
        payment_date=payment_date,
        payment_type=payment_type,
        bank_fee=bank_fee,
        factoring_fee=factoring_fee,
        factoring_fee_account=factoring_account,
        reference=fields.text("Reference", 100),
        domestic_amount=domestic_amount,
        created=now,
    )
    _check_settlement(invoice, payment)
    invoice.payments.append(payment)
    invoice.modified = now
    if invoice.remaining_ic == 0:
        invoice.payment_date = payment_date
    return payment


def _check_settlement(invoice: Invoice, payment: Payment) -> None:
    remaining = invoice.remaining_ic
    settled = payment.settled
    if remaining == 0:
        raise rule_violation(f"Invoice {invoice.number} is already fully paid")
    if settled == 0 or (settled > 0) != (remaining > 0):
        raise rule_violation(
            f"The payment must settle part of the remaining amount {remaining} of invoice "
            f"{invoice.number}"
        )
    if abs(settled) > abs(remaining):
        raise rule_violation(
            f"Overpayment: the payment settles {settled} but only {remaining} remains on "
            f"invoice {invoice.number}"
        )
    if payment.payment_type == COMPLETE_PAYMENT and settled != remaining:
        raise rule_violation(
            f"A CompletePayment must settle the whole remaining amount {remaining}"
        )
    if payment.payment_type == BANK_CHARGE and payment.bank_fee:
        raise invalid_field("BankFeeAmount", "A BankCharge payment is itself the fee.")


def _path_uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise VismaApiError(400, INVALID_INPUT, f"{raw!r} is not a valid GUID") from exc
