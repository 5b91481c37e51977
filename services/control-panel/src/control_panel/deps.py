"""The one dependencies object control-panel's entrypoints hand to its use cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from nordflow_runtime.app import Resources

from .adapters.repositories import pg_repositories
from .config import Settings
from .service import Repositories


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Deps:
    """Repositories on a connection, the settings, the clock, and a way to wake the outbox
    relay after an HTTP request committed a command."""

    settings: Settings
    repositories: Callable[[asyncpg.Connection | asyncpg.Pool], Repositories] = pg_repositories
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    committed: Callable[[], None] = field(default=_nothing)


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up)."""
    settings = resources.settings
    if not isinstance(settings, Settings):
        raise TypeError("control-panel needs its own Settings")
    return Deps(settings=settings, committed=resources.committed)
