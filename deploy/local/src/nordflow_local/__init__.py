"""Local infrastructure for development and tests: Kafka, PostgreSQL, sandboxes, services."""
