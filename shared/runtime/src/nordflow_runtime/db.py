"""PostgreSQL: a pool bound to the service's own schema, and versioned SQL migrations."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file; ``scope`` keeps the runtime's and the service's apart."""

    scope: str
    version: int
    name: str
    sql: str


def schema_name(service: str) -> str:
    """The PostgreSQL schema a service owns: its name with underscores."""
    return service.replace("-", "_")


def load_migrations(package: str, scope: str) -> list[Migration]:
    """The ``migrations/NNN_name.sql`` files shipped inside a package, in order."""
    out = []
    for entry in resources.files(package).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            out.append(Migration(scope, int(match[1]), match[2], entry.read_text()))
    return sorted(out, key=lambda m: m.version)


async def create_pool(
    url: str, schema: str, *, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see only the service's schema, retried until reachable."""
    delay = 0.2
    for attempt in range(40):
        try:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            finally:
                await conn.close()
            pool: asyncpg.Pool = await asyncpg.create_pool(
                url,
                min_size=min_size,
                max_size=max_size,
                reset=_keep_session,
                server_settings={
                    "search_path": schema,
                    "application_name": schema,
                    # Notice a vanished client within about a minute, releasing its locks.
                    "tcp_keepalives_idle": "30",
                    "tcp_keepalives_interval": "10",
                    "tcp_keepalives_count": "3",
                },
            )
            return pool
        except (OSError, asyncpg.PostgresError) as exc:
            if attempt == 39:
                raise
            log.warning("database not reachable yet: %s", type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise RuntimeError("unreachable")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is: no round trip to the server.

    asyncpg's default resets every connection given back to the pool with a query of its
    own (unlock all advisory locks, close cursors, unlisten, reset settings): a second round
    trip for each `pool.fetchval` and each `acquire`. Nothing here leaves such state behind:
    an open transaction is still rolled back by asyncpg before this is called, cursors live
    only inside transactions, nothing listens or changes a session setting, and the only
    session-level locks are `session_lock`'s, which end their connection when they cannot be
    sure the lock was given back.
    """


@asynccontextmanager
async def session_lock(pool: asyncpg.Pool, key: int | str) -> AsyncIterator[asyncpg.Connection]:
    """Hold PostgreSQL's session-level advisory lock ``key`` on a connection of the pool.

    A text key names the lock `hashtextextended(key, 0)`. Waits until no other session holds
    it. Should taking or giving back the lock fail or be cancelled, the connection is closed
    instead of returned to the pool, so the server releases whatever it holds (the pool does
    not reset connections: `_keep_session`).
    """
    lock_id = "hashtextextended($1, 0)" if isinstance(key, str) else "$1"
    async with pool.acquire() as conn:
        try:
            await conn.execute(f"SELECT pg_advisory_lock({lock_id})", key)
        except BaseException:
            conn.terminate()
            raise
        try:
            yield conn
        finally:
            try:
                await conn.execute(f"SELECT pg_advisory_unlock({lock_id})", key)
            except BaseException:
                conn.terminate()
                raise


async def migrate(pool: asyncpg.Pool, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what is new, each file in its own transaction, serialised across replicas."""
    applied_now: list[str] = []
    lock = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
    async with session_lock(pool, lock) as conn:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   scope text NOT NULL, version integer NOT NULL, name text NOT NULL,
                   checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (scope, version))"""
        )
        rows = await conn.fetch("SELECT scope, version, checksum FROM schema_migrations")
        done = {(r["scope"], r["version"]): r["checksum"] for r in rows}
        for m in migrations:
            checksum = hashlib.sha256(m.sql.encode()).hexdigest()
            previous = done.get((m.scope, m.version))
            if previous is not None:
                if previous != checksum:
                    raise RuntimeError(
                        f"migration {m.scope}/{m.version:03d}_{m.name} changed after it was "
                        "applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (scope, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    m.scope,
                    m.version,
                    m.name,
                    checksum,
                )
            applied_now.append(f"{m.scope}/{m.version:03d}_{m.name}")
            log.info("applied migration %s/%03d_%s", m.scope, m.version, m.name)
    return applied_now


async def prune(pool: asyncpg.Pool, inbox_days: int, outbox_hours: int) -> tuple[int, int]:
    """Delete inbox ids older than the redelivery window and published outbox rows."""
    inbox = await pool.execute(
        "DELETE FROM inbox WHERE received_at < now() - make_interval(days => $1)", inbox_days
    )
    outbox = await pool.execute(
        "DELETE FROM outbox WHERE sent_at < now() - make_interval(hours => $1)", outbox_hours
    )
    return int(inbox.split()[-1]), int(outbox.split()[-1])
