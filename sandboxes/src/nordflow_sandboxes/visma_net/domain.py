"""The records one Visma.net sandbox company holds, and the document arithmetic it performs."""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

from nordflow_schemas.money import money
from starlette.requests import Request
from starlette.responses import Response

from nordflow_sandboxes.kit.faults import Fault as KitFault
from nordflow_sandboxes.kit.state import RequestRecord as KitRequestRecord
from nordflow_sandboxes.kit.values import ZERO

# Sandbox VAT codes (the Norwegian SAF-T standard tax codes for sales); `vatCodeId` must be one.
VAT_CODES: dict[str, tuple[Decimal, str]] = {
    "3": (Decimal(25), "Output VAT, high rate"),
    "31": (Decimal(15), "Output VAT, medium rate"),
    "33": (Decimal(12), "Output VAT, low rate"),
    "5": (ZERO, "No output VAT"),
    "6": (ZERO, "Outside the scope of VAT"),
}
DEFAULT_VAT_CODE = "3"
DEFAULT_SALES_ACCOUNT = "3000"


def credit_days(terms_id: str) -> int:
    """Days of credit a terms id stands for in the sandbox (its leading digits; else 30)."""
    digits = ""
    for char in terms_id:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else 30


@dataclass
class Customer:
    """A customer card."""

    internal_id: int
    number: str
    name: str
    status: str
    currency_id: str
    credit_terms_id: str
    corporate_id: str | None
    vat_registration_id: str | None
    gln: str | None
    email: str | None
    accept_auto_invoices: bool
    send_invoices_by_email: bool
    address: dict[str, str | None]
    note: str | None
    created: datetime
    last_modified: datetime
    rowversion: int


@dataclass
class InvoiceLine:
    """One line of a customer invoice."""

    line_number: int
    inventory_number: str | None
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    vat_code_id: str
    account_number: str
    uom: str | None
    note: str | None

    @property
    def vat_rate(self) -> Decimal:
        """The VAT rate of the line's VAT code, in percent."""
        return VAT_CODES[self.vat_code_id][0]

    @property
    def discount_amount(self) -> Decimal:
        """The discount taken off the line."""
        return money(self.quantity * self.unit_price * self.discount_percent / 100)

    @property
    def amount(self) -> Decimal:
        """Quantity times price less the discount, rounded to cents (VAT excluded)."""
        return money(self.quantity * self.unit_price) - self.discount_amount


@dataclass
class PaymentLine:
    """One document a payment (or a credit note) applies to."""

    document_type: str
    ref_nbr: str
    amount_paid: Decimal


@dataclass
class Invoice:
    """A customer document (type Invoice or CreditNote) and its open balance.

    Amounts are kept in the document currency; the base-currency fields Visma.net also shows
    are those amounts at `exchange_rate` (base units per document unit). A credit note names
    the invoices it credits in its application lines (`applicationLines` on create,
    `applications` when read).
    """

    reference_number: str
    customer_number: str
    customer_name: str
    document_date: date
    due_date: date
    currency_id: str
    credit_terms_id: str
    status: str  # Hold | Balanced | Open | Closed
    lines: list[InvoiceLine]
    payment_reference: str
    external_reference: str | None
    customer_ref_number: str | None
    invoice_text: str | None
    note: str | None
    created: datetime
    last_modified: datetime
    rowversion: int
    balance: Decimal = ZERO
    document_type: str = "Invoice"
    exchange_rate: Decimal = Decimal(1)
    orig_invoice_date: date | None = None
    application_lines: list[PaymentLine] = field(default_factory=list)

    @property
    def credit_note(self) -> bool:
        """Whether the document is a credit note."""
        return self.document_type == "CreditNote"

    def base(self, amount: Decimal) -> Decimal:
        """A document-currency amount in the company's base currency, rounded to cents."""
        return money(amount * self.exchange_rate)

    @property
    def hold(self) -> bool:
        """Whether the document is a draft on hold."""
        return self.status == "Hold"

    @property
    def released(self) -> bool:
        """Whether the document is released (open or closed)."""
        return self.status in {"Open", "Closed"}

    @property
    def detail_total(self) -> Decimal:
        """Sum of the lines, VAT excluded."""
        return sum((line.amount for line in self.lines), ZERO)

    def tax_details(self) -> list[tuple[str, Decimal, Decimal, Decimal]]:
        """Per VAT code: (code, rate, taxable amount, VAT amount rounded to cents)."""
        taxable: dict[str, Decimal] = {}
        for line in self.lines:
            taxable[line.vat_code_id] = taxable.get(line.vat_code_id, ZERO) + line.amount
        return [
            (code, VAT_CODES[code][0], base, money(base * VAT_CODES[code][0] / 100))
            for code, base in sorted(taxable.items())
        ]

    @property
    def vat_total(self) -> Decimal:
        """Total VAT of the document."""
        return sum((vat for *_rest, vat in self.tax_details()), ZERO)

    @property
    def vat_taxable_total(self) -> Decimal:
        """The part of the lines subject to a non-zero VAT rate."""
        return sum((base for _code, rate, base, _vat in self.tax_details() if rate), ZERO)

    @property
    def vat_exempt_total(self) -> Decimal:
        """The part of the lines without VAT."""
        return sum((base for _code, rate, base, _vat in self.tax_details() if not rate), ZERO)

    @property
    def amount(self) -> Decimal:
        """The document total, VAT included."""
        return self.detail_total + self.vat_total


