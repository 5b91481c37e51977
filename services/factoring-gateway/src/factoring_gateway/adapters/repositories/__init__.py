"""factoring-gateway's PostgreSQL repositories: all of its SQL."""

from __future__ import annotations

import asyncpg
from nordflow_runtime.tenant_profiles import PgTenantProfiles

from ...service.ports import Repositories
from .agreements import PgAgreementRepository
from .batches import PgAttemptLog, PgBatchRepository
from .changes import PgChangeRepository, PgScheduler, PgSettlementRepository
from .invoices import PgInvoiceRepository

__all__ = [
    "PgAgreementRepository",
    "PgAttemptLog",
    "PgBatchRepository",
    "PgChangeRepository",
    "PgInvoiceRepository",
    "PgScheduler",
    "PgSettlementRepository",
    "pg_repositories",
]


def pg_repositories(
    conn: asyncpg.Connection | asyncpg.Pool, pool: asyncpg.Pool | None = None
) -> Repositories:
    """Every repository on one connection (a transaction's); ``pool`` gives the attempt log
    its own connections, which commit at once (the upload job needs it)."""
    return Repositories(
        agreements=PgAgreementRepository(conn),
        invoices=PgInvoiceRepository(conn),
        batches=PgBatchRepository(conn),
        attempts=PgAttemptLog(conn, pool),
        changes=PgChangeRepository(conn),
        settlements=PgSettlementRepository(conn),
        jobs=PgScheduler(conn),
        profiles=PgTenantProfiles(conn),
    )
