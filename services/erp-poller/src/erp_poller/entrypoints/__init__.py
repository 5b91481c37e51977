"""erp-poller's entrypoints: the scheduler's loops, the HTTP routers and the command line."""
