"""asyncpg adapter for connections and seen document versions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg
from nordflow_runtime import tenants
from nordflow_schemas.common import ConnectionMode, SourceSystem

from .domain import POLLED_SYSTEMS, Connection

POLLED = sorted(s.value for s in POLLED_SYSTEMS)
BACKFILL_ATTEMPTS = 3


class ConnectionBusyError(Exception):
    """The connection is being polled, synced or backfilled (its row is locked) right now."""


# Configuration changes wait at most this long for a running poll, sync or backfill.
LOCK_TIMEOUT = "5s"


async def _write_unless_busy(pool: asyncpg.Pool, connection_id: str, sql: str, *args: Any) -> Any:
    """One statement that changes a connection's row, refused rather than left hanging while
    a poll, sync or backfill holds the row (a backfill can take hours)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            return await conn.fetchval(sql, *args)
        except asyncpg.exceptions.LockNotAvailableError:
            raise ConnectionBusyError(
                f"connection {connection_id!r} is being polled, synced or backfilled right "
                "now; try again when that has finished"
            ) from None


def _connection(row: asyncpg.Record) -> Connection:
    return Connection(
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        system=SourceSystem(row["system"]),
        base_url=row["base_url"],
        token_sealed=bytes(row["token_sealed"]),
        mode=ConnectionMode(row["mode"]),
        seller=json.loads(row["seller"]),
        cutoff_at=row["cutoff_at"],
        cursor_at=row["cursor_at"],
        updated_at=row.get("updated_at"),
        poll_interval=dt.timedelta(seconds=row["poll_interval_seconds"])
        if row.get("poll_interval_seconds")
        else None,
    )


class PgConnectionRepository:
    """Connections, leased one poller at a time so replicas never poll the same one at once."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(
        self,
        *,
        connection_id: str,
        tenant_id: str,
        system: SourceSystem,
        base_url: str,
        token_sealed: bytes,
        mode: ConnectionMode,
        seller: dict[str, Any],
        cutoff_at: dt.datetime,
        poll_interval_seconds: int | None = None,
    ) -> None:
        """Create or replace a connection's configuration (the cursor is kept).

        Raises PermissionError if the id belongs to another tenant, ConnectionBusyError while
        the connection is being polled, synced or backfilled.
        """
        saved = await _write_unless_busy(
            self.pool,
            connection_id,
            """INSERT INTO connections (connection_id, tenant_id, system, base_url, token_sealed,
                                        mode, seller, cutoff_at, poll_interval_seconds)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)
               ON CONFLICT (connection_id) DO UPDATE SET
                 base_url = EXCLUDED.base_url, token_sealed = EXCLUDED.token_sealed,
                 mode = EXCLUDED.mode, seller = EXCLUDED.seller, cutoff_at = EXCLUDED.cutoff_at,
                 poll_interval_seconds = EXCLUDED.poll_interval_seconds,
                 next_poll_at = now(), updated_at = clock_timestamp()
               WHERE connections.tenant_id = EXCLUDED.tenant_id
                 AND connections.system = EXCLUDED.system
               RETURNING true""",
            connection_id,
            tenant_id,
            system.value,
            base_url,
            token_sealed,
            mode.value,
            json.dumps(seller),
            cutoff_at,
            poll_interval_seconds,
        )
        if not saved:
            raise PermissionError(
                f"connection {connection_id!r} exists for another tenant or source system"
            )

    async def list(self, tenant_id: str | None = None) -> list[asyncpg.Record]:
        """Connections with their polling state (never the token)."""
        return list(
            await self.pool.fetch(
                "SELECT connection_id, tenant_id, system, base_url, mode, cutoff_at, cursor_at, "
                "poll_interval_seconds, last_poll_at, last_error, next_poll_at FROM connections "
                "WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id, connection_id",
                tenant_id,
            )
        )

    @staticmethod
    async def claim_due(conn: asyncpg.Connection) -> Connection | None:
        """Lock one due polling connection (test or automatic mode) in ``conn``'s transaction.

        Push connections (Winner, on-premise) are never claimed: nothing is polled there. The
        row lock lasts as long as the poll's transaction; if the poller dies, PostgreSQL
        releases it at once, so another replica (or the restarted one) polls it next. NO KEY
        UPDATE, because the documents' foreign key takes KEY SHARE on this row meanwhile.
        """
        row = await conn.fetchrow(
            """SELECT * FROM connections
               WHERE mode IN ('test', 'automatic') AND next_poll_at <= now()
                 AND system = ANY($1::text[])
               ORDER BY next_poll_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED""",
            POLLED,
        )
        return None if row is None else _connection(row)

    @staticmethod
    async def finish_poll(
        conn: asyncpg.Connection,
        connection_id: str,
        *,
        cursor_at: dt.datetime | None,
        next_poll_at: dt.datetime,
        error: str | None,
    ) -> None:
        """Record the poll; advance the cursor only after a complete poll."""
        await conn.execute(
            """UPDATE connections SET last_poll_at = now(),
                   cursor_at = COALESCE($2, cursor_at), next_poll_at = $3, last_error = $4
               WHERE connection_id = $1""",
            connection_id,
            cursor_at,
            next_poll_at,
            error,
        )


class PgDocumentRepository:
    """The last version seen of each source document (the poller's dedupe state)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def newest_snapshot(
        self, connection_id: str, document_id: str, tenant_id: str, source_time: dt.datetime
    ) -> bool:
        """Remember the source's change time of a snapshot; False if a newer one was already
        taken (a late webhook retry, or a poll overtaken by a webhook), so an older content
        is never emitted over a newer one."""
        newest = await self.conn.fetchval(
            """INSERT INTO pushed_documents (connection_id, document_id, tenant_id, source_time)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (connection_id, document_id) DO UPDATE
                 SET source_time = EXCLUDED.source_time
               WHERE pushed_documents.source_time <= EXCLUDED.source_time
               RETURNING true""",
            connection_id,
            document_id,
            tenant_id,
            source_time,
        )
        return bool(newest)

    async def record_version(
        self, connection_id: str, document_id: str, tenant_id: str, invoice_id: str, version: str
    ) -> bool:
        """Remember a version; True if it is new (first sight or changed content)."""
        row = await self.conn.fetchrow(
            """INSERT INTO documents (connection_id, document_id, tenant_id, invoice_id, version)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (connection_id, document_id) DO UPDATE SET
                   version = EXCLUDED.version, versions_seen = documents.versions_seen + 1,
                   fetched_at = now()
               WHERE documents.version <> EXCLUDED.version
               RETURNING versions_seen""",
            connection_id,
            document_id,
            tenant_id,
            invoice_id,
            version,
        )
        return row is not None


