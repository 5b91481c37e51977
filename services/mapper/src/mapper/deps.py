"""The one dependencies object mapper's entrypoints hand to its use cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from nordflow_runtime.app import Resources

from .adapters.repository import pg_repositories
from .service import Repositories


@dataclass(frozen=True)
class Deps:
    """The repositories on a transaction's connection."""

    repositories: Callable[[asyncpg.Connection], Repositories] = pg_repositories


async def build_deps(_: Resources) -> Deps:
    """The production dependencies (built once at start-up)."""
    return Deps()
