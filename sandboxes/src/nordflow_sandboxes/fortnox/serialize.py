"""JSON shapes of Fortnox resources, field by field as Fortnox's API documentation lists them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from nordflow_schemas.money import money

from nordflow_sandboxes.fortnox.domain import (
    CUSTOMER_FIELDS,
    INVOICE_PASSTHROUGH_FIELDS,
    Company,
    Customer,
    Field,
    Invoice,
    InvoiceRow,
    Payment,
)
from nordflow_sandboxes.fortnox.service import Page
from nordflow_sandboxes.fortnox.values import quantity_text
from nordflow_sandboxes.kit.values import json_number

JsonObject = dict[str, Any]


def _value(spec: Field, value: Any) -> Any:
    """A stored value in its JSON form, or what Fortnox shows for an unset field."""
    if spec.kind == "object":
        stored = value if isinstance(value, dict) else {}
        subfields = spec.subfields or {}
        return {name: _value(sub, stored.get(name)) for name, sub in subfields.items()}
    if value is None:
        if spec.null_when_unset or spec.kind in {"decimal", "int", "date", "account", "enum"}:
            return None
        return False if spec.kind == "bool" else ""
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def meta(page: Page) -> JsonObject:
    """Fortnox's list paging block."""
    return {
        "@CurrentPage": page.current_page,
        "@TotalPages": page.total_pages,
        "@TotalResources": page.total_resources,
    }


# ---------------------------------------------------------------------------- customers


def customer(item: Customer, base: str) -> JsonObject:
    """The full customer (`{"Customer": {...}}` inner object)."""
    body: JsonObject = {"@url": f"{base}/3/customers/{item.number}"}
    for name, spec in CUSTOMER_FIELDS.items():
        body[name] = _value(spec, item.values.get(name))
    body["CustomerNumber"] = item.number
    return dict(sorted(body.items(), key=lambda kv: kv[0].lstrip("@").lower()))


def customer_list_item(item: Customer, base: str) -> JsonObject:
    """The short customer shape of `GET /3/customers`."""
    return {
        "@url": f"{base}/3/customers/{item.number}",
        "Address1": item.get_text("Address1"),
        "Address2": item.get_text("Address2"),
        "City": item.get_text("City"),
        "CustomerNumber": item.number,
        "Email": item.get_text("Email"),
        "Name": item.name,
        "OrganisationNumber": item.get_text("OrganisationNumber"),
        "Phone": item.get_text("Phone1"),
        "ZipCode": item.get_text("ZipCode"),
    }


# ----------------------------------------------------------------------------- invoices


def invoice_row(row: InvoiceRow, vat_included: bool) -> JsonObject:
    """One row of `InvoiceRows`."""
    rate = Decimal(100 + row.vat) / Decimal(100)
    price_excl = row.price / rate if vat_included else row.price
    total_excl = row.total / rate if vat_included else row.total
    return {
        "AccountNumber": row.account_number,
        "ArticleNumber": row.article_number,
        "ContributionPercent": "0",
        "ContributionValue": "0",
        "CostCenter": row.cost_center,
        "DeliveredQuantity": quantity_text(row.delivered_quantity),
        "Description": row.description,
        "Discount": json_number(row.discount),
        "DiscountType": row.discount_type,
        "HouseWork": row.house_work,
        "HouseWorkHoursToReport": None,
        "HouseWorkType": None,
        "Price": json_number(row.price),
        "PriceExcludingVAT": json_number(money(price_excl)),
        "Project": row.project,
        "RowId": row.row_id,
        "StockPointCode": row.stock_point_code or None,
        "Total": json_number(row.total),
        "TotalExcludingVAT": json_number(money(total_excl)),
        "Unit": row.unit,
        "VAT": row.vat,
    }


def invoice(item: Invoice, base: str) -> JsonObject:
    """The full invoice (`{"Invoice": {...}}` inner object)."""
    n = item.document_number
    body: JsonObject = {
        name: _value(spec, item.values.get(name))
        for name, spec in INVOICE_PASSTHROUGH_FIELDS.items()
    }
    body.update(
        {
            "@url": f"{base}/3/invoices/{n}",
            "@urlTaxReductionList": f"{base}/3/taxreductions?filter=invoices&referencenumber={n}",
            "AccountingMethod": "ACCRUAL",
            "AdministrationFee": json_number(item.administration_fee),
            "AdministrationFeeVAT": json_number(item.administration_fee_vat),
            "Balance": json_number(item.balance),
            "BasisTaxReduction": 0,
            "Booked": item.booked,
            "Cancelled": item.cancelled,
            "ContractReference": 0,
            "ContributionPercent": 0,
            "ContributionValue": 0,
            "Credit": "true" if item.credit else "false",
            "CreditInvoiceReference": str(item.credit_invoice_reference),
            "Currency": item.currency,
            "CurrencyRate": json_number(item.currency_rate),
            "CurrencyUnit": item.currency_unit,
            "CustomerNumber": item.customer_number,
            "DocumentNumber": str(n),
            "DueDate": item.due_date.isoformat(),
            "FinalPayDate": _date(item.final_pay_date),
            "Freight": json_number(item.freight),
            "FreightVAT": json_number(item.freight_vat),
            "Gross": json_number(item.gross),
            "HouseWork": any(r.house_work for r in item.rows),
            "InvoiceDate": item.invoice_date.isoformat(),
            "InvoicePeriodReference": "",
            "InvoiceRows": [invoice_row(r, item.vat_included) for r in item.rows],
            "InvoiceType": item.invoice_type,
            "Labels": [],
            "Language": item.values.get("Language") or "SV",
            "LastRemindDate": None,
            "Net": json_number(item.net),
            "NoxFinans": False,
            "OCR": item.ocr,
            "OfferReference": "0",
            "OrderReference": "0",
            "Reminders": 0,
            "RoundOff": json_number(item.round_off),
            "Sent": item.sent,
            "TaxReduction": None,
            "TaxReductionType": "none",
            "TermsOfPayment": item.terms_of_payment,
            "TimeBasisReference": None,
            "Total": json_number(item.total),
            "TotalToPay": json_number(item.total),
            "TotalVAT": json_number(item.total_vat),
            "VATIncluded": item.vat_included,
            "VoucherNumber": item.voucher.number if item.voucher else None,
            "VoucherSeries": item.voucher.series if item.voucher else None,
            "VoucherYear": item.voucher.year if item.voucher else None,
            "WarehouseReady": True,
        }
    )
    return dict(sorted(body.items(), key=lambda kv: kv[0].lstrip("@").lower()))


