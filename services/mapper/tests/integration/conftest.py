"""Fixtures: a migrated mapper schema on the real PostgreSQL, and an in-process Fortnox sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from mapper.app import create_app
from mapper.config import Settings
from nordflow_runtime import db
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox
from pydantic import SecretStr


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    """The Fortnox sandbox, where the payment documents come from."""
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
async def pool(fresh_database_url: str, kafka_bootstrap: str) -> AsyncIterator[asyncpg.Pool]:
    """mapper's schema migrated the way the service does it, and a pool bound to it."""
    app = create_app(
        Settings(
            kafka_bootstrap_servers=kafka_bootstrap, database_url=SecretStr(fresh_database_url)
        )
    )
    assert await app.migrate(), "a fresh database gets every migration"
    created = await db.create_pool(fresh_database_url, app.schema, min_size=1, max_size=4)
    yield created
    await created.close()
