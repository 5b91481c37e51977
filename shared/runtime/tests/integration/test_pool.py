"""The service's pool on the real PostgreSQL server: a connection goes back to it without a
reset round trip, yet with no transaction left open, and session locks leave nothing held."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nordflow_runtime import db

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection, so every call below runs on the same server session."""
    schema = f"pool_{uuid.uuid4().hex[:8]}"
    created = await db.create_pool(database_url, schema, min_size=1, max_size=1)
    await created.execute("CREATE TABLE notes (note text)")
    yield created
    await created.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await created.close()


async def last_query(database_url: str, pid: int) -> str:
    """What the server session ``pid`` ran last, as the server saw it."""
    observer = await asyncpg.connect(database_url)
    try:
        query: str = await observer.fetchval(
            "SELECT query FROM pg_stat_activity WHERE pid = $1", pid
        )
        return query
    finally:
        await observer.close()


async def is_free(pool: asyncpg.Pool, lock: str) -> bool:
    """Whether a session of ``pool`` takes the advisory lock at once (given back after)."""
    async with pool.acquire() as conn:
        taken: bool = await conn.fetchval(f"SELECT pg_try_advisory_lock({lock})")
        if taken:
            await conn.execute(f"SELECT pg_advisory_unlock({lock})")
        return taken


async def test_a_connection_goes_back_to_the_pool_without_a_reset_query(
    pool: asyncpg.Pool, database_url: str
) -> None:
    pid = await pool.fetchval("SELECT pg_backend_pid()")
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 'the last query'")
    assert await pool.fetchval("SELECT pg_backend_pid()") == pid  # the same session
    await pool.fetchval("SELECT 'the very last query'")

    assert await last_query(database_url, pid) == "SELECT 'the very last query'"


async def test_a_transaction_left_open_is_rolled_back_when_its_connection_goes_back(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO notes VALUES ('never committed')")

    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT count(*) FROM notes") == 0


async def test_a_session_lock_is_held_by_one_holder_at_a_time(
    pool: asyncpg.Pool, database_url: str
) -> None:
    other = await db.create_pool(database_url, "public", min_size=1, max_size=1)
    try:
        order: list[str] = []
        async with db.session_lock(pool, "tenant-1:connection-1"):
            waiting = asyncio.create_task(_hold(other, "tenant-1:connection-1", order))
            await asyncio.sleep(0.3)
            assert order == []  # still waiting for the lock
            order.append("first released")
        await asyncio.wait_for(waiting, 10)
        assert order == ["first released", "second held"]
        # Given back by both: a third session takes it at once.
        assert await is_free(pool, "hashtextextended('tenant-1:connection-1', 0)")
    finally:
        await other.close()


async def _hold(pool: asyncpg.Pool, key: int | str, order: list[str]) -> None:
    async with db.session_lock(pool, key):
        order.append("second held")


async def test_a_cancelled_wait_for_a_session_lock_leaves_nothing_held(
    pool: asyncpg.Pool, database_url: str
) -> None:
    other = await db.create_pool(database_url, "public", min_size=1, max_size=1)
    try:
        async with db.session_lock(pool, 42):
            waiting = asyncio.create_task(_hold(other, 42, []))
            await asyncio.sleep(0.3)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        # Neither session holds it now, and the cancelled one's pool still works.
        assert await is_free(other, "42")
        assert await is_free(pool, "42")
    finally:
        await other.close()
