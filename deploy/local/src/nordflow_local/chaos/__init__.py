"""The fault harness: feed invoices, crash services and infrastructure, check the invariants."""
