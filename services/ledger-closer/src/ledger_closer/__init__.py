"""The ledger-closer service."""
