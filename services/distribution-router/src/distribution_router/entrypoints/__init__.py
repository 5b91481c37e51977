"""distribution-router's entrypoints: the consumer, the send job, the HTTP routers, the CLI."""