@dataclass
class Payment:
    """A customer payment; it changes the invoices' balances only when released."""

    ref_nbr: str
    type: str
    status: str  # Hold | Balanced | Open | Closed
    application_date: date
    payment_ref: str | None
    customer_number: str
    customer_name: str
    payment_method: str | None
    cash_account: str | None
    currency: str
    payment_amount: Decimal
    invoice_text: str | None
    lines: list[PaymentLine]
    created: datetime
    last_modified: datetime
    rowversion: int

    @property
    def hold(self) -> bool:
        """Whether the payment is a draft on hold."""
        return self.status == "Hold"

    @property
    def released(self) -> bool:
        """Whether the payment has been released (its applications are booked)."""
        return self.status in {"Open", "Closed"}

    @property
    def applied(self) -> Decimal:
        """The amount applied to documents."""
        return sum((line.amount_paid for line in self.lines), ZERO)

    @property
    def available_balance(self) -> Decimal:
        """What is left of the payment after its applications."""
        return self.payment_amount - self.applied


@dataclass
class Fault(KitFault):
    """A fault whose path prefix matches in any letter case, as Visma.net's paths do."""

    def matches(self, method: str, path: str) -> bool:
        """True when the request is one this fault targets."""
        return (
            self.remaining > 0
            and path.lower().startswith(self.path_prefix.lower())
            and (self.method is None or self.method == method)
        )


@dataclass(frozen=True)
class RequestRecord(KitRequestRecord):
    """One request as the company's request log shows it, with its If-Match header."""

    if_match: str | None = None

    @classmethod
    def of(
        cls, at: datetime, request: Request, path: str, response: Response, faulted: bool
    ) -> Self:
        """The record of `request`, with the ETag it sent as If-Match."""
        record = super().of(at, request, path, response, faulted)
        return dataclasses.replace(record, if_match=request.headers.get("if-match"))

    def as_json(self) -> dict[str, Any]:
        """The admin view of the record."""
        return {**super().as_json(), "if_match": self.if_match}


@dataclass
class Company:
    """One Visma.net company: its registers, number series, injected faults and request log."""

    company_id: str
    name: str
    created: datetime
    customers: dict[str, Customer] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    faults: list[KitFault] = field(default_factory=list)
    requests: deque[KitRequestRecord] = field(default_factory=deque)
    last_invoice_number: int = 100_000
    last_payment_number: int = 0
    last_customer_internal_id: int = 0

    def next_invoice_number(self) -> str:
        """The next free number of the invoice series (`100001`, `100002`, ...)."""
        while True:
            self.last_invoice_number += 1
            candidate = str(self.last_invoice_number)
            if candidate not in self.invoices:
                return candidate

    def next_payment_number(self) -> str:
        """The next number of the payment series (`000001`, ...)."""
        self.last_payment_number += 1
        return f"{self.last_payment_number:06d}"

    def next_customer_number(self) -> str:
        """Highest numeric customer number + 1, starting at 10000."""
        numeric = [int(n) for n in self.customers if n.isdigit()]
        return str(max([9999, *numeric]) + 1)
