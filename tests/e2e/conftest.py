"""e2e fixtures: the whole stack (real Kafka, PostgreSQL, sandbox, five service processes)."""

import os
import uuid

import pytest

# Poll fast in tests; a real deployment polls every 30 s.
os.environ.setdefault("POLL_INTERVAL_SECONDS", "1")


@pytest.fixture
def tenant_id() -> str:
    """A fresh tenant per test, so tests never depend on each other's data."""
    return f"t-{uuid.uuid4().hex[:10]}"
