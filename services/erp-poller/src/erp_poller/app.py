"""create_app(): erp-poller's composition root; nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import asyncpg
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.topics import ERP_POLLER

from .api import build_api
from .config import Settings
from .domain import Connection
from .repository import PgConnectionRepository, claim_sync_request, finish_sync_request
from .service import InvoiceSource, poll_connection, sync_documents

log = logging.getLogger(__name__)


def source_for(connection: Connection, box: SecretBox) -> FortnoxClient:
    """The client for a connection's source system."""
    if connection.system is SourceSystem.FORTNOX:
        return FortnoxClient(connection.base_url, box.open(connection.token_sealed))
    raise ValueError(f"no connector for source system {connection.system.value!r} yet")


def create_app(settings: Settings | None = None) -> ServiceApp:
    """erp-poller: polls each due connection and emits erp.document.fetched."""
    settings = settings or Settings()  # read from the environment
    app = ServiceApp(ERP_POLLER, settings, "erp_poller")
    box = SecretBox(settings.encryption_key)
    overlap = dt.timedelta(seconds=settings.poll_overlap_seconds)

    async def poll_one() -> bool:
        async with app.pool.acquire() as lock_conn, lock_conn.transaction():
            connection = await PgConnectionRepository.claim_due(lock_conn)
            if connection is None:
                return False
            await poll_claimed(lock_conn, connection)
        return True

    async def poll_claimed(lock_conn: asyncpg.Connection, connection: Connection) -> None:
        next_poll = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.poll_interval_seconds)
        with log_context(connection.tenant_id, None):
            error: str | None = None
            cursor = None
            try:
                client = source_for(connection, box)
                try:
                    source: InvoiceSource = client
                    cursor, emitted = await poll_connection(
                        app.pool, connection, source, overlap=overlap, committed=app.committed
                    )
                finally:
                    await client.aclose()
                if emitted:
                    log.info("polled %s: %d new version(s)", connection.connection_id, emitted)
            except Exception as exc:
                # Shown to operators by `erp-poller connections list`; never contains the token.
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("poll of %s failed: %s", connection.connection_id, error)
            await PgConnectionRepository.finish_poll(
                lock_conn,
                connection.connection_id,
                cursor_at=cursor,
                next_poll_at=next_poll,
                error=error,
            )

    async def sync_one() -> bool:
        async with app.pool.acquire() as lock_conn, lock_conn.transaction():
            claimed = await claim_sync_request(lock_conn)
            if claimed is None:
                return False
            request, connection = claimed
            with log_context(connection.tenant_id, None):
                emitted, error = None, None
                try:
                    client = source_for(connection, box)
                    try:
                        emitted = await sync_documents(
                            app.pool,
                            connection,
                            client,
                            limit=request["limit_count"],
                            documents=list(request["document_ids"]),
                            committed=app.committed,
                        )
                    finally:
                        await client.aclose()
                    log.info("sync request %s: %d emitted", request["request_id"], emitted)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}"[:500]
                    log.warning("sync request %s failed: %s", request["request_id"], error)
                await finish_sync_request(lock_conn, request["request_id"], emitted, error)
        return True

    wakeup = asyncio.Event()

    async def scheduler() -> None:
        while True:
            try:
                busy = await sync_one() or await poll_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), settings.scheduler_tick_seconds)
                wakeup.clear()

    app.routers.append(build_api(lambda: app.pool, box, wakeup.set))

    app.loop(scheduler)
    return app