class PgTenantRepository:
    """API tokens and sync requests, always scoped to one tenant."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_token(self, tenant_id: str, name: str) -> str:
        """A new API token for a tenant; shown once, stored only as a hash."""
        return await tenants.create_token(self.pool, tenant_id, name)

    async def configured(self, tenant_id: str, connection_id: str) -> Connection | None:
        """One of the tenant's connections as the poller sees it (its token still sealed)."""
        row = await self.pool.fetchrow(
            "SELECT * FROM connections WHERE tenant_id = $1 AND connection_id = $2",
            tenant_id,
            connection_id,
        )
        return None if row is None else _connection(row)

    async def connection(self, tenant_id: str, connection_id: str) -> asyncpg.Record | None:
        """One of the tenant's connections (never the token)."""
        return await self.pool.fetchrow(
            "SELECT connection_id, tenant_id, system, base_url, mode, cutoff_at, cursor_at, "
            "poll_interval_seconds, last_poll_at, last_error, next_poll_at FROM connections "
            "WHERE tenant_id = $1 AND connection_id = $2",
            tenant_id,
            connection_id,
        )

    async def set_mode(self, tenant_id: str, connection_id: str, mode: ConnectionMode) -> bool:
        """Change a connection's mode; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        done = await _write_unless_busy(
            self.pool,
            connection_id,
            "UPDATE connections SET mode = $3, next_poll_at = now() "
            "WHERE tenant_id = $1 AND connection_id = $2 RETURNING true",
            tenant_id,
            connection_id,
            mode.value,
        )
        return bool(done)

    async def request_sync(
        self, tenant_id: str, connection_id: str, limit: int | None, documents: list[str]
    ) -> int:
        """Queue a sync request; its id."""
        request_id: int = await self.pool.fetchval(
            "INSERT INTO sync_requests (connection_id, tenant_id, limit_count, document_ids) "
            "VALUES ($1, $2, $3, $4) RETURNING request_id",
            connection_id,
            tenant_id,
            limit,
            documents,
        )
        return request_id

    async def request_backfill(self, tenant_id: str, connection_id: str, since: dt.datetime) -> int:
        """Queue a backfill from ``since``; its id."""
        request_id: int = await self.pool.fetchval(
            "INSERT INTO backfill_requests (connection_id, tenant_id, since) "
            "VALUES ($1, $2, $3) RETURNING request_id",
            connection_id,
            tenant_id,
            since,
        )
        return request_id

    async def backfill_request(self, tenant_id: str, request_id: int) -> asyncpg.Record | None:
        """A backfill request of the tenant's, with its progress."""
        return await self.pool.fetchrow(
            "SELECT * FROM backfill_requests WHERE tenant_id = $1 AND request_id = $2",
            tenant_id,
            request_id,
        )

    async def backfill_requests(
        self, tenant_id: str | None, connection_id: str | None = None
    ) -> list[asyncpg.Record]:
        """Backfill requests, newest first (an operator's view when ``tenant_id`` is None)."""
        return list(
            await self.pool.fetch(
                "SELECT * FROM backfill_requests WHERE ($1::text IS NULL OR tenant_id = $1) "
                "AND ($2::text IS NULL OR connection_id = $2) ORDER BY request_id DESC LIMIT 100",
                tenant_id,
                connection_id,
            )
        )

    async def sync_request(self, tenant_id: str, request_id: int) -> asyncpg.Record | None:
        """A sync request of the tenant's."""
        return await self.pool.fetchrow(
            "SELECT * FROM sync_requests WHERE tenant_id = $1 AND request_id = $2",
            tenant_id,
            request_id,
        )


