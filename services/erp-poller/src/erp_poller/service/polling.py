"""Use cases of the scheduler: poll a due connection, run a sync request, run a backfill.

Each claims one piece of work in a transaction that holds the connection's row (so replicas
never work on one connection at once, and a crash releases it at once), fetches from the
source, emits each new document version in a transaction of its own, and records how the
run ended. A tenant without a profile has nothing emitted: the run ends with
``ProfileMissingError`` (a poll's ``last_error``, a sync request's error; a backfill waits
for the profile) and, its cursor not advanced, resumes where it was once the profile is set.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nordflow_connectors.oauth import OAuthError
from nordflow_connectors.resilience import public_reason
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.tenant import TenantProfile

from ..domain.connections import Connection, backfill_retry_delay, window_start
from ..domain.profiles import ProfileMissingError
from .connections import announce_connection
from .documents import emit_fetched, release_pending, require_profile
from .ports import Change, FetchCache, Repositories, Source, Sources, UnitOfWork

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Progress = Callable[[int], Awaitable[None]]
"""Told how many documents were listed so far, now and then during a long run (a backfill)."""
InTransaction = Callable[[Repositories], Awaitable[object]]
"""Runs in the transaction that emits a document (e.g. counts it), so the count is exact."""

PROFILE_WAIT = dt.timedelta(seconds=60)
"""How often a backfill waiting for its tenant's profile looks again."""


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Schedule:
    """How often connections are polled, and how far back each poll reads again."""

    poll_interval: dt.timedelta
    overlap: dt.timedelta


def error_text(exc: BaseException) -> str:
    """What tenants and operators see of a failure (`last_error`, a request's `error`, on
    ``connection.updated``); never a secret, and of a partner's answer only its status and
    our own short reason (``public_reason``): our errors name fields and statuses."""
    text = f"{type(exc).__name__}: {public_reason(exc) or exc}"
    if isinstance(exc, OAuthError) and exc.reauthorization_required:
        text += (
            " (the refresh token is spent, expired or revoked: authorize erp-poller again and "
            "re-add the connection with the new refresh token)"
        )
    return text[:500]


class DocumentFetcher:
    """Fetches the changes of one run (a poll, a sync, a backfill) and emits new versions,
    each in a transaction of its own. Related records (customers, bookings) are read once
    per run."""

    def __init__(
        self,
        uow: UnitOfWork,
        connection: Connection,
        profile: TenantProfile,
        source: Source,
        *,
        now: Clock = utc_now,
        also: InTransaction | None = None,
    ) -> None:
        self.uow = uow
        self.connection = connection
        self.profile = profile
        self.source = source
        self.now = now
        self.also = also
        self.cache = FetchCache()

    async def fetch(self, change: Change) -> bool:
        """Fetch one change and emit it if its version is new; True if it was emitted."""
        document = await self.source.fetch(change, self.cache)
        if document is None:
            return False
        async with self.uow.transaction() as repos:
            new = await emit_fetched(repos, self.connection, self.profile, document, self.now())
            if new and self.also is not None:
                await self.also(repos)
        return new


async def poll_connection(
    uow: UnitOfWork,
    connection: Connection,
    profile: TenantProfile,
    source: Source,
    *,
    overlap: dt.timedelta,
    now: Clock = utc_now,
) -> tuple[dt.datetime, int]:
    """Fetch everything modified in the window; returns the next cursor and how many emitted.

    The cursor is the source's own watermark when it gives one (eAccounting's
    ``ServerTimeUtc``, Sirvoy's ``serverTime``), else the poll's start. A crash mid-poll loses
    nothing: the next poll starts from the old cursor and skips the versions already recorded.
    """
    started = now()
    fetcher = DocumentFetcher(uow, connection, profile, source, now=now)
    emitted = 0
    listing = source.changes_since(window_start(connection, overlap))
    async for change in listing:
        emitted += await fetcher.fetch(change)
    return listing.watermark or started, emitted


async def sync_documents(
    uow: UnitOfWork,
    connection: Connection,
    profile: TenantProfile,
    source: Source,
    *,
    limit: int | None = None,
    documents: Sequence[str] = (),
    now: Clock = utc_now,
) -> int:
    """A user's sync request (manual mode): the named documents (by the ``document_id`` events
    carry: Fortnox's number, eAccounting's Id, Sirvoy's invoiceId, ``payment:<id>``…), or the
    next ``limit`` new or changed ones since the cut-off, in the source's listing order.
    Returns how many were emitted.
    """
    fetcher = DocumentFetcher(uow, connection, profile, source, now=now)
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
    uow: UnitOfWork,
    connection: Connection,
    profile: TenantProfile,
    source: Source,
    *,
    since: dt.datetime,
    progress: Progress,
    on_emitted: InTransaction | None = None,
    every: int = 20,
    now: Clock = utc_now,
) -> tuple[int, int]:
    """Re-read every document modified since ``since`` (the cut-off and cursor do not apply):
    changed or never-seen versions are emitted, unchanged ones are not. Returns
    ``(listed, emitted)``. ``on_emitted`` runs in each emission's transaction; ``progress``
    hears the listed count every ``every`` documents, at the end and on failure.

    Rerunning after a crash is safe: what was emitted is recorded, so only reads repeat.
    """
    fetcher = DocumentFetcher(uow, connection, profile, source, now=now, also=on_emitted)
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


