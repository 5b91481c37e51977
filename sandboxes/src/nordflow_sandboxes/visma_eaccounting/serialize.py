"""JSON views of sandbox records, shaped like eAccounting API v2 responses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from nordflow_sandboxes.kit.values import ZERO, json_number
from nordflow_sandboxes.visma_eaccounting.domain import (
    Article,
    BankAccount,
    Company,
    Customer,
    Invoice,
    InvoiceRow,
    Payment,
    date_text,
    utc_text,
)
from nordflow_sandboxes.visma_eaccounting.service import Page


def paginated(page: Page, data: list[dict[str, Any]], server_time: datetime) -> dict[str, Any]:
    """`{Meta, Data}`; `ServerTimeUtc` is whole seconds, rounded down, so it is a safe watermark."""
    return {
        "Meta": {
            "CurrentPage": page.current_page,
            "PageSize": page.page_size,
            "TotalNumberOfPages": page.total_pages,
            "TotalNumberOfResults": page.total_results,
            "ServerTimeUtc": utc_text(server_time.replace(microsecond=0)),
        },
        "Data": data,
    }


def terms_of_payment(company: Company) -> dict[str, Any]:
    """The company's one terms of payment (TermsOfPaymentApi)."""
    return {
        "Id": company.terms_of_payment_id,
        "Name": f"{company.terms_of_payment_days} dagar netto",
        "NameEnglish": f"{company.terms_of_payment_days} days net",
        "NumberOfDays": company.terms_of_payment_days,
        "TermsOfPaymentTypeId": 0,
        "TermsOfPaymentTypeText": "Normal",
        "AvailableForSales": True,
        "AvailableForPurchase": True,
    }


def customer(record: Customer, company: Company) -> dict[str, Any]:
    """CustomerApi."""
    unpaid = sum(
        (i.base(i.remaining_ic) for i in company.invoices.values() if i.customer is record), ZERO
    )
    last_invoice = max(
        (i.invoice_date for i in company.invoices.values() if i.customer is record), default=None
    )
    return {
        "Id": record.id,
        "CustomerNumber": record.number,
        **record.fields,
        "TermsOfPaymentId": company.terms_of_payment_id,
        "TermsOfPayment": terms_of_payment(company),
        "ChangedUtc": utc_text(record.changed),
        "LastInvoiceDate": date_text(last_invoice),
        "UnpaidInvoicesAmount": json_number(unpaid),
        "IsFutureInvoiceDateAllowed": True,
        "RequiresReferenceNumber": False,
    }


def article(record: Article) -> dict[str, Any]:
    """ArticleApi (the fields a connector needs)."""
    return {
        "Id": record.id,
        "IsActive": True,
        "Number": record.number,
        "Name": record.name,
        "NetPrice": json_number(record.net_price),
        "GrossPrice": json_number(record.net_price * (1 + record.vat_rate)),
        "CodingName": f"Försäljning {int(record.vat_rate * 100)} % moms",
        "UnitName": "Styck",
        "UnitAbbreviation": "st",
        "IsServiceArticle": record.is_service,
    }


def bank_account(record: BankAccount) -> dict[str, Any]:
    """BankAccountApi (the fields a connector needs)."""
    return {
        "Id": record.id,
        "Name": record.name,
        "BankAccountNumber": record.account_number,
        "LedgerAccountNumber": record.ledger_account_number,
        "CurrencyCode": record.currency_code,
        "IsActive": True,
        "IsDefaultChequeAccount": True,
    }


def invoice_row(row: InvoiceRow) -> dict[str, Any]:
    """CustomerInvoiceRowApi."""
    rate = row.vat_rate
    return {
        "Id": row.id,
        "LineNumber": row.line_number,
        "ArticleId": row.article.id if row.article else None,
        "ArticleNumber": row.article.number if row.article else None,
        "IsTextRow": row.is_text_row,
        "Text": row.text,
        "UnitPrice": json_number(row.unit_price),
        "DiscountPercentage": json_number(row.discount),
        "Quantity": json_number(row.quantity),
        "IsVatFree": row.is_vat_free,
        "VatRate": None if rate is None else json_number(rate),
        "PercentVat": json_number(rate or ZERO),
        "AmountNoVat": json_number(row.amount),
        "Amount": json_number(row.amount),
        "IsServiceArticle": bool(row.article and row.article.is_service),
        "UnitAbbreviation": None if row.is_text_row else "st",
        "IsDiscountInFixedAmount": False,
        "IsWorkCost": False,
        "WorkCostType": 0,
    }