async def claim_sync_request(conn: asyncpg.Connection) -> tuple[asyncpg.Record, Connection] | None:
    """Lock the oldest pending sync request and its connection in ``conn``'s transaction."""
    row = await conn.fetchrow(
        """SELECT r.request_id, r.limit_count, r.document_ids, c.*
           FROM sync_requests r JOIN connections c USING (connection_id)
           WHERE r.finished_at IS NULL
           ORDER BY r.requested_at LIMIT 1
           FOR NO KEY UPDATE OF r, c SKIP LOCKED"""
    )
    return None if row is None else (row, _connection(row))


async def finish_sync_request(
    conn: asyncpg.Connection, request_id: int, emitted: int | None, error: str | None
) -> None:
    """Record how a sync request ended."""
    await conn.execute(
        "UPDATE sync_requests SET finished_at = now(), emitted = $2, error = $3 "
        "WHERE request_id = $1",
        request_id,
        emitted,
        error,
    )


async def claim_backfill_request(
    conn: asyncpg.Connection,
) -> tuple[asyncpg.Record, Connection] | None:
    """Lock the connection of the oldest due backfill in ``conn``'s transaction.

    Only the connection row is locked (polls, syncs and other backfills of it wait), so the
    request's progress can be committed from other connections while the backfill runs. A
    request whose runner died is still unfinished and is claimed again.
    """
    row = await conn.fetchrow(
        """SELECT r.request_id, r.since, r.attempts, c.*
           FROM backfill_requests r JOIN connections c USING (connection_id)
           WHERE r.finished_at IS NULL AND r.not_before <= now()
           ORDER BY r.not_before, r.request_id LIMIT 1
           FOR NO KEY UPDATE OF c SKIP LOCKED"""
    )
    if row is None:
        return None
    # Another runner may have finished it between our snapshot and the lock.
    still_pending = await conn.fetchval(
        "SELECT finished_at IS NULL FROM backfill_requests WHERE request_id = $1",
        row["request_id"],
    )
    return (row, _connection(row)) if still_pending else None


async def start_backfill(pool: asyncpg.Pool, request_id: int) -> None:
    """Count an attempt (committed at once, so progress is visible while it runs)."""
    await pool.execute(
        "UPDATE backfill_requests SET attempts = attempts + 1, listed = 0, error = NULL, "
        "started_at = COALESCE(started_at, now()) WHERE request_id = $1",
        request_id,
    )


async def record_backfill_progress(pool: asyncpg.Pool, request_id: int, listed: int) -> None:
    """How many documents the running attempt listed so far."""
    await pool.execute(
        "UPDATE backfill_requests SET listed = $2 WHERE request_id = $1", request_id, listed
    )


async def count_backfill_emission(conn: asyncpg.Connection, request_id: int) -> None:
    """One more version emitted, counted in the emission's own transaction (exact across
    crashes and attempts)."""
    await conn.execute(
        "UPDATE backfill_requests SET emitted = emitted + 1 WHERE request_id = $1", request_id
    )


async def finish_backfill(
    pool: asyncpg.Pool, request_id: int, attempts: int, error: str | None
) -> None:
    """Done, or failed: retried later up to BACKFILL_ATTEMPTS, then finished with the error."""
    if error is None or attempts >= BACKFILL_ATTEMPTS:
        await pool.execute(
            "UPDATE backfill_requests SET finished_at = now(), error = $2 WHERE request_id = $1",
            request_id,
            error,
        )
        return
    await pool.execute(
        "UPDATE backfill_requests SET error = $2, "
        "not_before = now() + make_interval(secs => $3) WHERE request_id = $1",
        request_id,
        error,
        30.0 * attempts,
    )