async def poll_next(
    uow: UnitOfWork, sources: Sources, schedule: Schedule, now: Clock = utc_now
) -> bool:
    """Poll one due connection, holding its row meanwhile; False if none is due. How the poll
    ended (``last_poll_at``, ``last_success_at``, ``last_error``, the next poll) is announced
    on ``connection.updated`` once, with the poll's record."""
    async with uow.transaction() as lock:
        connection = await lock.connections.claim_due()
        if connection is None:
            return False
        next_poll = now() + (connection.poll_interval or schedule.poll_interval)
        with log_context(connection.tenant_id, None):
            error: str | None = None
            cursor = None
            try:
                profile = await require_profile(lock, connection.tenant_id)
                source = await sources.source_for(connection)
                cursor, emitted = await poll_connection(
                    uow, connection, profile, source, overlap=schedule.overlap, now=now
                )
                if emitted:
                    log.info("polled %s: %d new version(s)", connection.connection_id, emitted)
            except Exception as exc:
                # Shown to operators by `erp-poller connections list`; never contains a secret.
                error = error_text(exc)
                log.warning("poll of %s failed: %s", connection.connection_id, error)
            await lock.connections.finish_poll(
                connection.connection_id, cursor_at=cursor, next_poll_at=next_poll, error=error
            )
            # Once per poll, in the transaction that records it.
            await announce_connection(lock, connection.connection_id, now())
    return True


async def sync_next(uow: UnitOfWork, sources: Sources, now: Clock = utc_now) -> bool:
    """Run the oldest pending sync request; False if there is none."""
    async with uow.transaction() as lock:
        claimed = await lock.requests.claim_sync()
        if claimed is None:
            return False
        request, connection = claimed
        with log_context(connection.tenant_id, None):
            emitted, error = None, None
            try:
                profile = await require_profile(lock, connection.tenant_id)
                emitted = await _sync(
                    uow, sources, connection, profile, request.limit, request.documents, now
                )
                log.info("sync request %s: %d emitted", request.request_id, emitted)
            except Exception as exc:
                error = error_text(exc)
                log.warning("sync request %s failed: %s", request.request_id, error)
            await lock.requests.finish_sync(request.request_id, emitted, error)
    return True


async def _sync(
    uow: UnitOfWork,
    sources: Sources,
    connection: Connection,
    profile: TenantProfile,
    limit: int | None,
    documents: Sequence[str],
    now: Clock,
) -> int:
    """Pushed documents held back first, then, for a polled system, the source's own
    documents up to what is left of the limit."""
    emitted = 0
    if not connection.polled or connection.system is SourceSystem.SIRVOY:
        async with uow.transaction() as repos:
            emitted = await release_pending(
                repos, connection, profile, limit=limit, documents=documents, now=now()
            )
    if not connection.polled:
        return emitted
    left = None if limit is None else limit - emitted
    if documents or left is None or left > 0:
        emitted += await sync_documents(
            uow,
            connection,
            profile,
            await sources.source_for(connection),
            limit=left,
            documents=documents,
            now=now,
        )
    return emitted


async def backfill_next(uow: UnitOfWork, sources: Sources, now: Clock = utc_now) -> bool:
    """Run (or resume) the oldest due backfill request; False if there is none.

    Only the connection's row is held: the request's progress is committed in transactions
    of its own while the backfill runs. A failed attempt is retried later (see
    `backfill_retry_delay`); a backfill of a tenant without a profile waits for it, without
    counting an attempt.
    """
    async with uow.transaction() as lock:
        claimed = await lock.requests.claim_backfill()
        if claimed is None:
            return False
        request, connection = claimed
        request_id = request.request_id
        with log_context(connection.tenant_id, None):
            profile = await lock.profiles.get(connection.tenant_id)
            if profile is None:
                async with uow.transaction() as repos:
                    waiting = error_text(ProfileMissingError(connection.tenant_id))
                    await repos.requests.retry_backfill(request_id, waiting, PROFILE_WAIT)
                return True
            async with uow.transaction() as repos:
                await repos.requests.start_backfill(request_id)

            async def progress(listed: int) -> None:
                async with uow.transaction() as repos:
                    await repos.requests.backfill_progress(request_id, listed)

            async def counted(repos: Repositories) -> None:
                await repos.requests.count_backfill_emission(request_id)

            error = None
            try:
                listed, emitted = await backfill_documents(
                    uow,
                    connection,
                    profile,
                    await sources.source_for(connection),
                    since=request.since,
                    progress=progress,
                    on_emitted=counted,
                    now=now,
                )
                log.info("backfill %s: %d listed, %d emitted", request_id, listed, emitted)
            except Exception as exc:
                error = error_text(exc)
                log.warning("backfill %s failed: %s", request_id, error)
            delay = None if error is None else backfill_retry_delay(request.attempts + 1)
            async with uow.transaction() as repos:
                if error is None or delay is None:
                    await repos.requests.finish_backfill(request_id, error)
                else:
                    await repos.requests.retry_backfill(request_id, error, delay)
    return True
