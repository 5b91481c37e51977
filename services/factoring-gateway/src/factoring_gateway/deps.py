"""The one dependencies object factoring-gateway's entrypoints hand to its use cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from nordflow_runtime.app import Resources

from .adapters.repository import pg_repositories
from .service import Repositories


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Deps:
    """Repositories on a transaction's connection, and the clock."""

    repositories: Callable[[asyncpg.Connection], Repositories] = pg_repositories
    clock: Callable[[], dt.datetime] = field(default=utc_now)


async def build_deps(_: Resources) -> Deps:
    """The production dependencies (built once at start-up)."""
    return Deps()
