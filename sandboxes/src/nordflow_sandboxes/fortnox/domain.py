"""The records one sandbox company holds, and the invoice arithmetic Fortnox performs."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from nordflow_schemas.money import money

from nordflow_sandboxes.fortnox import fields as f
from nordflow_sandboxes.fortnox.values import round_whole
from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.state import RequestRecord
from nordflow_sandboxes.kit.values import ZERO

FieldKind = Literal["text", "bool", "decimal", "int", "date", "enum", "account", "object"]

INVOICE_TYPES = frozenset(
    {"INVOICE", "AGREEMENTINVOICE", "INTRESTINVOICE", "SUMMARYINVOICE", "CASHINVOICE"}
)
PAYMENT_WAYS = frozenset({"CASH", "CARD", "AG"})
DISCOUNT_TYPES = frozenset({"PERCENT", "AMOUNT"})
CUSTOMER_TYPES = frozenset({"PRIVATE", "COMPANY"})
VAT_TYPES = frozenset({"SEVAT", "SEREVERSEDVAT", "EUREVERSEDVAT", "EUVAT", "EXPORT"})
DELIVERY_TYPES = frozenset({"PRINT", "EMAIL", "PRINTSERVICE"})
LANGUAGES = frozenset({"SV", "EN"})
SWEDISH_VAT_RATES = frozenset({0, 6, 12, 25})

# Default revenue accounts of the Swedish BAS chart, keyed by VAT rate (domestic sales).
DEFAULT_SALES_ACCOUNT = {25: 3001, 12: 3002, 6: 3003, 0: 3004}
# Default revenue accounts when the customer's VAT type is not domestic VAT.
DEFAULT_SALES_ACCOUNT_BY_VAT_TYPE = {
    "SEREVERSEDVAT": 3231,
    "EUREVERSEDVAT": 3308,
    "EUVAT": 3001,
    "EXPORT": 3105,
}


@dataclass(frozen=True)
class Field:
    """How one writable Fortnox field is decoded and what it shows when unset."""

    kind: FieldKind
    max_length: int | None = None
    choices: frozenset[str] = frozenset()
    subfields: dict[str, Field] | None = None
    null_when_unset: bool = False

    def decode(self, name: str, value: Any) -> Any:
        """Turn the JSON value into the stored value, or raise a Fortnox 400."""
        if value is None and self.kind != "object":
            return None
        match self.kind:
            case "text":
                return f.as_text(name, value, self.max_length)
            case "bool":
                return f.as_bool(name, value)
            case "decimal":
                return f.as_decimal(name, value)
            case "int":
                return f.as_int(name, value)
            case "date":
                return f.as_date(name, value)
            case "enum":
                if value == "":
                    return None
                return f.as_enum(name, value, self.choices)
            case "account":
                return f.as_account(name, value)
            case "object":
                return self._decode_object(name, value)

    def _decode_object(self, name: str, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or self.subfields is None:
            raise f.invalid_value(name, "expected an object")
        f.check_field_names(value, self.subfields, (), name)
        return {key: self.subfields[key].decode(f"{name}.{key}", raw) for key, raw in value.items()}


def text(max_length: int | None = None) -> Field:
    """A plain text field shown as "" when unset."""
    return Field("text", max_length=max_length)


CUSTOMER_FIELDS: dict[str, Field] = {
    "Active": Field("bool"),
    "Address1": text(1024),
    "Address2": text(1024),
    "City": text(1024),
    "Comments": text(1024),
    "CostCenter": text(),
    "Country": text(),
    "CountryCode": Field("text", max_length=2, null_when_unset=True),
    "Currency": Field("text", max_length=3, null_when_unset=True),
    "DefaultDeliveryTypes": Field(
        "object",
        subfields={k: Field("enum", choices=DELIVERY_TYPES) for k in ("Invoice", "Offer", "Order")},
    ),
    "DefaultTemplates": Field(
        "object", subfields={k: text() for k in ("CashInvoice", "Invoice", "Offer", "Order")}
    ),
    "DeliveryAddress1": text(1024),
    "DeliveryAddress2": text(1024),
    "DeliveryCity": text(1024),
    "DeliveryCountry": text(1024),
    "DeliveryCountryCode": Field("text", max_length=2, null_when_unset=True),
    "DeliveryFax": text(1024),
    "DeliveryName": text(1024),
    "DeliveryPhone1": text(1024),
    "DeliveryPhone2": text(1024),
    "DeliveryZipCode": text(10),
    "Email": text(1024),
    "EmailInvoice": text(1024),
    "EmailInvoiceBCC": text(1024),
    "EmailInvoiceCC": text(1024),
    "EmailOffer": text(1024),
    "EmailOfferBCC": text(1024),
    "EmailOfferCC": text(1024),
    "EmailOrder": text(1024),
    "EmailOrderBCC": text(1024),
    "EmailOrderCC": text(1024),
    "ExternalReference": text(1024),
    "Fax": text(1024),
    "GLN": Field("text", max_length=13, null_when_unset=True),
    "GLNDelivery": Field("text", max_length=13, null_when_unset=True),
    "InvoiceAdministrationFee": text(),
    "InvoiceDiscount": Field("decimal", null_when_unset=True),
    "InvoiceFreight": text(),
    "InvoiceRemark": text(1024),
    "Name": text(1024),
    "OrganisationNumber": text(30),
    "OurReference": text(50),
    "Phone1": text(1024),
    "Phone2": text(1024),
    "PriceList": text(),
    "Project": text(),
    "SalesAccount": Field("text", max_length=4, null_when_unset=True),
    "ShowPriceVATIncluded": Field("bool"),
    "TermsOfDelivery": text(),
    "TermsOfPayment": text(),
    "Type": Field("enum", choices=CUSTOMER_TYPES),
    "VATNumber": text(),
    "VATType": Field("enum", choices=VAT_TYPES),
    "VisitingAddress": text(128),
    "VisitingCity": text(128),
    "VisitingCountry": text(128),
    "VisitingCountryCode": Field("text", max_length=2, null_when_unset=True),
    "VisitingZipCode": text(10),
    "WWW": text(128),
    "WayOfDelivery": text(),
    "YourReference": text(50),
    "ZipCode": text(10),
}
CUSTOMER_READ_ONLY = frozenset({"@url"})

# Invoice fields stored as given (typed) and echoed back; the ones the sandbox computes
# or controls are handled explicitly by the service.
INVOICE_PASSTHROUGH_FIELDS: dict[str, Field] = {
    "Address1": text(1024),
    "Address2": text(1024),
    "City": text(1024),
    "Comments": text(1024),
    "CostCenter": text(),
    "Country": text(),
    "CustomerName": text(1024),
    "DeliveryAddress1": text(1024),
    "DeliveryAddress2": text(1024),
    "DeliveryCity": text(1024),
    "DeliveryCountry": text(),
    "DeliveryDate": Field("date", null_when_unset=True),
    "DeliveryName": text(1024),
    "DeliveryZipCode": text(1024),
    "EDIInformation": Field(
        "object",
        subfields={
            "EDIGlobalLocationNumber": text(13),
            "EDIGlobalLocationNumberDelivery": text(13),
            "EDIInvoiceExtra1": text(),
            "EDIInvoiceExtra2": text(),
            "EDIOurElectronicReference": text(),
            "EDIYourElectronicReference": text(),
            "EDIStatus": text(),
        },
    ),
    "EUQuarterlyReport": Field("bool"),
    "EmailInformation": Field(
        "object",
        subfields={
            "EmailAddressBCC": text(),
            "EmailAddressCC": text(),
            "EmailAddressFrom": text(),
            "EmailAddressTo": text(),
            "EmailBody": text(20000),
            "EmailSubject": text(100),
        },
    ),
    "ExternalInvoiceReference1": text(80),
    "ExternalInvoiceReference2": text(80),
    "InvoicePeriodEnd": Field("date", null_when_unset=True),
    "InvoicePeriodStart": Field("date", null_when_unset=True),
    "Language": Field("enum", choices=LANGUAGES),
    "NotCompleted": Field("bool"),
    "OrganisationNumber": text(30),
    "OurReference": text(50),
    "OutboundDate": Field("date", null_when_unset=True),
    "PaymentWay": Field("enum", choices=PAYMENT_WAYS, null_when_unset=True),
    "Phone1": text(1024),
    "Phone2": text(1024),
    "PriceList": text(),
    "PrintTemplate": text(),
    "Project": text(),
    "Remarks": text(1024),
    "TermsOfDelivery": text(),
    "WayOfDelivery": text(),
    "YourOrderNumber": text(75),
    "YourReference": text(50),
    "ZipCode": text(1024),
}
INVOICE_CONTROLLED_FIELDS = frozenset(
    {
        "AdministrationFee",
        "CreditInvoiceReference",
        "Currency",
        "CurrencyRate",
        "CurrencyUnit",
        "CustomerNumber",
        "DocumentNumber",
        "DueDate",
        "Freight",
        "InvoiceDate",
        "InvoiceRows",
        "InvoiceType",
        "OCR",
        "TermsOfPayment",
        "VATIncluded",
    }
)
INVOICE_READ_ONLY = frozenset(
    {
        "@url",
        "@urlTaxReductionList",
        "AccountingMethod",
        "AdministrationFeeVAT",
        "Balance",
        "BasisTaxReduction",
        "Booked",
        "Cancelled",
        "ContractReference",
        "ContributionPercent",
        "ContributionValue",
        "Credit",
        "FinalPayDate",
        "FreightVAT",
        "Gross",
        "HouseWork",
        "Labels",
        "LastRemindDate",
        "Net",
        "NoxFinans",
        "OfferReference",
        "OrderReference",
        "Reminders",
        "RoundOff",
        "Sent",
        "TaxReduction",
        "TaxReductionType",
        "TimeBasisReference",
        "Total",
        "TotalToPay",
        "TotalVAT",
        "VoucherNumber",
        "VoucherSeries",
        "VoucherYear",
        "WarehouseReady",
    }
)
ROW_WRITABLE = frozenset(
    {
        "AccountNumber",
        "ArticleNumber",
        "CostCenter",
        "DeliveredQuantity",
        "Description",
        "Discount",
        "DiscountType",
        "HouseWork",
        "HouseWorkHoursToReport",
        "HouseWorkType",
        "Price",
        "Project",
        "RowId",
        "StockPointCode",
        "Unit",
        "VAT",
    }
)
ROW_READ_ONLY = frozenset(
    {"ContributionPercent", "ContributionValue", "PriceExcludingVAT", "Total", "TotalExcludingVAT"}
)
PAYMENT_WRITABLE = frozenset(
    {
        "Amount",
        "AmountCurrency",
        "CurrencyRate",
        "CurrencyUnit",
        "InvoiceNumber",
        "ModeOfPayment",
        "ModeOfPaymentAccount",
        "PaymentDate",
        "WriteOffs",
    }
)
PAYMENT_READ_ONLY = frozenset(
    {
        "@url",
        "Booked",
        "Currency",
        "ExternalInvoiceReference1",
        "ExternalInvoiceReference2",
        "InvoiceCustomerName",
        "InvoiceCustomerNumber",
        "InvoiceDueDate",
        "InvoiceOCR",
        "InvoiceTotal",
        "Number",
        "Source",
        "VoucherNumber",
        "VoucherSeries",
        "VoucherYear",
    }
)
WRITE_OFF_FIELDS = frozenset(
    {
        "AccountNumber",
        "Amount",
        "CostCenter",
        "Currency",
        "Description",
        "Project",
        "TransactionInformation",
    }
)


@dataclass(frozen=True)
class Voucher:
    """The voucher a bookkeeping action created."""

    series: str
    number: int
    year: int


@dataclass
class Customer:
    """A customer card (`Kundregister`)."""

    number: str
    values: dict[str, Any]
    last_modified: datetime

    @property
    def name(self) -> str:
        """The customer's name (required by Fortnox)."""
        return str(self.values.get("Name") or "")

    def get_text(self, name: str) -> str:
        """A text field, "" when unset."""
        value = self.values.get(name)
        return value if isinstance(value, str) else ""