def invoice(record: Invoice, company: Company, today: date) -> dict[str, Any]:
    """CustomerInvoiceApi."""
    vat_spec = record.vat_specification()
    net_ic = sum((row.amount for row in record.rows), ZERO)
    total_ic = record.total_ic
    vat_ic = record.total_vat_ic
    remaining_ic = record.remaining_ic
    owner = record.customer
    return {
        "Id": record.id,
        "InvoiceNumber": record.number,
        "CustomerId": owner.id,
        "CustomerNumber": owner.number,
        "CustomerName": owner.fields.get("Name"),
        "InvoiceCustomerName": owner.fields.get("Name"),
        "CustomerEmail": owner.fields.get("EmailAddress"),
        "CustomerIsPrivatePerson": bool(owner.fields.get("IsPrivatePerson")),
        "IsCreditInvoice": record.is_credit,
        "CurrencyCode": record.currency,
        "CurrencyRate": json_number(record.currency_rate),
        "InvoiceDate": date_text(record.invoice_date),
        "DueDate": date_text(record.due_date),
        "DeliveryDate": date_text(record.delivery_date),
        "RotReducedInvoicingType": 0,
        **record.fields,
        "ElectronicAddress": owner.fields.get("ElectronicAddress"),
        "EdiServiceDelivererId": owner.fields.get("EdiServiceDelivererId"),
        "TermsOfPaymentId": company.terms_of_payment_id,
        "Rows": [invoice_row(row) for row in record.rows],
        "VatSpecification": [
            {
                "AmountInvoiceCurrency": json_number(amount),
                "VatAmountInvoiceCurrency": json_number(vat),
                "VatPercent": json_number(rate),
            }
            for rate, amount, vat in vat_spec
        ],
        "TotalAmount": json_number(record.base(total_ic)),
        "TotalVatAmount": json_number(record.base(vat_ic)),
        "TotalRoundings": 0,
        "TotalAmountInvoiceCurrency": json_number(total_ic),
        "TotalVatAmountInvoiceCurrency": json_number(vat_ic),
        "SetOffAmountInvoiceCurrency": 0,
        "RemainingAmount": json_number(record.base(remaining_ic)),
        "RemainingAmountInvoiceCurrency": json_number(remaining_ic),
        "PaymentReferenceNumber": record.payment_reference,
        "PaymentStatus": record.payment_status(today),
        "PaymentDate": date_text(record.payment_date),
        "ContributionMargin": {"Amount": json_number(net_ic), "Percentage": 1 if net_ic else 0},
        "IncludesVat": False,
        "IsSold": False,
        "FactoringInvoiceStatus": 0,
        "IsQuickInvoice": False,
        "IsCollectiveInvoice": False,
        "HasAutoInvoiceError": False,
        "IsNotDelivered": False,
        "PaymentReminderIssued": False,
        "PaymentRemindersCount": 0,
        "ReferringInvoiceId": record.referring_invoice_id,
        "CreditedBy": [],
        "CreatedUtc": utc_text(record.created),
        "ModifiedUtc": utc_text(record.modified),
    }


def payment(record: Payment) -> dict[str, Any]:
    """InvoicePaymentApi as the create answers it."""
    body: dict[str, Any] = {
        "CompanyBankAccountId": record.bank_account_id,
        "PaymentDate": date_text(record.payment_date),
        "Reference": record.reference,
        "PaymentAmount": json_number(record.amount),
        "PaymentCurrency": record.currency,
        "BankFeeAmount": json_number(record.bank_fee),
        "PaymentType": record.payment_type,
        "FactoringFeeAmount": json_number(record.factoring_fee),
        "FactoringFeeAccountNumber": record.factoring_fee_account,
        "BankTransactionId": record.bank_transaction_id,
    }
    if record.domestic_amount is not None:
        body["DomesticPaymentAmount"] = json_number(record.domestic_amount)
    return body


def autoinvoice_recipients(record: Customer) -> list[dict[str, Any]]:
    """AutoInvoiceAddressApi items: the sandbox finds a customer with an electronic address."""
    address = record.fields.get("ElectronicAddress") or record.fields.get("EdiGlnNumber")
    if not address:
        return []
    return [
        {
            "Name": record.fields.get("Name"),
            "ElectronicAddress": address,
            "EdiServiceDelivererId": record.fields.get("EdiServiceDelivererId") or "PEPPOL",
            "Address1": record.fields.get("InvoiceAddress1"),
            "Address2": record.fields.get("InvoiceAddress2"),
            "CorporateIdentityNumber": record.fields.get("CorporateIdentityNumber"),
            "CountryCode": record.fields.get("InvoiceCountryCode") or "SE",
            "City": record.fields.get("InvoiceCity"),
            "Gln": record.fields.get("EdiGlnNumber"),
            "PostalCode": record.fields.get("InvoicePostalCode"),
            "VatNumber": record.fields.get("VatNumber"),
        }
    ]
