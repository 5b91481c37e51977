"""Fixtures: distribution-router on a throwaway schema of the real PostgreSQL server
(`nordflow_runtime.testing.ServiceHarness`), its pool, a connection and an API client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from distribution_router.deps import Deps
from distribution_router.testing import start_harness
from nordflow_runtime.testing import ServiceHarness


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service's handlers, job and routers on its own fresh schema (no partner set)."""
    h = await start_harness(database_url)
    yield h
    await h.close()


@pytest.fixture
def pool(harness: ServiceHarness[Deps]) -> asyncpg.Pool:
    """The harness's pool (bound to its schema)."""
    return harness.pool


@pytest.fixture
async def conn(harness: ServiceHarness[Deps]) -> AsyncIterator[asyncpg.Connection]:
    """A connection that sees the service's schema, as the consumer's connections do."""
    async with harness.pool.acquire() as connection:
        yield connection


@pytest.fixture
async def client(harness: ServiceHarness[Deps]) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the service's routers (send a token with `testing.bearer`)."""
    async with harness.http() as http:
        yield http
