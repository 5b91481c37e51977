"""erp-poller's HTTP routers: connections, pushes (ingest) and the tenant's profile."""