def invoice_list_item(item: Invoice, base: str) -> JsonObject:
    """The short invoice shape of `GET /3/invoices` (Fortnox's InvoiceListItem)."""
    return {
        "@url": f"{base}/3/invoices/{item.document_number}",
        "Balance": json_number(item.balance),
        "Booked": item.booked,
        "Cancelled": item.cancelled,
        "CostCenter": item.get_text("CostCenter"),
        "Currency": item.currency,
        "CurrencyRate": json_number(item.currency_rate),
        "CurrencyUnit": item.currency_unit,
        "CustomerName": item.get_text("CustomerName"),
        "CustomerNumber": item.customer_number,
        "DocumentNumber": str(item.document_number),
        "DueDate": item.due_date.isoformat(),
        "ExternalInvoiceReference1": item.get_text("ExternalInvoiceReference1"),
        "ExternalInvoiceReference2": item.get_text("ExternalInvoiceReference2"),
        "FinalPayDate": _date(item.final_pay_date),
        "InvoiceDate": item.invoice_date.isoformat(),
        "InvoiceType": item.invoice_type,
        "NoxFinans": False,
        "OCR": item.ocr,
        "Project": item.get_text("Project"),
        "Sent": item.sent,
        "TermsOfPayment": item.terms_of_payment,
        "Total": json_number(item.total),
        "VoucherNumber": item.voucher.number if item.voucher else None,
        "VoucherSeries": item.voucher.series if item.voucher else None,
        "VoucherYear": item.voucher.year if item.voucher else None,
        "WayOfDelivery": item.get_text("WayOfDelivery"),
    }


# ----------------------------------------------------------------------------- payments


def payment(item: Payment, company: Company, base: str) -> JsonObject:
    """The full invoice payment (`{"InvoicePayment": {...}}` inner object)."""
    inv = company.invoices.get(item.invoice_number)
    return {
        "@url": f"{base}/3/invoicepayments/{item.number}",
        "Amount": json_number(item.amount),
        "AmountCurrency": json_number(item.amount_currency),
        "Booked": item.booked,
        "Currency": item.currency,
        "CurrencyRate": json_number(item.currency_rate),
        "CurrencyUnit": item.currency_unit,
        "ExternalInvoiceReference1": inv.get_text("ExternalInvoiceReference1") if inv else "",
        "ExternalInvoiceReference2": inv.get_text("ExternalInvoiceReference2") if inv else "",
        "InvoiceCustomerName": inv.get_text("CustomerName") if inv else "",
        "InvoiceCustomerNumber": inv.customer_number if inv else "",
        "InvoiceDueDate": inv.due_date.isoformat() if inv else None,
        "InvoiceNumber": item.invoice_number,
        "InvoiceOCR": inv.ocr if inv else "",
        "InvoiceTotal": str(json_number(inv.total)) if inv else "0",
        "ModeOfPayment": item.mode_of_payment,
        "ModeOfPaymentAccount": item.mode_of_payment_account,
        "Number": str(item.number),
        "PaymentDate": item.payment_date.isoformat(),
        "Source": item.source,
        "VoucherNumber": item.voucher.number if item.voucher else None,
        "VoucherSeries": item.voucher.series if item.voucher else None,
        "VoucherYear": item.voucher.year if item.voucher else None,
        "WriteOffs": [
            {
                "AccountNumber": w.account_number,
                "Amount": json_number(w.amount),
                "CostCenter": w.cost_center,
                "Currency": w.currency,
                "Description": w.description,
                "Project": w.project,
                "TransactionInformation": w.transaction_information,
            }
            for w in item.write_offs
        ],
    }


def payment_list_item(item: Payment, base: str) -> JsonObject:
    """The short payment shape of `GET /3/invoicepayments`."""
    return {
        "@url": f"{base}/3/invoicepayments/{item.number}",
        "Amount": json_number(item.amount),
        "Booked": item.booked,
        "Currency": item.currency,
        "CurrencyRate": json_number(item.currency_rate),
        "CurrencyUnit": item.currency_unit,
        "InvoiceNumber": item.invoice_number,
        "Number": str(item.number),
        "PaymentDate": item.payment_date.isoformat(),
        "Source": item.source,
        "WriteOffExist": bool(item.write_offs),
    }


def company_information(company: Company) -> JsonObject:
    """`GET /3/companyinformation`."""
    return {
        "Address": "",
        "City": "",
        "CountryCode": "SE",
        "DatabaseNumber": company.database_number,
        "CompanyName": company.name,
        "OrganizationNumber": company.organisation_number,
        "VisitAddress": "",
        "VisitCity": "",
        "VisitCountryCode": "",
        "VisitZipCode": "",
        "ZipCode": "",
    }
