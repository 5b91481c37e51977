"""create_app(): erp-poller's composition root; nothing connects at import."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
from nordflow_connectors.oauth import OAuthError
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.topics import ERP_POLLER

from .api import build_api
from .config import Settings
from .domain import Connection
from .ingest import build_ingest_api, release_pending
from .repository import (
    PgConnectionRepository,
    claim_backfill_request,
    claim_sync_request,
    count_backfill_emission,
    finish_backfill,
    finish_sync_request,
    record_backfill_progress,
    start_backfill,
)
from .service import backfill_documents, poll_connection, sync_documents
from .sources import ClientOptions, Source, open_source

log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """What operators see of a failure (`last_error`, a request's `error`); never a secret:
    the connectors' and credentials' errors name fields and statuses, not values."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OAuthError) and exc.reauthorization_required:
        text += (
            " (the refresh token is spent, expired or revoked: authorize erp-poller again and "
            "re-add the connection with the new refresh token)"
        )
    return text[:500]


class SourceCache:
    """One source (client, rate limiter, OAuth session) per connection, reused across polls,
    syncs and backfills so its rate limiter spans them; rebuilt when the connection's
    configuration changes (``updated_at``)."""

    def __init__(
        self,
        box: SecretBox,
        pool: Callable[[], asyncpg.Pool],
        options: ClientOptions = ClientOptions(),  # noqa: B008 - frozen
    ) -> None:
        self.box = box
        self.pool = pool
        self.options = options
        self.sources: dict[str, tuple[dt.datetime | None, Source]] = {}

    async def source_for(self, connection: Connection) -> Source:
        """The cached source of a connection, opened on first use or after a change."""
        cached = self.sources.get(connection.connection_id)
        if cached is not None and cached[0] == connection.updated_at:
            return cached[1]
        if cached is not None:
            del self.sources[connection.connection_id]
            await cached[1].aclose()
        source = open_source(connection, self.box, self.pool(), self.options)
        self.sources[connection.connection_id] = (connection.updated_at, source)
        return source

    async def aclose(self) -> None:
        """Close every source."""
        sources, self.sources = self.sources, {}
        for _, source in sources.values():
            await source.aclose()


class Runner:
    """The scheduler's steps: each claims one piece of work (a due poll, a sync or backfill
    request), runs it holding the connection's row lock, and records how it ended."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        sources: SourceCache,
        *,
        poll_interval: dt.timedelta,
        overlap: dt.timedelta,
        committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.sources = sources
        self.poll_interval = poll_interval
        self.overlap = overlap
        self.committed = committed

    async def poll_one(self) -> bool:
        """Poll one due connection; False if none is due."""
        async with self.pool().acquire() as lock_conn, lock_conn.transaction():
            connection = await PgConnectionRepository.claim_due(lock_conn)
            if connection is None:
                return False
            await self._poll_claimed(lock_conn, connection)
        return True

    async def _poll_claimed(self, lock_conn: asyncpg.Connection, connection: Connection) -> None:
        next_poll = dt.datetime.now(dt.UTC) + (connection.poll_interval or self.poll_interval)
        with log_context(connection.tenant_id, None):
            error: str | None = None
            cursor = None
            try:
                source = await self.sources.source_for(connection)
                cursor, emitted = await poll_connection(
                    self.pool(),
                    connection,
                    source,
                    overlap=self.overlap,
                    committed=self.committed,
                )
                if emitted:
                    log.info("polled %s: %d new version(s)", connection.connection_id, emitted)
            except Exception as exc:
                # Shown to operators by `erp-poller connections list`; never contains a secret.
                error = error_text(exc)
                log.warning("poll of %s failed: %s", connection.connection_id, error)
            await PgConnectionRepository.finish_poll(
                lock_conn,
                connection.connection_id,
                cursor_at=cursor,
                next_poll_at=next_poll,
                error=error,
            )

    async def sync_one(self) -> bool:
        """Run the oldest pending sync request; False if there is none."""
        async with self.pool().acquire() as lock_conn, lock_conn.transaction():
            claimed = await claim_sync_request(lock_conn)
            if claimed is None:
                return False
            request, connection = claimed
            with log_context(connection.tenant_id, None):
                emitted, error = None, None
                try:
                    emitted = await self._sync(
                        connection, request["limit_count"], list(request["document_ids"])
                    )
                    log.info("sync request %s: %d emitted", request["request_id"], emitted)
                except Exception as exc:
                    error = error_text(exc)
                    log.warning("sync request %s failed: %s", request["request_id"], error)
                await finish_sync_request(lock_conn, request["request_id"], emitted, error)
        return True

    async def _sync(self, connection: Connection, limit: int | None, documents: list[str]) -> int:
        """Pushed documents held back (manual mode) first, then, for a polled system, the
        source's own documents up to what is left of the limit.
        """
        emitted = 0
        if not connection.polled or connection.system is SourceSystem.SIRVOY:
            emitted = await release_pending(
                self.pool(),
                connection,
                limit=limit,
                documents=documents,
                committed=self.committed,
            )
        if not connection.polled:
            return emitted
        left = None if limit is None else limit - emitted
        if documents or left is None or left > 0:
            emitted += await sync_documents(
                self.pool(),
                connection,
                await self.sources.source_for(connection),
                limit=left,
                documents=documents,
                committed=self.committed,
            )
        return emitted

    async def backfill_one(self) -> bool:
        """Run (or resume) the oldest due backfill request; False if there is none."""
        pool = self.pool()
        async with pool.acquire() as lock_conn, lock_conn.transaction():
            claimed = await claim_backfill_request(lock_conn)
            if claimed is None:
                return False
            request, connection = claimed
            request_id = request["request_id"]
            await start_backfill(pool, request_id)

            async def progress(listed: int) -> None:
                await record_backfill_progress(pool, request_id, listed)

            async def counted(conn: asyncpg.Connection) -> None:
                await count_backfill_emission(conn, request_id)

            with log_context(connection.tenant_id, None):
                error = None
                try:
                    listed, emitted = await backfill_documents(
                        pool,
                        connection,
                        await self.sources.source_for(connection),
                        since=request["since"],
                        progress=progress,
                        on_emitted=counted,
                        committed=self.committed,
                    )
                    log.info("backfill %s: %d listed, %d emitted", request_id, listed, emitted)
                except Exception as exc:
                    error = error_text(exc)
                    log.warning("backfill %s failed: %s", request_id, error)
                await finish_backfill(pool, request_id, request["attempts"] + 1, error)
        return True


def create_app(settings: Settings | None = None) -> ServiceApp[None]:
    """erp-poller: polls each due connection and emits erp.document.fetched."""
    settings = settings or Settings()  # read from the environment
    # erp-poller owns the tenant profiles (it publishes tenant.updated), so it keeps no copy.
    app: ServiceApp[None] = ServiceApp(ERP_POLLER, settings, "erp_poller", tenant_profiles=False)
    box = SecretBox(settings.encryption_key)
    sources = SourceCache(box, lambda: app.pool)
    runner = Runner(
        lambda: app.pool,
        sources,
        poll_interval=dt.timedelta(seconds=settings.poll_interval_seconds),
        overlap=dt.timedelta(seconds=settings.poll_overlap_seconds),
        committed=app.committed,
    )
    wakeup = asyncio.Event()

    def scheduler(
        *steps: Callable[[], Awaitable[bool]],
    ) -> Callable[[None], Coroutine[Any, Any, None]]:
        async def run(_: None) -> None:
            while True:
                busy = False
                try:
                    for step in steps:
                        if await step():
                            busy = True
                            break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("scheduler tick failed")
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wakeup.wait(), settings.scheduler_tick_seconds)
                    wakeup.clear()

        return run

    app.routers.append(
        build_api(
            lambda: app.pool,
            box,
            wakeup.set,
            allow_internal_urls=settings.allow_internal_urls,
        )
    )
    app.routers.append(build_ingest_api(lambda: app.pool, box, app.committed))
    app.loop(scheduler(runner.sync_one, runner.poll_one))
    # Backfills are long: a loop of their own, so polls of other connections go on meanwhile.
    app.loop(scheduler(runner.backfill_one))
    app.on_shutdown.append(sources.aclose)
    return app
