"""Visma.net JSON shapes (CustomerDto, CustomerInvoiceDto, PaymentDto) for the sandbox's records."""

from __future__ import annotations

from datetime import date, tzinfo
from typing import Any

from nordflow_sandboxes.kit.values import json_number
from nordflow_sandboxes.visma_net.domain import (
    VAT_CODES,
    Company,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentLine,
)
from nordflow_sandboxes.visma_net.service import Page, applications_of, credit_notes_of
from nordflow_sandboxes.visma_net.values import api_date, api_datetime, etag_of


def _period(day: date) -> tuple[str, str]:
    """(postPeriod MMYYYY, financialPeriod YYYYMM) of a date."""
    return f"{day.month:02d}{day.year}", f"{day.year}{day.month:02d}"


def page_items(page: Page, render: Any) -> list[dict[str, Any]]:
    """A list answer: a plain array whose every item carries the paging `metadata`."""
    metadata = {"totalCount": page.total_count, "maxPageSize": page.max_page_size}
    return [{**render(item), "metadata": dict(metadata)} for item in page.items]


def customer(record: Customer, zone: tzinfo) -> dict[str, Any]:
    """A CustomerDto."""
    address = {
        "addressLine1": record.address.get("addressLine1"),
        "addressLine2": record.address.get("addressLine2"),
        "postalCode": record.address.get("postalCode"),
        "city": record.address.get("city"),
        "country": {"id": record.address.get("countryId")},
    }
    return {
        "internalId": record.internal_id,
        "number": record.number,
        "name": record.name,
        "status": record.status,
        "mainAddress": address,
        "mainContact": {"name": record.name, "email": record.email},
        "invoiceAddress": address,
        "invoiceContact": {"name": record.name, "email": record.email},
        "creditTerms": {"id": record.credit_terms_id, "description": record.credit_terms_id},
        "currencyId": record.currency_id,
        "acceptAutoInvoices": record.accept_auto_invoices,
        "sendInvoicesByEmail": record.send_invoices_by_email,
        "printInvoices": not record.send_invoices_by_email,
        "vatRegistrationId": record.vat_registration_id,
        "corporateId": record.corporate_id,
        "gln": record.gln,
        "note": record.note,
        "lastModifiedDateTime": api_datetime(record.last_modified, zone),
        "createdDateTime": api_datetime(record.created, zone),
        "timeStamp": etag_of(record.rowversion),
        "errorInfo": None,
    }


def _invoice_line(line: InvoiceLine, record: Invoice) -> dict[str, Any]:
    return {
        "lineNumber": line.line_number,
        "inventoryNumber": line.inventory_number,
        "description": line.description,
        "quantity": json_number(line.quantity),
        "unitPrice": json_number(record.base(line.unit_price)),
        "unitPriceInCurrency": json_number(line.unit_price),
        "amount": json_number(record.base(line.amount)),
        "amountInCurrency": json_number(line.amount),
        "account": {"type": "Income", "number": line.account_number},
        "vatCode": {"id": line.vat_code_id, "description": VAT_CODES[line.vat_code_id][1]},
        "uom": line.uom,
        "discountPercent": json_number(line.discount_percent),
        "discountAmount": json_number(record.base(line.discount_amount)),
        "discountAmountInCurrency": json_number(line.discount_amount),
        "note": line.note,
    }


def _application(payment: Payment, line: PaymentLine) -> dict[str, Any]:
    post_period, _ = _period(payment.application_date)
    return {
        "docType": payment.type,
        "customerCd": payment.customer_number,
        "refNbr": payment.ref_nbr,
        "amountPaid": json_number(line.amount_paid),
        "cashDiscountTaken": 0,
        "released": payment.released,
        "hold": payment.hold,
        "voided": False,
        "paymentRef": payment.payment_ref,
        "status": payment.status,
        "applicationDate": api_date(payment.application_date),
        "applicationPeriod": post_period,
        "invoiceText": payment.invoice_text,
    }


def _credit_application(
    note: Invoice, line: PaymentLine, document_type: str, ref: str
) -> dict[str, Any]:
    """An ArAdjustDto between a credit note and an invoice it credits, seen from either side."""
    post_period, _ = _period(note.document_date)
    return {
        "docType": document_type,
        "customerCd": note.customer_number,
        "refNbr": ref,
        "amountPaid": json_number(line.amount_paid),
        "cashDiscountTaken": 0,
        "released": note.released,
        "hold": note.hold,
        "voided": False,
        "paymentRef": None,
        "status": note.status,
        "applicationDate": api_date(note.document_date),
        "applicationPeriod": post_period,
        "invoiceText": note.invoice_text,
    }


def _applications(record: Invoice, company: Company) -> list[dict[str, Any]]:
    """A credit note's applications are the invoices it credits; an invoice's are the
    payments and credit notes applied to it."""
    if record.credit_note:
        return [
            _credit_application(record, line, line.document_type, line.ref_nbr)
            for line in record.application_lines
        ]
    return [_application(payment, line) for payment, line in applications_of(company, record)] + [
        _credit_application(note, line, "CreditNote", note.reference_number)
        for note, line in credit_notes_of(company, record)
    ]


