"""The repositories of control-panel on one connection (a batch's, a job's or a request's)."""

from __future__ import annotations

import asyncpg
from nordflow_runtime.tenant_profiles import PgTenantProfiles

from ..service import Repositories
from .read import PgReadRepository
from .readmodel import PgBooksRepository, PgJourneyRepository, PgOperationsRepository
from .tokens import PgTokenRepository


def pg_repositories(conn: asyncpg.Connection | asyncpg.Pool) -> Repositories:
    """Every repository on one connection (or the pool, for single reads)."""
    return Repositories(
        journeys=PgJourneyRepository(conn),
        books=PgBooksRepository(conn),
        operations=PgOperationsRepository(conn),
        read=PgReadRepository(conn),
        tokens=PgTokenRepository(conn),
        profiles=PgTenantProfiles(conn),
    )
