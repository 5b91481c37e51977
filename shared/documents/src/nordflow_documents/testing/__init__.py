"""Test factories for code that renders documents: canonical invoices and attached files."""
