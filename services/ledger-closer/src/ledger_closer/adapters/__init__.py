"""ledger-closer's adapters: the PostgreSQL repositories and the ERP writers."""
