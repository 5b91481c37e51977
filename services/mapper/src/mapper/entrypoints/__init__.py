"""mapper's entrypoints: the consumer handler and the command line."""
