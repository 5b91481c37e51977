"""PostgreSQL repositories of erp-poller (all of its SQL), its outbox and unit of work."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
from nordflow_runtime import outbox, telemetry
from nordflow_runtime.tenant_profiles import PgTenantProfiles
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import DocumentKind, Event, Flow
from nordflow_schemas.tenant import TenantProfile
from nordflow_schemas.topics import ERP_POLLER

from ..domain.connections import (
    POLLED_SYSTEMS,
    BackfillRequest,
    Connection,
    ConnectionBusyError,
    ConnectionConfig,
    ConnectionRevision,
    ConnectionState,
    ConnectionTakenError,
    SyncRequest,
)
from ..domain.documents import Document
from ..domain.profiles import LegacySeller, StoredProfile
from ..service.ports import PendingDocument, ReceivedBatch, Repositories

POLLED = sorted(s.value for s in POLLED_SYSTEMS)
EVENT_SOURCE = f"/{ERP_POLLER}"
# Configuration changes wait at most this long for a running poll, sync or backfill.
LOCK_TIMEOUT = "5s"

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool
"""A transaction's connection, or (for single statements) the pool."""


@asynccontextmanager
async def _transaction(db: Db) -> AsyncIterator[asyncpg.Connection]:
    """A transaction of its own on a pool, a savepoint in a connection's transaction."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def _write_unless_busy(db: Db, connection_id: str, sql: str, *args: Any) -> Any:
    """One statement that changes a connection's row, refused rather than left hanging while
    a poll, sync or backfill holds the row (a backfill can take hours)."""
    async with _transaction(db) as conn:
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            found = await conn.fetchval(sql, *args)
        except asyncpg.exceptions.LockNotAvailableError:
            raise ConnectionBusyError(
                f"connection {connection_id!r} is being polled, synced or backfilled right "
                "now; try again when that has finished"
            ) from None
        await conn.execute("SET LOCAL lock_timeout TO DEFAULT")
        return found


def _flow(row: asyncpg.Record) -> Flow:
    return Flow(
        book_into=row["flow_book_into"],
        factor=row["flow_factor"],
        distribute=row["flow_distribute"],
    )


def _connection(row: asyncpg.Record) -> Connection:
    return Connection(
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        system=SourceSystem(row["system"]),
        base_url=row["base_url"],
        token_sealed=bytes(row["token_sealed"]),
        mode=ConnectionMode(row["mode"]),
        cutoff_at=row["cutoff_at"],
        cursor_at=row["cursor_at"],
        updated_at=row.get("updated_at"),
        poll_interval=dt.timedelta(seconds=row["poll_interval_seconds"])
        if row.get("poll_interval_seconds")
        else None,
        flow=_flow(row),
    )


_STATE = """SELECT c.connection_id, c.tenant_id, c.system, c.base_url, c.mode, c.cutoff_at,
       c.cursor_at, c.poll_interval_seconds, c.last_poll_at, c.last_success_at, c.last_error,
       c.next_poll_at, c.flow_book_into, c.flow_factor, c.flow_distribute,
       EXISTS (SELECT 1 FROM tenant_profiles p WHERE p.tenant_id = c.tenant_id)
           AS tenant_has_profile
