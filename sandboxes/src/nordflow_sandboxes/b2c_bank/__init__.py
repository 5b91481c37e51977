"""A B2C bank e-invoice sandbox: consumers registered for e-faktura/eFaktura, OCR/KID invoices."""

from nordflow_sandboxes.b2c_bank.app import create_app
from nordflow_sandboxes.b2c_bank.einvoices import B2cBankState, Consumer, EInvoice

__all__ = ["B2cBankState", "Consumer", "EInvoice", "create_app"]
