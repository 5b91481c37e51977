"""Documents sent to recipients: e-invoice formats and PDF."""
