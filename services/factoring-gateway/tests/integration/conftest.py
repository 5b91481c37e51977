"""Fixtures: a migrated factoring_gateway schema on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from factoring_gateway.app import create_app
from factoring_gateway.config import Settings
from pydantic import SecretStr


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees the service's schema, as the consumer's connections do."""
    app = create_app(
        Settings(kafka_bootstrap_servers="unused:9092", database_url=SecretStr(fresh_database_url))
    )
    await app.migrate()
    connection = await asyncpg.connect(
        fresh_database_url, server_settings={"search_path": app.schema}
    )
    assert app.schema == "factoring_gateway"
    yield connection
    await connection.close()
