"""Shared plumbing of the partner sandboxes: accounts, auth, faults, idempotency, logs, tests."""
