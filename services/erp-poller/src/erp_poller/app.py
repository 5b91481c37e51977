"""create_app(): erp-poller's composition root; nothing connects at import."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import asyncpg
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.topics import ERP_POLLER

from .config import Settings
from .domain import Connection
from .repository import PgConnectionRepository
from .service import InvoiceSource, poll_connection

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

    async def scheduler() -> None:
        while True:
            try:
                busy = await poll_one()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
                busy = False
            if not busy:
                await asyncio.sleep(settings.scheduler_tick_seconds)

    app.loop(scheduler)
    return app