@dataclass
class InvoiceRow:
    """One invoice row; `total` is computed (excluding VAT unless the invoice includes VAT)."""

    row_id: int
    account_number: int
    article_number: str = ""
    cost_center: str = ""
    delivered_quantity: Decimal = ZERO
    description: str = ""
    discount: Decimal = ZERO
    discount_type: str = "PERCENT"
    house_work: bool = False
    price: Decimal = ZERO
    project: str = ""
    stock_point_code: str = ""
    unit: str = ""
    vat: int = 25
    total: Decimal = ZERO

    def compute_total(self) -> Decimal:
        """Quantity x price less the discount, rounded to öre.

        PERCENT discounts a percentage of the row; AMOUNT subtracts a fixed amount from
        the row (sandbox reading of Fortnox's row discount).
        """
        gross = self.delivered_quantity * self.price
        if self.discount_type == "AMOUNT":
            sign = Decimal(-1) if gross < 0 else Decimal(1)
            value = gross - sign * self.discount
        else:
            value = gross * (Decimal(100) - self.discount) / Decimal(100)
        return money(value)


@dataclass
class Invoice:
    """A customer invoice (`Kundfaktura`) with its computed amounts."""

    document_number: int
    customer_number: str
    invoice_date: date
    due_date: date
    terms_of_payment: str
    invoice_type: str
    currency: str
    currency_rate: Decimal
    currency_unit: int
    vat_included: bool
    freight: Decimal
    administration_fee: Decimal
    rows: list[InvoiceRow]
    values: dict[str, Any]
    ocr: str
    created: datetime
    last_modified: datetime
    booked: bool = False
    cancelled: bool = False
    sent: bool = False
    credit: bool = False
    credit_invoice_reference: int = 0
    final_pay_date: date | None = None
    voucher: Voucher | None = None
    net: Decimal = ZERO
    gross: Decimal = ZERO
    freight_vat: Decimal = ZERO
    administration_fee_vat: Decimal = ZERO
    total_vat: Decimal = ZERO
    round_off: Decimal = ZERO
    total: Decimal = ZERO
    settled: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        """What is still open: total less payments and write-offs; 0 once cancelled."""
        if self.cancelled:
            return ZERO
        return self.total - self.settled

    def get_text(self, name: str) -> str:
        """A passthrough text field, "" when unset."""
        value = self.values.get(name)
        return value if isinstance(value, str) else ""

    def recompute(self) -> None:
        """Recompute row totals, VAT, öre rounding and the invoice total.

        VAT is computed per rate on the sum of the rows with that rate. Freight and
        administration fee carry the highest row VAT rate (25 % when there are no rows).
        SEK invoices are rounded to whole kronor (the difference is RoundOff); other
        currencies are not rounded.
        """
        by_rate: dict[int, Decimal] = {}
        for row in self.rows:
            row.total = row.compute_total()
            by_rate[row.vat] = by_rate.get(row.vat, ZERO) + row.total
        fee_rate = Decimal(max(by_rate, default=25))
        if self.vat_included:
            vat_by_rate = {
                rate: money(amount * rate / (100 + rate)) for rate, amount in by_rate.items()
            }
            self.net = money(sum(by_rate.values(), ZERO) - sum(vat_by_rate.values(), ZERO))
        else:
            vat_by_rate = {rate: money(amount * rate / 100) for rate, amount in by_rate.items()}
            self.net = money(sum(by_rate.values(), ZERO))
        self.freight_vat = money(self.freight * fee_rate / 100)
        self.administration_fee_vat = money(self.administration_fee * fee_rate / 100)
        self.gross = self.net + self.freight + self.administration_fee
        self.total_vat = (
            sum(vat_by_rate.values(), ZERO) + self.freight_vat + self.administration_fee_vat
        )
        unrounded = self.gross + self.total_vat
        self.total = round_whole(unrounded) if self.currency == "SEK" else money(unrounded)
        self.round_off = self.total - unrounded


