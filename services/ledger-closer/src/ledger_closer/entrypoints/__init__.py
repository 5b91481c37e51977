"""ledger-closer's entrypoints: the consumer handlers, the job handler and the command line."""
