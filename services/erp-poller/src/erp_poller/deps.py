"""The one dependencies object erp-poller's entrypoints hand to its use cases."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from nordflow_runtime.app import Resources
from nordflow_runtime.crypto import SecretBox

from .adapters.repository import PgUnitOfWork, pg_repositories
from .adapters.source_cache import SourceCache
from .adapters.sources import ClientOptions
from .config import Settings
from .service.polling import Schedule, utc_now
from .service.ports import Repositories


@dataclass(frozen=True)
class Deps:
    """Transactions on the service's database, the box sealing credentials, each
    connection's source, the schedule, and the scheduler's wake-up call."""

    uow: PgUnitOfWork
    box: SecretBox
    sources: SourceCache
    schedule: Schedule
    tick_seconds: float = 1.0
    allow_internal_urls: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], dt.datetime] = utc_now

    def repositories(self, conn: asyncpg.Connection) -> Repositories:
        """The repositories on a transaction the runtime opened (a consumed batch's)."""
        return pg_repositories(conn)

    def wake(self) -> None:
        """Tell the scheduler there is work now (a new connection, a sync or backfill)."""
        self.wakeup.set()

    async def aclose(self) -> None:
        """Close the sources' clients."""
        await self.sources.aclose()


def deps_for(
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    committed: Callable[[], None] = lambda: None,
    options: ClientOptions = ClientOptions(),  # noqa: B008 - frozen
) -> Deps:
    """The dependencies on a pool (``committed`` wakes the outbox relay)."""
    box = SecretBox(settings.encryption_key)
    options = dataclasses.replace(options, allow_internal=settings.allow_internal_urls)
    return Deps(
        uow=PgUnitOfWork(pool, committed),
        box=box,
        sources=SourceCache(box, pool, options),
        schedule=Schedule(
            poll_interval=dt.timedelta(seconds=settings.poll_interval_seconds),
            overlap=dt.timedelta(seconds=settings.poll_overlap_seconds),
        ),
        tick_seconds=settings.scheduler_tick_seconds,
        allow_internal_urls=settings.allow_internal_urls,
    )


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up)."""
    settings = resources.settings
    assert isinstance(settings, Settings)
    return deps_for(resources.pool, settings, committed=resources.committed)
