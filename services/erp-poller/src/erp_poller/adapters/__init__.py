"""erp-poller's adapters: the PostgreSQL repositories (all of its SQL), the source systems'
clients and the per-connection cache of them, the OAuth token store."""