FROM connections c
WHERE c.removed_at IS NULL"""


def _state(row: asyncpg.Record) -> ConnectionState:
    return ConnectionState(
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        system=SourceSystem(row["system"]),
        base_url=row["base_url"],
        mode=ConnectionMode(row["mode"]),
        cutoff_at=row["cutoff_at"],
        cursor_at=row["cursor_at"],
        poll_interval_seconds=row["poll_interval_seconds"],
        last_poll_at=row["last_poll_at"],
        last_error=row["last_error"],
        next_poll_at=row["next_poll_at"],
        tenant_has_profile=row["tenant_has_profile"],
        flow=_flow(row),
        last_success_at=row["last_success_at"],
    )


_REVISION = """connection_id, tenant_id, system, mode, revision, last_poll_at, last_success_at,
    last_error, next_poll_at, removed_at IS NOT NULL AS removed"""


def _revision(row: asyncpg.Record) -> ConnectionRevision:
    return ConnectionRevision(
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        system=SourceSystem(row["system"]),
        mode=ConnectionMode(row["mode"]),
        revision=row["revision"],
        last_poll_at=row["last_poll_at"],
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
        next_poll_at=row["next_poll_at"],
        removed=row["removed"],
    )


class PgConnectionRepository:
    """Connections in ``connections``; a poll holds its connection's row, so replicas never
    poll the same one at once."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def add(self, config: ConnectionConfig) -> None:
        """Create or replace a connection's configuration (the cursor is kept); a removed
        connection of the same tenant and system is added again (its cursor, versions seen
        and revision count kept).

        Raises ConnectionTakenError if the id belongs to another tenant or source system,
        ConnectionBusyError while the connection is being polled, synced or backfilled.
        """
        saved = await _write_unless_busy(
            self.db,
            config.connection_id,
            """INSERT INTO connections (connection_id, tenant_id, system, base_url, token_sealed,
                                        mode, cutoff_at, poll_interval_seconds, flow_book_into,
                                        flow_factor, flow_distribute)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
               ON CONFLICT (connection_id) DO UPDATE SET
                 base_url = EXCLUDED.base_url, token_sealed = EXCLUDED.token_sealed,
                 mode = EXCLUDED.mode, cutoff_at = EXCLUDED.cutoff_at,
                 poll_interval_seconds = EXCLUDED.poll_interval_seconds,
                 flow_book_into = EXCLUDED.flow_book_into, flow_factor = EXCLUDED.flow_factor,
                 flow_distribute = EXCLUDED.flow_distribute,
                 next_poll_at = now(), updated_at = clock_timestamp(), removed_at = NULL
               WHERE connections.tenant_id = EXCLUDED.tenant_id
                 AND connections.system = EXCLUDED.system
               RETURNING true""",
            config.connection_id,
            config.tenant_id,
            config.system.value,
            config.base_url,
            config.token_sealed,
            config.mode.value,
            config.cutoff_at,
            config.poll_interval_seconds,
            config.flow.book_into,
            config.flow.factor,
            config.flow.distribute,
        )
        if not saved:
            raise ConnectionTakenError(
                f"connection {config.connection_id!r} exists for another tenant or source system"
            )

    async def states(self, tenant_id: str | None = None) -> list[ConnectionState]:
        """Connections with their polling state (never the token)."""
        rows = await self.db.fetch(
            f"{_STATE} AND ($1::text IS NULL OR c.tenant_id = $1) "
            "ORDER BY c.tenant_id, c.connection_id",
            tenant_id,
        )
        return [_state(r) for r in rows]

    async def state(self, tenant_id: str, connection_id: str) -> ConnectionState | None:
        """One of the tenant's connections with its polling state."""
        row = await self.db.fetchrow(
            f"{_STATE} AND c.tenant_id = $1 AND c.connection_id = $2", tenant_id, connection_id
        )
        return None if row is None else _state(row)

    async def get(self, connection_id: str, tenant_id: str | None = None) -> Connection | None:
        """A connection as the poller sees it (its token still sealed); with ``tenant_id``,
        only if it is that tenant's."""
        row = await self.db.fetchrow(
            "SELECT * FROM connections WHERE connection_id = $1 AND removed_at IS NULL "
            "AND ($2::text IS NULL OR tenant_id = $2)",
            connection_id,
            tenant_id,
        )
        return None if row is None else _connection(row)

    async def of_tenant(self, tenant_id: str) -> list[Connection]:
        """The tenant's connections."""
        rows = await self.db.fetch(
            "SELECT * FROM connections WHERE tenant_id = $1 AND removed_at IS NULL "
            "ORDER BY connection_id",
            tenant_id,
        )
        return [_connection(r) for r in rows]

    async def set_mode(self, tenant_id: str, connection_id: str, mode: ConnectionMode) -> bool:
        """Change a connection's mode; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        done = await _write_unless_busy(
            self.db,
            connection_id,
            "UPDATE connections SET mode = $3, next_poll_at = now() "
            "WHERE tenant_id = $1 AND connection_id = $2 AND removed_at IS NULL RETURNING true",
            tenant_id,
            connection_id,
            mode.value,
        )
        return bool(done)

    async def make_due(self, tenant_id: str, connection_id: str) -> bool:
        """Make the connection due for a poll now; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        done = await _write_unless_busy(
            self.db,
            connection_id,
            "UPDATE connections SET next_poll_at = now() "
            "WHERE tenant_id = $1 AND connection_id = $2 AND removed_at IS NULL RETURNING true",
            tenant_id,
            connection_id,
        )
        return bool(done)

    async def remove(self, tenant_id: str, connection_id: str) -> bool:
        """Mark the connection removed (the row stays: its revision count, cursor and versions
        seen survive a re-add); False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        done = await _write_unless_busy(
            self.db,
            connection_id,
            "UPDATE connections SET removed_at = now() "
            "WHERE tenant_id = $1 AND connection_id = $2 AND removed_at IS NULL RETURNING true",
            tenant_id,
            connection_id,
        )
        return bool(done)

    async def next_revision(self, connection_id: str) -> ConnectionRevision:
        """Count one more revision of the connection's published state and return that state
        (removed or not); the row stays locked until the transaction ends, so concurrent
        changes publish in the order of their revisions."""
        row = await self.db.fetchrow(
            "UPDATE connections SET revision = revision + 1 WHERE connection_id = $1 "
            f"RETURNING {_REVISION}",
            connection_id,
        )
        if row is None:
            raise LookupError(f"no connection {connection_id!r}")
        return _revision(row)

    async def unannounced(self) -> str | None:
        """Lock one connection whose state was never published (skipping those a poll or
        another replica holds); its id."""
        found: str | None = await self.db.fetchval(
            "SELECT connection_id FROM connections WHERE revision = 0 "
            "ORDER BY connection_id LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED"
        )
        return found

    async def claim_due(self) -> Connection | None:
        """Lock one due polling connection (test or automatic mode) in this transaction.

        Push connections (Winner, on-premise) are never claimed: nothing is polled there. The
        row lock lasts as long as the poll's transaction; if the poller dies, PostgreSQL
        releases it at once, so another replica (or the restarted one) polls it next. NO KEY
        UPDATE, because the documents' foreign key takes KEY SHARE on this row meanwhile.
        """
        row = await self.db.fetchrow(
            """SELECT * FROM connections
               WHERE mode IN ('test', 'automatic') AND next_poll_at <= now()
                 AND system = ANY($1::text[]) AND removed_at IS NULL
               ORDER BY next_poll_at LIMIT 1 FOR NO KEY UPDATE SKIP LOCKED""",
            POLLED,
        )
        return None if row is None else _connection(row)

    async def finish_poll(
        self,
        connection_id: str,
        *,
        cursor_at: dt.datetime | None,
        next_poll_at: dt.datetime,
        error: str | None,
    ) -> None:
        """Record the poll (it ended now; without ``error``, it succeeded now); advance the
        cursor only after a complete poll."""
        # One instant: clock_timestamp() changes between two calls in one statement.
        await self.db.execute(
            """WITH ended AS (SELECT clock_timestamp() AS at)
               UPDATE connections SET last_poll_at = ended.at,
                   last_success_at = CASE WHEN $4::text IS NULL
                                          THEN ended.at ELSE last_success_at END,
                   cursor_at = COALESCE($2, cursor_at), next_poll_at = $3, last_error = $4
               FROM ended WHERE connection_id = $1""",
            connection_id,
            cursor_at,
            next_poll_at,
            error,
        )


class PgDocumentRepository:
    """The last version seen of each source document (``documents``) and the source's change
    time of pushed ones (``pushed_documents``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def newest_snapshot(
        self, connection_id: str, document_id: str, tenant_id: str, source_time: dt.datetime
    ) -> bool:
        """Remember the source's change time of a snapshot; False if a newer one was already
        taken."""
        newest = await self.db.fetchval(
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
        row = await self.db.fetchrow(
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

    async def version_of(self, connection_id: str, document_id: str) -> str | None:
        """The version last emitted of a document, if any."""
        version: str | None = await self.db.fetchval(
            "SELECT version FROM documents WHERE connection_id = $1 AND document_id = $2",
            connection_id,
            document_id,
        )
        return version


def _sync_request(row: asyncpg.Record) -> SyncRequest:
    return SyncRequest(
        request_id=row["request_id"],
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        limit=row["limit_count"],
        documents=tuple(row["document_ids"]),
        requested_at=row["requested_at"],
        finished_at=row.get("finished_at"),
        emitted=row.get("emitted"),
        error=row.get("error"),
    )


def _backfill_request(row: asyncpg.Record) -> BackfillRequest:
    return BackfillRequest(
        request_id=row["request_id"],
        connection_id=row["connection_id"],
        tenant_id=row["tenant_id"],
        since=row["since"],
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        attempts=row["attempts"],
        listed=row["listed"],
        emitted=row["emitted"],
        finished_at=row.get("finished_at"),
        error=row.get("error"),
    )


class PgRequestRepository:
    """Users' sync requests (``sync_requests``) and backfills (``backfill_requests``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def request_sync(
        self, tenant_id: str, connection_id: str, limit: int | None, documents: Sequence[str]
    ) -> SyncRequest:
        """Queue a sync request."""
        row = await self.db.fetchrow(
            "INSERT INTO sync_requests (connection_id, tenant_id, limit_count, document_ids) "
            "VALUES ($1, $2, $3, $4) RETURNING *",
            connection_id,
            tenant_id,
            limit,
            list(documents),
        )
        return _sync_request(row)

    async def sync_request(self, tenant_id: str, request_id: int) -> SyncRequest | None:
        """A sync request of the tenant's."""
        row = await self.db.fetchrow(
            "SELECT * FROM sync_requests WHERE tenant_id = $1 AND request_id = $2",
            tenant_id,
            request_id,
        )
        return None if row is None else _sync_request(row)

    async def claim_sync(self) -> tuple[SyncRequest, Connection] | None:
        """Lock the oldest pending sync request and its connection in this transaction."""
        row = await self.db.fetchrow(
            """SELECT r.request_id, r.limit_count, r.document_ids, r.requested_at, c.*
               FROM sync_requests r JOIN connections c USING (connection_id)
               WHERE r.finished_at IS NULL AND c.removed_at IS NULL
               ORDER BY r.requested_at LIMIT 1
               FOR NO KEY UPDATE OF r, c SKIP LOCKED"""
        )
        return None if row is None else (_sync_request(row), _connection(row))

    async def finish_sync(self, request_id: int, emitted: int | None, error: str | None) -> None:
        """Record how a sync request ended."""
        await self.db.execute(
            "UPDATE sync_requests SET finished_at = now(), emitted = $2, error = $3 "
            "WHERE request_id = $1",
            request_id,
            emitted,
            error,
        )

    async def cancel_pending(self, connection_id: str, error: str) -> int:
        """Finish the connection's unfinished sync and backfill requests with ``error``."""
        syncs = await self.db.fetch(
            "UPDATE sync_requests SET finished_at = now(), error = $2 "
            "WHERE connection_id = $1 AND finished_at IS NULL RETURNING request_id",
            connection_id,
            error,
        )
        backfills = await self.db.fetch(
            "UPDATE backfill_requests SET finished_at = now(), error = $2 "
            "WHERE connection_id = $1 AND finished_at IS NULL RETURNING request_id",
            connection_id,
            error,
        )
        return len(syncs) + len(backfills)

    async def request_backfill(
        self, tenant_id: str, connection_id: str, since: dt.datetime
    ) -> BackfillRequest:
        """Queue a backfill from ``since``."""
        row = await self.db.fetchrow(
            "INSERT INTO backfill_requests (connection_id, tenant_id, since) "
            "VALUES ($1, $2, $3) RETURNING *",
            connection_id,
            tenant_id,
            since,
        )
        return _backfill_request(row)

    async def backfill_request(self, tenant_id: str, request_id: int) -> BackfillRequest | None:
        """A backfill request of the tenant's, with its progress."""
        row = await self.db.fetchrow(
            "SELECT * FROM backfill_requests WHERE tenant_id = $1 AND request_id = $2",
            tenant_id,
            request_id,
        )
        return None if row is None else _backfill_request(row)

    async def backfill_requests(
        self, tenant_id: str | None, connection_id: str | None = None
    ) -> list[BackfillRequest]:
        """Backfill requests, newest first (an operator's view when ``tenant_id`` is None)."""
        rows = await self.db.fetch(
            "SELECT * FROM backfill_requests WHERE ($1::text IS NULL OR tenant_id = $1) "
            "AND ($2::text IS NULL OR connection_id = $2) ORDER BY request_id DESC LIMIT 100",
            tenant_id,
            connection_id,
        )
        return [_backfill_request(r) for r in rows]

    async def claim_backfill(self) -> tuple[BackfillRequest, Connection] | None:
        """Lock the connection of the oldest due backfill in this transaction.

        Only the connection row is locked (polls, syncs and other backfills of it wait), so the
        request's progress can be committed from other transactions while the backfill runs.
        A request whose runner died is still unfinished and is claimed again.
        """
        row = await self.db.fetchrow(
            """SELECT r.request_id, r.since, r.requested_at, r.started_at, r.attempts,
                      r.listed, r.emitted, c.*
               FROM backfill_requests r JOIN connections c USING (connection_id)
               WHERE r.finished_at IS NULL AND r.not_before <= now() AND c.removed_at IS NULL
               ORDER BY r.not_before, r.request_id LIMIT 1
               FOR NO KEY UPDATE OF c SKIP LOCKED"""
        )
        if row is None:
            return None
        # Another runner may have finished it between our snapshot and the lock.
        still_pending = await self.db.fetchval(
            "SELECT finished_at IS NULL FROM backfill_requests WHERE request_id = $1",
            row["request_id"],
        )
        return (_backfill_request(row), _connection(row)) if still_pending else None

    async def start_backfill(self, request_id: int) -> None:
        """Count an attempt (committed at once, so progress is visible while it runs)."""
        await self.db.execute(
            "UPDATE backfill_requests SET attempts = attempts + 1, listed = 0, error = NULL, "
            "started_at = COALESCE(started_at, now()) WHERE request_id = $1",
            request_id,
        )

    async def backfill_progress(self, request_id: int, listed: int) -> None:
        """How many documents the running attempt listed so far."""
        await self.db.execute(
            "UPDATE backfill_requests SET listed = $2 WHERE request_id = $1", request_id, listed
        )

    async def count_backfill_emission(self, request_id: int) -> None:
        """One more version emitted, counted in the emission's own transaction (exact across
        crashes and attempts)."""
        await self.db.execute(
            "UPDATE backfill_requests SET emitted = emitted + 1 WHERE request_id = $1", request_id
        )

    async def finish_backfill(self, request_id: int, error: str | None) -> None:
        """Done, or failed for good."""
        await self.db.execute(
            "UPDATE backfill_requests SET finished_at = now(), error = $2 WHERE request_id = $1",
            request_id,
            error,
        )

    async def retry_backfill(self, request_id: int, error: str, delay: dt.timedelta) -> None:
        """Failed this time: keep the error, try again after ``delay``."""
        await self.db.execute(
            "UPDATE backfill_requests SET error = $2, "
            "not_before = now() + make_interval(secs => $3) WHERE request_id = $1",
            request_id,
            error,
            delay.total_seconds(),
        )


class PgPushRepository:
    """Held-back pushed documents (``pending_documents``), received on-premise batches
    (``received_batches``) and on-premise customer registers (``customers``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def keep_pending(self, connection: Connection, document: Document, version: str) -> None:
        """Hold a document back; a new version of one held back takes its place (and, being
        new, its place at the end of the queue)."""
        await self.db.execute(
            """INSERT INTO pending_documents (connection_id, document_id, tenant_id,
                   document_number, kind, payload, related, version)
               VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8)
               ON CONFLICT (connection_id, document_id) DO UPDATE SET
                   document_number = EXCLUDED.document_number, kind = EXCLUDED.kind,
                   payload = EXCLUDED.payload, related = EXCLUDED.related,
                   version = EXCLUDED.version,
                   received_at = CASE
                       WHEN pending_documents.version = EXCLUDED.version
                       THEN pending_documents.received_at ELSE clock_timestamp() END""",
            connection.connection_id,
            document.document_id,
            connection.tenant_id,
            document.document_number,
            document.kind.value,
            json.dumps(document.payload),
            json.dumps(document.related),
            version,
        )

    async def drop_pending(self, connection_id: str, document_id: str) -> None:
        """Forget a held-back document."""
        await self.db.execute(
            "DELETE FROM pending_documents WHERE connection_id = $1 AND document_id = $2",
            connection_id,
            document_id,
        )

    async def claim_pending(
        self, connection_id: str, documents: Sequence[str], limit: int | None
    ) -> list[PendingDocument]:
        """Lock the named held-back documents, or the oldest ``limit``, skipping those another
        transaction holds (so two concurrent requests never emit one twice)."""
        rows = await self.db.fetch(
            """SELECT document_id, document_number, kind, payload::text AS payload,
                      related::text AS related, version
               FROM pending_documents
               WHERE connection_id = $1 AND (cardinality($2::text[]) = 0 OR document_id = ANY($2))
               ORDER BY received_at, document_id
               LIMIT $3
               FOR UPDATE SKIP LOCKED""",
            connection_id,
            list(documents),
            limit,
        )
        return [
            PendingDocument(
                Document(
                    document_id=row["document_id"],
                    document_number=row["document_number"],
                    kind=DocumentKind(row["kind"]),
                    payload=json.loads(row["payload"]),
                    related=json.loads(row["related"]),
                ),
                row["version"],
            )
            for row in rows
        ]

    async def received_batch(self, connection_id: str, batch_id: str) -> ReceivedBatch | None:
        """A batch received before, with the answer it got."""
        row = await self.db.fetchrow(
            "SELECT body_sha256, response::text AS response FROM received_batches "
            "WHERE connection_id = $1 AND batch_id = $2",
            connection_id,
            batch_id,
        )
        if row is None:
            return None
        return ReceivedBatch(row["body_sha256"], json.loads(row["response"]))

    async def claim_batch(
        self, connection_id: str, batch_id: str, tenant_id: str, body_sha256: str
    ) -> bool:
        """Record a batch as received; False if it was (a concurrent receipt is waited for)."""
        claimed = await self.db.fetchval(
            """INSERT INTO received_batches (connection_id, batch_id, tenant_id,
                       body_sha256, status_code, response)
                   VALUES ($1, $2, $3, $4, 200, '{}') ON CONFLICT DO NOTHING RETURNING true""",
            connection_id,
            batch_id,
            tenant_id,
            body_sha256,
        )
        return bool(claimed)

    async def answer_batch(
        self, connection_id: str, batch_id: str, response: dict[str, Any]
    ) -> None:
        """Keep the answer a received batch got (for its replays)."""
        await self.db.execute(
            "UPDATE received_batches SET response = $3::jsonb "
            "WHERE connection_id = $1 AND batch_id = $2",
            connection_id,
            batch_id,
            json.dumps(response),
        )

    async def registered_customers(
        self, connection: Connection, numbers: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The register entries of these customer numbers (unknown ones are left out)."""
        rows = await self.db.fetch(
            """SELECT customer_number, customer::text AS customer FROM customers
               WHERE connection_id = $1 AND tenant_id = $2
                 AND customer_number = ANY($3::text[])""",
            connection.connection_id,
            connection.tenant_id,
            sorted(set(numbers)),
        )
        return {row["customer_number"]: json.loads(row["customer"]) for row in rows}

    async def upsert_customers(
        self, connection: Connection, customers: Sequence[tuple[str, dict[str, Any]]]
    ) -> dict[str, int]:
        """Insert or replace each entry by customer number (one statement); counts of
        ``created``, ``updated`` and ``unchanged`` entries. Customers missing from a push
        stay."""
        ordered = sorted(customers, key=lambda c: c[0])  # one lock order: no deadlock
        rows = await self.db.fetch(
            """INSERT INTO customers (connection_id, customer_number, tenant_id, customer)
               SELECT $1, c.number, $2, c.card::jsonb
               FROM unnest($3::text[], $4::text[]) AS c(number, card)
               ON CONFLICT (connection_id, customer_number) DO UPDATE
                   SET customer = EXCLUDED.customer, updated_at = now()
                   WHERE customers.customer IS DISTINCT FROM EXCLUDED.customer
               RETURNING (xmax = 0) AS created""",
            connection.connection_id,
            connection.tenant_id,
            [number for number, _ in ordered],
            [json.dumps(card) for _, card in ordered],
        )
        created = sum(1 for row in rows if row["created"])
        return {
            "created": created,
            "updated": len(rows) - created,
            "unchanged": len(ordered) - len(rows),
        }


class PgProfileRepository:
    """The tenants' profiles, erp-poller's authoritative copy, in the runtime's
    ``tenant_profiles`` table (the table every other service keeps its copy in), and the
    sellers connections carried before profiles existed (``legacy_sellers``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's profile, or None."""
        return await PgTenantProfiles(self.db).get(tenant_id)

    async def stored(self, tenant_id: str) -> StoredProfile | None:
        """The tenant's profile with its revision."""
        row = await self.db.fetchrow(
            "SELECT revision, updated_at, profile::text AS profile FROM tenant_profiles "
            "WHERE tenant_id = $1",
            tenant_id,
        )
        if row is None:
            return None
        return StoredProfile(
            tenant_id,
            row["revision"],
            row["updated_at"],
            TenantProfile.model_validate_json(row["profile"]),
        )

    async def save(
        self, tenant_id: str, profile: TenantProfile, updated_at: dt.datetime
    ) -> int | None:
        """Store the profile as the next revision (1 for a new tenant); None when it equals
        the stored one. Concurrent saves queue on the row, so each gets its own revision."""
        revision: int | None = await self.db.fetchval(
            """INSERT INTO tenant_profiles (tenant_id, revision, profile, updated_at)
               VALUES ($1, 1, $2::jsonb, $3)
               ON CONFLICT (tenant_id) DO UPDATE SET revision = tenant_profiles.revision + 1,
                   profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at,
                   received_at = now()
               WHERE tenant_profiles.profile IS DISTINCT FROM EXCLUDED.profile
               RETURNING revision""",
            tenant_id,
            profile.model_dump_json(),
            updated_at,
        )
        return revision

    async def next_legacy_seller(self) -> LegacySeller | None:
        """Lock one seller still waiting to become a profile (none with a problem)."""
        row = await self.db.fetchrow(
            """SELECT tenant_id, connection_id, seller::text AS seller FROM legacy_sellers
               WHERE problem IS NULL ORDER BY tenant_id LIMIT 1 FOR UPDATE SKIP LOCKED"""
        )
        if row is None:
            return None
        return LegacySeller(row["tenant_id"], row["connection_id"], json.loads(row["seller"]))

    async def legacy_problem(self, tenant_id: str, problem: str) -> None:
        """Why the tenant's legacy seller cannot become a profile."""
        await self.db.execute(
            "UPDATE legacy_sellers SET problem = $2 WHERE tenant_id = $1", tenant_id, problem
        )

    async def forget_legacy_seller(self, tenant_id: str) -> None:
        """The tenant has a profile: its legacy seller is of no further use."""
        await self.db.execute("DELETE FROM legacy_sellers WHERE tenant_id = $1", tenant_id)


class PgOutbox:
    """The runtime's outbox on a transaction's connection; each event starts its own trace
    (one invoice's journey is one trace)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.added = 0

    async def add(self, event: Event, *, subject: str | None = None) -> None:
        """Publish ``event`` once this transaction commits."""
        env = envelope(event, source=EVENT_SOURCE, subject=subject)
        attributes = {"nordflow.tenant_id": event.tenant_id}
        invoice_id = getattr(event, "invoice_id", None)
        if invoice_id is not None:
            attributes["nordflow.invoice_id"] = invoice_id
        with telemetry.tracer().start_as_current_span(
            f"{env.topic} publish", context=telemetry.new_trace(), attributes=attributes
        ):
            await outbox.add(self.conn, env)
        self.added += 1


def pg_repositories(conn: asyncpg.Connection, events: PgOutbox | None = None) -> Repositories:
    """The repositories on one transaction's connection."""
    return Repositories(
        connections=PgConnectionRepository(conn),
        documents=PgDocumentRepository(conn),
        requests=PgRequestRepository(conn),
        pushes=PgPushRepository(conn),
        profiles=PgProfileRepository(conn),
        outbox=events or PgOutbox(conn),
    )


class PgUnitOfWork:
    """Transactions on the service's pool; after one that wrote events commits,
    ``committed`` wakes the outbox relay."""

    def __init__(self, pool: asyncpg.Pool, committed: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.committed = committed

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repositories]:
        """Repositories on a new transaction, committed when the block ends without error."""
        async with self.pool.acquire() as conn:
            events = PgOutbox(conn)
            async with conn.transaction():
                yield pg_repositories(conn, events)
            if events.added:
                self.committed()
