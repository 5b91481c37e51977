"""One rate-limit budget per ERP company, shared by every service and replica that calls it.

Fortnox allows 25 calls per 5 s per company; erp-poller (reading) and ledger-closer (writing)
both call the same company, each from several replicas. A limiter in one process cannot see
the others' calls, so the budget lives in PostgreSQL, which every service already reaches:
the table ``nordflow_budget.calls`` (its own schema, outside every service's) holds one row
per call let go, keyed by ``<system>:<connection id>`` — the erp-poller connection id, by which
ledger-closer's write connections name the company too. A call is let go under a transaction
advisory lock of its key when fewer than ``limit`` calls were let go in the last ``window``
seconds (plus ``margin``: a call counts from when it was let go, not from when the partner
saw it); otherwise the caller sleeps until the oldest leaves the window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg

from .resilience import Slot

SCHEMA = "nordflow_budget"
_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.calls (
    key text NOT NULL,
    at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_key_at ON {SCHEMA}.calls (key, at);
"""
# Keeps the DDL of concurrent first users (two services starting together) apart.
_DDL_LOCK = 0x6E66_6275_6467  # "nfbudg"
_ready: set[int] = set()


def budget_key(system: str, connection_id: str) -> str:
    """The budget's key of one company: its system and the erp-poller connection id."""
    return f"{system}:{connection_id}"


def per_endpoint(
    pool: asyncpg.Pool, system: str, client_id: str, limit: int, window: float
) -> Callable[[str], PgRateBudget]:
    """A budget per endpoint of one OAuth client, for a partner that counts that way (Visma
    eAccounting: 600 calls a minute per client and endpoint): key
    ``<system>:<client id><endpoint>``, shared by every service and replica using the client."""

    def budget(endpoint: str) -> PgRateBudget:
        return PgRateBudget(pool, budget_key(system, f"{client_id}{endpoint}"), limit, window)

    return budget


async def ensure_schema(pool: asyncpg.Pool) -> None:
    """Create the budget's schema and table once per database (idempotent)."""
    if id(pool) in _ready:
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _DDL_LOCK)
        await conn.execute(_DDL)
    _ready.add(id(pool))


class PgRateBudget:
    """At most ``limit`` calls in any ``window`` seconds for one key, across processes.

    Used where a client takes a limiter (``acquire``/``done``): ``done`` has nothing to do,
    the ``margin`` covers the time between letting a call go and the partner counting it.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        key: str,
        limit: int,
        window: float,
        *,
        margin: float = 1.0,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit and window must be positive")
        self.pool = pool
        self.key = key
        self.limit = limit
        self.window = window + margin

    async def acquire(self) -> Slot:
        """Wait until the key's window has room, and take one place in it."""
        await ensure_schema(self.pool)
        while True:
            wait = await self._try()
            if wait is None:
                return Slot(time.monotonic())
            await asyncio.sleep(wait)

    async def _try(self) -> float | None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", self.key)
            await conn.execute(
                f"DELETE FROM {SCHEMA}.calls WHERE key = $1 "
                "AND at < clock_timestamp() - make_interval(secs => $2)",
                self.key,
                self.window,
            )
            row = await conn.fetchrow(
                f"SELECT count(*) AS used, EXTRACT(EPOCH FROM (min(at) + make_interval(secs => $2)"
                f" - clock_timestamp())) AS wait FROM {SCHEMA}.calls WHERE key = $1",
                self.key,
                self.window,
            )
            if row["used"] < self.limit:
                await conn.execute(
                    f"INSERT INTO {SCHEMA}.calls (key, at) VALUES ($1, clock_timestamp())",
                    self.key,
                )
                return None
            return max(float(row["wait"] or 0.0), 0.0) + 0.01

    @staticmethod
    def done(slot: Slot) -> None:
        """Nothing to record: the window counts from when the call was let go."""
