"""Documents for invoice recipients: PEPPOL BIS UBL, the invoice PDF, letters, rule checks."""