@dataclass(frozen=True)
class WriteOff:
    """A write-off booked with a payment (e.g. a factoring fee or öre difference)."""

    amount: Decimal
    account_number: int
    currency: str
    description: str
    cost_center: str
    project: str
    transaction_information: str


@dataclass
class Payment:
    """A customer invoice payment (`Inbetalning`)."""

    number: int
    invoice_number: int
    amount: Decimal
    amount_currency: Decimal
    currency: str
    currency_rate: Decimal
    currency_unit: int
    payment_date: date
    mode_of_payment: str
    mode_of_payment_account: int
    write_offs: list[WriteOff]
    last_modified: datetime
    booked: bool = False
    voucher: Voucher | None = None
    source: str = "direct"

    @property
    def settles(self) -> Decimal:
        """How much of the invoice (in invoice currency) this payment closes."""
        return self.amount_currency + sum((w.amount for w in self.write_offs), ZERO)


@dataclass
class Article:
    """An article (`Artikel`): what an order or invoice row may name."""

    number: str
    values: dict[str, Any]
    last_modified: datetime


@dataclass
class Project:
    """A project (`Projekt`). Fortnox projects name no customer: an order names both."""

    number: str
    values: dict[str, Any]
    last_modified: datetime


@dataclass
class Order:
    """A customer order (`Order`), until it is invoiced (`InvoiceReference`)."""

    document_number: int
    customer_number: str
    order_date: date
    delivery_date: date | None
    currency: str
    vat_included: bool
    rows: list[InvoiceRow]
    ordered: list[Decimal]
    values: dict[str, Any]
    last_modified: datetime
    invoice_reference: int = 0
    cancelled: bool = False
    net: Decimal = ZERO
    total_vat: Decimal = ZERO
    total: Decimal = ZERO


