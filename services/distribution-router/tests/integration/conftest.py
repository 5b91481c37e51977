"""Fixtures: a migrated distribution_router schema on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from distribution_router.app import create_app
from distribution_router.config import Settings
from pydantic import SecretStr


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees the service's schema, as the consumer's connections do."""
    app = create_app(
        Settings(kafka_bootstrap_servers="unused:9092", database_url=SecretStr(fresh_database_url))
    )
    await app.migrate()
    assert app.schema == "distribution_router"
    connection = await asyncpg.connect(
        fresh_database_url, server_settings={"search_path": app.schema}
    )
    yield connection
    await connection.close()
