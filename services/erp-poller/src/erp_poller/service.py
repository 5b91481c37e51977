"""Use cases: poll, sync and backfill a connection, emitting each new document version once."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
from nordflow_runtime import outbox, telemetry
from nordflow_schemas.envelope import envelope
from opentelemetry import context as otel_context

from .domain import Connection, content_version, event_subject, fetched_event, window_start
from .repository import PgDocumentRepository
from .sources import Change, FetchCache, Source, SourceDocument

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Progress = Callable[[int], Awaitable[None]]
"""Told how many documents were listed so far, now and then during a long run (a backfill)."""
InTransaction = Callable[[asyncpg.Connection], Awaitable[object]]
"""Runs in the transaction that emits a document (e.g. counts it), so the count is exact."""


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


async def emit_document(
    pool: asyncpg.Pool,
    connection: Connection,
    document: SourceDocument,
    *,
    now: Clock = utc_now,
    committed: Callable[[], None] = lambda: None,
    also: InTransaction | None = None,
) -> bool:
    """Record a document's version and, if it is new, emit it; True if it was emitted.

    The version is recorded and the event written to the outbox in one transaction, so a
    crash loses nothing and emits nothing twice. An unchanged version is never emitted again.
    """
    version = content_version(document.payload)
    event = fetched_event(
        connection,
        document_id=document.document_id,
        document_number=document.document_number,
        kind=document.kind,
        payload=document.payload,
        related=document.related,
        version=version,
        fetched_at=now(),
    )
    subject = event_subject(document.kind, document.document_id, document.document_number)
    # Each document starts its own trace: one invoice's journey is one trace.
    with telemetry.tracer().start_as_current_span(
        "erp.document.fetched publish",
        context=otel_context.Context(),
        attributes={
            "nordflow.tenant_id": connection.tenant_id,
            "nordflow.invoice_id": event.invoice_id,
        },
    ):
        async with pool.acquire() as conn, conn.transaction():
            repository = PgDocumentRepository(conn)
            if document.source_time is not None and not await repository.newest_snapshot(
                connection.connection_id,
                document.document_id,
                connection.tenant_id,
                document.source_time,
            ):
                return False  # a webhook already brought a newer snapshot
            new = await repository.record_version(
                connection.connection_id,
                document.document_id,
                connection.tenant_id,
                event.invoice_id,
                version,
            )
            if new:
                await outbox.add(conn, envelope(event, source="/erp-poller", subject=subject))
                if also is not None:
                    await also(conn)
    if new:
        committed()
    return bool(new)


class DocumentFetcher:
    """Fetches changes of one run (a poll, a sync, a backfill) and emits new versions.

    Related records (customers, bookings) are read once per run.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        connection: Connection,
        source: Source,
        *,
        now: Clock = utc_now,
        committed: Callable[[], None] = lambda: None,
        also: InTransaction | None = None,
    ) -> None:
        self.pool = pool
        self.connection = connection
        self.source = source
        self.now = now
        self.committed = committed
        self.also = also
        self.cache = FetchCache()

    async def fetch(self, change: Change) -> bool:
        """Fetch one change and emit it if its version is new; True if it was emitted."""
        document = await self.source.fetch(change, self.cache)
        if document is None:
            return False
        return await emit_document(
            self.pool,
            self.connection,
            document,
            now=self.now,
            committed=self.committed,
            also=self.also,
        )


async def poll_connection(
    pool: asyncpg.Pool,
    connection: Connection,
    source: Source,
    *,
    overlap: dt.timedelta,
    now: Clock = utc_now,
    committed: Callable[[], None] = lambda: None,
) -> tuple[dt.datetime, int]:
    """Fetch everything modified in the window; returns the next cursor and how many emitted.

    The cursor is the source's own watermark when it gives one (eAccounting's
    ``ServerTimeUtc``, Sirvoy's ``serverTime``), else the poll's start. A crash mid-poll loses
    nothing: the next poll starts from the old cursor and skips the versions already recorded.
    """
    started = now()
    fetcher = DocumentFetcher(pool, connection, source, now=now, committed=committed)
    emitted = 0
    listing = source.changes_since(window_start(connection, overlap))
    async for change in listing:
        emitted += await fetcher.fetch(change)
    return listing.watermark or started, emitted


async def sync_documents(
    pool: asyncpg.Pool,
    connection: Connection,
    source: Source,
    *,
    limit: int | None = None,
    documents: Sequence[str] = (),
    committed: Callable[[], None] = lambda: None,
) -> int:
    """A user's sync request (manual mode): the named documents (by the ``document_id`` events
    carry: Fortnox's number, eAccounting's Id, Sirvoy's invoiceId, ``payment:<id>``…), or the
    next ``limit`` new or changed ones since the cut-off, in the source's listing order.
    Returns how many were emitted.
    """
    fetcher = DocumentFetcher(pool, connection, source, committed=committed)
    emitted = 0
    if documents:
        for document_id in documents:
            emitted += await fetcher.fetch(Change.of(document_id))
        return emitted
    async for change in source.changes_since(connection.cutoff_at):
        if limit is not None and emitted >= limit:
            break
        emitted += await fetcher.fetch(change)
    return emitted


async def backfill_documents(
    pool: asyncpg.Pool,
    connection: Connection,
    source: Source,
    *,
    since: dt.datetime,
    progress: Progress,
    on_emitted: InTransaction | None = None,
    every: int = 20,
    committed: Callable[[], None] = lambda: None,
) -> tuple[int, int]:
    """Re-read every document modified since ``since`` (the cut-off and cursor do not apply):
    changed or never-seen versions are emitted, unchanged ones are not. Returns
    ``(listed, emitted)``. ``on_emitted`` runs in each emission's transaction; ``progress``
    hears the listed count every ``every`` documents, at the end and on failure.

    Rerunning after a crash is safe: what was emitted is recorded, so only reads repeat.
    """
    fetcher = DocumentFetcher(pool, connection, source, committed=committed, also=on_emitted)
    listed = emitted = 0
    try:
        async for change in source.changes_since(since):
            listed += 1
            emitted += await fetcher.fetch(change)
            if listed % every == 0:
                await progress(listed)
    finally:
        await progress(listed)
    return listed, emitted
