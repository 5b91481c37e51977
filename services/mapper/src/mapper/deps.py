"""The one dependencies object mapper's entrypoints hand to its use cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from nordflow_runtime.app import Resources
from nordflow_runtime.personal_data import PersonalData

from .adapters.repository import pg_repositories
from .config import Settings
from .service import Repositories


@dataclass(frozen=True)
class Deps:
    """The repositories on a transaction's connection, the sealer of consumers' personal
    numbers in the invoices it emits, and for the purge loop the pool and the retention of
    contents that came by reference."""

    personal: PersonalData
    repositories: Callable[[asyncpg.Connection], Repositories] = pg_repositories
    pool: asyncpg.Pool | None = None
    payload_retention_days: int = 45


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up); no invoice leaves without its
    consumer's number sealed, so the key is required here."""
    settings = resources.settings
    assert isinstance(settings, Settings)
    if settings.personal_data_key is None:
        raise ValueError("setting PERSONAL_DATA_KEY is required to run mapper")
    return Deps(
        personal=PersonalData(settings.personal_data_key),
        pool=resources.pool,
        payload_retention_days=settings.payload_retention_days,
    )
