"""distribution-router's PostgreSQL repositories: all of its SQL."""

from __future__ import annotations

import asyncpg
from nordflow_runtime.tenant_profiles import PgTenantProfiles

from ...service.ports import Repositories
from .archive import PgArchiveRepository
from .choices import (
    PgOverrideRepository,
    PgPaperOptionsRepository,
    PgSuggestionRepository,
    PgTokenNames,
)
from .deliveries import PgAttemptLog, PgDeliveryRepository
from .factoring import PgFactoringRepository
from .holds import PgHoldRepository
from .outbox import PgOutbox
from .statistics import PgStatisticsRepository

__all__ = [
    "PgArchiveRepository",
    "PgAttemptLog",
    "PgDeliveryRepository",
    "PgFactoringRepository",
    "PgHoldRepository",
    "PgOutbox",
    "PgOverrideRepository",
    "PgPaperOptionsRepository",
    "PgStatisticsRepository",
    "PgSuggestionRepository",
    "PgTokenNames",
    "pg_repositories",
]


def pg_repositories(
    conn: asyncpg.Connection | asyncpg.Pool, pool: asyncpg.Pool | None = None
) -> Repositories:
    """Every repository on one connection (a transaction's); ``pool`` gives the attempt log
    its own connections, which commit at once (the send job needs it)."""

    def savepoint() -> object:
        if not isinstance(conn, asyncpg.Connection):
            raise TypeError("a savepoint needs the transaction's connection")
        return conn.transaction()

    return Repositories(
        deliveries=PgDeliveryRepository(conn),
        factoring=PgFactoringRepository(conn),
        attempts=PgAttemptLog(conn, pool),
        archive=PgArchiveRepository(conn),
        holds=PgHoldRepository(conn),
        overrides=PgOverrideRepository(conn),
        suggestions=PgSuggestionRepository(conn),
        paper=PgPaperOptionsRepository(conn),
        statistics=PgStatisticsRepository(conn),
        tokens=PgTokenNames(conn),
        profiles=PgTenantProfiles(conn),
        outbox=PgOutbox(conn),
        savepoint=savepoint,  # type: ignore[arg-type]
    )
