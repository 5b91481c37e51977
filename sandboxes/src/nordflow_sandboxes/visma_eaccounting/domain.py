"""The records one eAccounting sandbox company holds, its OAuth grants, and invoice arithmetic."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from nordflow_schemas.money import money

from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.oauth import OAuthClient
from nordflow_sandboxes.kit.state import RequestRecord
from nordflow_sandboxes.kit.values import ZERO

__all__ = [
    "AccessGrant",
    "Article",
    "BankAccount",
    "Company",
    "Customer",
    "Fault",
    "Invoice",
    "InvoiceRow",
    "OAuthClient",
    "Payment",
    "RefreshGrant",
    "RequestRecord",
    "utc_text",
]

DEFAULT_SCOPE = "ea:api ea:sales offline_access"

# PaymentType as documented on InvoicePaymentApi.
PARTIAL_PAYMENT, COMPLETE_PAYMENT, ROUNDING, BANK_CHARGE = 1, 2, 3, 4
# PaymentStatus as documented on CustomerInvoiceApi.
PAID, UNPAID, OVERDUE = 0, 1, 2


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, like `ServerTimeUtc` ("2017-07-21T17:32:28Z")."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def date_text(day: date | None) -> str | None:
    """eAccounting's date-only fields are date-times at midnight without a zone."""
    return None if day is None else f"{day.isoformat()}T00:00:00"


# ------------------------------------------------------------------------------- OAuth


@dataclass
class RefreshGrant:
    """A one-time refresh token: redeeming it rotates it (`used` is set, a new one is issued)."""

    token: str
    client_id: str
    company_id: str
    scope: str
    issued: datetime
    used: datetime | None = None


@dataclass(frozen=True)
class AccessGrant:
    """A bearer access token for one client and company, valid until `expires`."""

    token: str
    client_id: str
    company_id: str
    scope: str
    expires: datetime

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes."""
        return frozenset(self.scope.split())


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Article:
    """A seeded article; its sales coding decides the VAT rate of rows that use it."""

    id: str
    number: str
    name: str
    vat_rate: Decimal
    net_price: Decimal
    is_service: bool = True


@dataclass(frozen=True)
class BankAccount:
    """A company bank account payments are registered to."""

    id: str
    name: str
    account_number: str
    ledger_account_number: int
    currency_code: str


@dataclass
class Customer:
    """A customer card: system fields plus the writable fields as given."""

    id: str
    number: str
    created: datetime
    changed: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class InvoiceRow:
    """One invoice row; a row without an article is a text row."""

    id: str
    line_number: int
    article: Article | None
    text: str
    unit_price: Decimal
    quantity: Decimal
    discount: Decimal
    is_vat_free: bool

    @property
    def is_text_row(self) -> bool:
        """Text rows carry no article and no amount."""
        return self.article is None

    @property
    def vat_rate(self) -> Decimal | None:
        """The row's VAT rate as a fraction (0.25); None for text rows."""
        if self.article is None:
            return None
        return ZERO if self.is_vat_free else self.article.vat_rate

    @property
    def amount(self) -> Decimal:
        """Quantity times unit price less the percentage discount, rounded to öre."""
        if self.is_text_row:
            return ZERO
        return money(self.quantity * self.unit_price * (1 - self.discount))


@dataclass
class Payment:
    """A registered customer invoice payment (`BankTransactionId` is its only identity)."""

    bank_transaction_id: str
    invoice_id: str
    bank_account_id: str
    amount: Decimal
    currency: str
    payment_date: date
    payment_type: int
    bank_fee: Decimal
    factoring_fee: Decimal
    factoring_fee_account: int | None
    reference: str | None
    domestic_amount: Decimal | None
    created: datetime

    @property
    def settled(self) -> Decimal:
        """What the payment takes off the invoice: the fees are part of the settlement."""
        return self.amount + self.bank_fee + self.factoring_fee


@dataclass
class Invoice:
    """A booked customer invoice with its rows, totals and remaining amount."""

    id: str
    number: int
    customer: Customer
    is_credit: bool
    currency: str
    currency_rate: Decimal
    invoice_date: date
    due_date: date
    delivery_date: date | None
    rows: list[InvoiceRow]
    created: datetime
    modified: datetime
    payment_reference: str
    fields: dict[str, Any] = field(default_factory=dict)
    payments: list[Payment] = field(default_factory=list)
    payment_date: date | None = None
    # A credit invoice's `ReferringInvoiceId`: the invoice it credits (read-only in the API).
    referring_invoice_id: str | None = None

    def vat_specification(self) -> list[tuple[Decimal, Decimal, Decimal]]:
        """(rate, amount excl. VAT, VAT) per rate in invoice currency, VAT rounded per rate."""
        amounts: dict[Decimal, Decimal] = {}
        for row in self.rows:
            rate = row.vat_rate
            if rate is not None:
                amounts[rate] = amounts.get(rate, ZERO) + row.amount
        return [(rate, amounts[rate], money(amounts[rate] * rate)) for rate in sorted(amounts)]

    @property
    def total_vat_ic(self) -> Decimal:
        """Total VAT in invoice currency."""
        return sum((vat for _rate, _amount, vat in self.vat_specification()), ZERO)

    @property
    def total_ic(self) -> Decimal:
        """Total to pay in invoice currency: rows plus VAT (roundings are always 0 here)."""
        return sum((row.amount for row in self.rows), ZERO) + self.total_vat_ic

    @property
    def remaining_ic(self) -> Decimal:
        """What is left to pay, in invoice currency."""
        return self.total_ic - sum((p.settled for p in self.payments), ZERO)

    def base(self, amount: Decimal) -> Decimal:
        """An invoice-currency amount in the company's base currency."""
        return money(amount * self.currency_rate)

    def payment_status(self, today: date) -> int:
        """PaymentStatus: 0 Paid, 1 Unpaid, 2 Overdue."""
        if self.remaining_ic == 0:
            return PAID
        return OVERDUE if self.due_date < today else UNPAID


@dataclass
class Company:
    """One eAccounting company: its registers, seeded reference data, faults and request log."""

    company_id: str
    name: str
    organisation_number: str
    currency: str
    created: datetime
    terms_of_payment_id: str
    terms_of_payment_days: int
    client_id: str = ""
    articles: dict[str, Article] = field(default_factory=dict)
    bank_accounts: dict[str, BankAccount] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    next_invoice_number: int = 1
    faults: list[Fault] = field(default_factory=list)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=2000))

    def next_customer_number(self) -> str:
        """One more than the highest numeric customer number in use."""
        numeric = [int(c.number) for c in self.customers.values() if c.number.isdigit()]
        return str(max(numeric, default=0) + 1)

    @property
    def payments(self) -> list[Payment]:
        """Every payment of the company, oldest first."""
        return sorted(
            (p for i in self.invoices.values() for p in i.payments), key=lambda p: p.created
        )