@dataclass(frozen=True)
class VoucherRow:
    """One row of a voucher: an account debited or credited."""

    account: int
    debit: Decimal
    credit: Decimal
    description: str


@dataclass
class VoucherRecord:
    """A manual voucher (`Verifikation`) posted through the API."""

    series: str
    number: int
    year: int
    transaction_date: date
    description: str
    reference_number: str
    reference_type: str
    rows: list[VoucherRow]


@dataclass
class Registers:
    """One company's articles, projects, orders and vouchers (`registers.py` serves them)."""

    articles: dict[str, Article] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    vouchers: list[VoucherRecord] = field(default_factory=list)
    next_order_number: int = 1


@dataclass
class Company:
    """One Fortnox database: its registers, counters, injected faults and request log."""

    company_id: str
    name: str
    organisation_number: str
    database_number: int
    created: datetime
    # False for a company made for load tests: its tokens skip the rate limit.
    rate_limited: bool = True
    customers: dict[str, Customer] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    payments: dict[int, Payment] = field(default_factory=dict)
    next_document_number: int = 1
    next_payment_number: int = 1
    next_voucher_number: dict[str, int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=2000))
    registers: Registers = field(default_factory=Registers)

    def take_voucher(self, series: str) -> Voucher:
        """Allocate the next voucher number in a series (B invoices, C payments)."""
        number = self.next_voucher_number.get(series, 1)
        self.next_voucher_number[series] = number + 1
        return Voucher(series=series, number=number, year=1)

    def next_customer_number(self) -> str:
        """One more than the highest numeric customer number in use (Fortnox's default)."""
        numeric = [int(n) for n in self.customers if n.isdigit()]
        return str(max(numeric, default=0) + 1)
