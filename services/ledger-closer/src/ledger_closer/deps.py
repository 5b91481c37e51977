"""The one dependencies object ledger-closer's entrypoints hand to its use cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import asyncpg
from nordflow_runtime.app import Resources
from nordflow_runtime.crypto import SecretBox

from .adapters.repository import pg_repositories
from .adapters.writers import Writers
from .config import Settings
from .service import LedgerWriters, Repositories


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Deps:
    """Repositories on a transaction's connection, the ERP writers, the closing delay and
    the clock. ``aclose`` closes the writers (the runtime calls it at shutdown)."""

    repositories: Callable[[asyncpg.Connection], Repositories]
    writers: LedgerWriters
    closing_delay: dt.timedelta
    clock: Callable[[], dt.datetime] = field(default=utc_now)

    async def aclose(self) -> None:
        """Close every ERP client and OAuth session."""
        await self.writers.aclose()


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up, after the pool)."""
    settings = resources.settings
    if not isinstance(settings, Settings):
        raise TypeError(f"ledger-closer needs its own Settings, not {type(settings).__name__}")
    return Deps(
        repositories=partial(pg_repositories, pool=resources.pool),
        writers=Writers(
            SecretBox(settings.encryption_key),
            resources.pool,
            allow_internal=settings.allow_internal_urls,
        ),
        closing_delay=dt.timedelta(seconds=settings.closing_delay_seconds),
    )
