"""factoring-gateway's entrypoints: the consumer handlers and the command line."""