def invoice(record: Invoice, company: Company, zone: tzinfo) -> dict[str, Any]:
    """A CustomerInvoiceDto (or CustomerCreditNoteDto: the same shape, `documentType`
    CreditNote). Base-currency amounts are the document amounts at `exchangeRate`."""
    post_period, financial_period = _period(record.document_date)
    in_base = record.base
    return {
        "referenceNumber": record.reference_number,
        "documentType": record.document_type,
        "status": record.status,
        "hold": record.hold,
        "customer": {"number": record.customer_number, "name": record.customer_name},
        "documentDate": api_date(record.document_date),
        "origInvoiceDate": api_date(record.orig_invoice_date or record.document_date),
        "documentDueDate": api_date(record.due_date),
        "cashDiscountDate": api_date(record.due_date),
        "postPeriod": post_period,
        "financialPeriod": financial_period,
        "creditTerms": {"id": record.credit_terms_id, "description": record.credit_terms_id},
        "currencyId": record.currency_id,
        "exchangeRate": json_number(record.exchange_rate),
        "amount": json_number(in_base(record.amount)),
        "amountInCurrency": json_number(record.amount),
        "balance": json_number(in_base(record.balance)),
        "balanceInCurrency": json_number(record.balance),
        "cashDiscount": 0,
        "cashDiscountInCurrency": 0,
        "detailTotal": json_number(in_base(record.detail_total)),
        "detailTotalInCurrency": json_number(record.detail_total),
        "vatTaxableTotal": json_number(in_base(record.vat_taxable_total)),
        "vatTaxableTotalInCurrency": json_number(record.vat_taxable_total),
        "vatExemptTotal": json_number(in_base(record.vat_exempt_total)),
        "vatExemptTotalInCurrency": json_number(record.vat_exempt_total),
        "vatTotal": json_number(in_base(record.vat_total)),
        "vatTotalInCurrency": json_number(record.vat_total),
        "roundingDiff": 0,
        "paymentReference": record.payment_reference,
        "externalReference": record.external_reference,
        "customerRefNumber": record.customer_ref_number,
        "invoiceText": record.invoice_text,
        "note": record.note,
        "invoiceLines": [_invoice_line(line, record) for line in record.lines],
        "taxDetails": [
            {
                "taxId": {"id": code, "description": VAT_CODES[code][1]},
                "recordId": index + 1,
                "vatRate": json_number(rate),
                "taxableAmount": json_number(in_base(base)),
                "taxableAmountInCurrency": json_number(base),
                "vatAmount": json_number(in_base(vat)),
                "vatAmountInCurrency": json_number(vat),
            }
            for index, (code, rate, base, vat) in enumerate(record.tax_details())
        ],
        "applications": _applications(record, company),
        "lastModifiedDateTime": api_datetime(record.last_modified, zone),
        "createdDateTime": api_datetime(record.created, zone),
        "timeStamp": etag_of(record.rowversion),
        "errorInfo": None,
    }


def _payment_line(line: PaymentLine, payment: Payment, company: Company) -> dict[str, Any]:
    document = company.invoices.get(line.ref_nbr)
    balance = None
    if document is not None:
        # The document's balance once this payment is booked.
        after = document.balance if payment.released else document.balance - line.amount_paid
        balance = json_number(after)
    return {
        "documentType": line.document_type,
        "refNbr": line.ref_nbr,
        "amountPaid": json_number(line.amount_paid),
        "cashDiscountTaken": 0,
        "balanceWriteOff": 0,
        "date": api_date(document.document_date) if document else None,
        "dueDate": api_date(document.due_date) if document else None,
        "balance": balance,
        "cashDiscountBalance": 0,
        "description": document.invoice_text if document else None,
        "currency": document.currency_id if document else payment.currency,
        "postPeriod": _period(document.document_date)[0] if document else None,
        "customerOrder": document.customer_ref_number if document else None,
        "crossRate": 1,
    }


def payment(record: Payment, company: Company, zone: tzinfo) -> dict[str, Any]:
    """A PaymentDto."""
    return {
        "type": record.type,
        "refNbr": record.ref_nbr,
        "status": record.status,
        "hold": record.hold,
        "applicationDate": api_date(record.application_date),
        "applicationPeriod": _period(record.application_date)[0],
        "paymentRef": record.payment_ref,
        "customer": {"number": record.customer_number, "name": record.customer_name},
        "paymentMethod": {"id": record.payment_method, "description": record.payment_method},
        "cashAccount": record.cash_account,
        "currency": record.currency,
        "paymentAmount": json_number(record.payment_amount),
        "paymentAmountInCurrency": json_number(record.payment_amount),
        "invoiceText": record.invoice_text,
        "appliedToDocuments": json_number(record.applied),
        "appliedToOrders": 0,
        "availableBalance": json_number(record.available_balance),
        "availableBalanceInCurrency": json_number(record.available_balance),
        "writeOffAmount": 0,
        "financeCharges": 0,
        "deductedCharges": 0,
        "lastModifiedDateTime": api_datetime(record.last_modified, zone),
        "paymentLines": [_payment_line(line, record, company) for line in record.lines],
        "timeStamp": etag_of(record.rowversion),
        "errorInfo": None,
    }
