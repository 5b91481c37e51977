"""Use cases: poll one connection, emit each new document version exactly once."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import asyncpg
from nordflow_runtime import outbox, telemetry
from nordflow_schemas.envelope import envelope
from opentelemetry import context as otel_context

from .domain import Connection, content_version, fetched_event, fortnox_kind, window_start
from .repository import PgDocumentRepository

log = logging.getLogger(__name__)


class InvoiceSource(Protocol):
    """What polling needs from an ERP client (FortnoxClient satisfies it)."""

    def invoices_modified_since(self, since: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        """List items modified at or after ``since``."""
        ...

    async def invoice(self, document_number: str) -> dict[str, Any]:
        """One full invoice."""
        ...

    async def customer(self, customer_number: str) -> dict[str, Any]:
        """One customer card."""
        ...


class DocumentFetcher:
    """Fetches one document with its customer and emits it if its version is new."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        connection: Connection,
        source: InvoiceSource,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.connection = connection
        self.source = source
        self.now = now
        self.committed = committed
        self.customers: dict[str, dict[str, Any]] = {}

    async def fetch(self, number: str) -> bool:
        """Fetch and, if new, record and emit one document; True if it was emitted.

        The version is recorded and the event written to the outbox in one transaction, so
        a crash loses nothing and emits nothing twice.
        """
        connection = self.connection
        full = await self.source.invoice(number)
        customer_number = str(full.get("CustomerNumber") or "")
        if customer_number and customer_number not in self.customers:
            self.customers[customer_number] = await self.source.customer(customer_number)
        related = {"seller": connection.seller}
        if customer_number:
            related["customer"] = self.customers[customer_number]
        version = content_version(full)
        event = fetched_event(
            connection,
            document_id=number,
            document_number=number,
            kind=fortnox_kind(full),
            payload=full,
            related=related,
            version=version,
            fetched_at=self.now(),
        )
        # Each document starts its own trace: one invoice's journey is one trace.
        with telemetry.tracer().start_as_current_span(
            "erp.document.fetched publish",
            context=otel_context.Context(),
            attributes={
                "nordflow.tenant_id": connection.tenant_id,
                "nordflow.invoice_id": event.invoice_id,
            },
        ):
            async with self.pool.acquire() as conn, conn.transaction():
                new = await PgDocumentRepository(conn).record_version(
                    connection.connection_id,
                    number,
                    connection.tenant_id,
                    event.invoice_id,
                    version,
                )
                if new:
                    await outbox.add(conn, envelope(event, source="/erp-poller", subject=number))
        if new:
            self.committed()
        return bool(new)


async def poll_connection(
    pool: asyncpg.Pool,
    connection: Connection,
    source: InvoiceSource,
    *,
    overlap: dt.timedelta,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    committed: Callable[[], None] = lambda: None,
) -> tuple[dt.datetime, int]:
    """Fetch everything modified in the window; returns the next cursor and how many emitted.

    A crash mid-poll loses nothing: the next poll starts from the old cursor and skips the
    versions already recorded.
    """
    started = now()
    fetcher = DocumentFetcher(pool, connection, source, now=now, committed=committed)
    emitted = 0
    async for item in source.invoices_modified_since(window_start(connection, overlap)):
        emitted += await fetcher.fetch(str(item["DocumentNumber"]))
    return started, emitted


async def sync_documents(
    pool: asyncpg.Pool,
    connection: Connection,
    source: InvoiceSource,
    *,
    limit: int | None = None,
    documents: Sequence[str] = (),
    committed: Callable[[], None] = lambda: None,
) -> int:
    """A user's sync request (manual mode): the named documents, or the next ``limit`` new
    or changed ones since the cut-off, oldest numbers first. Returns how many were emitted.
    """
    fetcher = DocumentFetcher(pool, connection, source, committed=committed)
    emitted = 0
    if documents:
        for number in documents:
            emitted += await fetcher.fetch(number)
        return emitted
    async for item in source.invoices_modified_since(connection.cutoff_at):
        if limit is not None and emitted >= limit:
            break
        emitted += await fetcher.fetch(str(item["DocumentNumber"]))
    return emitted
