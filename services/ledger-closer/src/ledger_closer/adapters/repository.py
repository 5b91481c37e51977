"""PostgreSQL repositories of ledger-closer (all of its SQL): write connections (credentials
sealed at rest), the entries and their intent log, and the ``post-entry`` jobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from nordflow_runtime import jobs
from nordflow_runtime.tenant_profiles import PgTenantProfiles

from ..domain import ConnectionOfAnotherTenantError, PlannedEntry, WriteConnection
from ..service import Repositories


class PgConnectionRepository:
    """Write connections in ``erp_connections`` (one per source connection id)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def find(self, tenant_id: str, connection_id: str) -> WriteConnection | None:
        """The tenant's write connection for a source connection, if any."""
        row = await self.conn.fetchrow(
            "SELECT * FROM erp_connections WHERE tenant_id = $1 AND connection_id = $2",
            tenant_id,
            connection_id,
        )
        if row is None:
            return None
        return WriteConnection(
            connection_id=row["connection_id"],
            tenant_id=row["tenant_id"],
            system=row["system"],
            base_url=row["base_url"],
            token_sealed=bytes(row["token_sealed"]),
            mode_of_payment=row["mode_of_payment"],
            factoring_account=row["factoring_account"],
            bank_account=row["bank_account"],
            updated_at=row["updated_at"],
        )

    async def save(self, connection: WriteConnection) -> None:
        """Create or replace a connection (not its system).

        Raises ``ConnectionOfAnotherTenantError`` if the id belongs to another tenant.
        """
        saved = await self.conn.fetchval(
            """INSERT INTO erp_connections (connection_id, tenant_id, system, base_url,
                                            token_sealed, mode_of_payment, factoring_account,
                                            bank_account)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (connection_id) DO UPDATE SET base_url = EXCLUDED.base_url,
                   token_sealed = EXCLUDED.token_sealed,
                   mode_of_payment = EXCLUDED.mode_of_payment,
                   factoring_account = EXCLUDED.factoring_account,
                   bank_account = EXCLUDED.bank_account, updated_at = now()
               WHERE erp_connections.tenant_id = EXCLUDED.tenant_id
               RETURNING true""",
            connection.connection_id,
            connection.tenant_id,
            connection.system,
            connection.base_url,
            connection.token_sealed,
            connection.mode_of_payment,
            connection.factoring_account,
            connection.bank_account,
        )
        if not saved:
            raise ConnectionOfAnotherTenantError(connection.connection_id)


class PgIntentLog:
    """Intent rows in ``entries``, written on a pooled connection of their own and committed
    at once, so they outlive the job's transaction (and a crash in the ERP call)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(
        self, entry_key: str, tenant_id: str, entry: PlannedEntry, account: int
    ) -> None:
        """Insert the intent row, or count one more attempt on it."""
        await self.pool.execute(
            "INSERT INTO entries (entry_key, tenant_id, invoice_id, kind, amount, currency, "
            "account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entry_key) DO UPDATE "
            "SET attempts = entries.attempts + 1",
            entry_key,
            tenant_id,
            entry.invoice_id,
            entry.kind.value,
            entry.amount,
            entry.currency,
            account,
        )


class PgEntryRepository:
    """What the ERP holds for each entry, on the job's connection (its transaction)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def known_references(self, invoice_id: str) -> set[str]:
        """The ERP references already recorded for the invoice's entries."""
        rows = await self.conn.fetch(
            "SELECT erp_reference FROM entries WHERE invoice_id = $1 AND erp_reference IS NOT NULL",
            invoice_id,
        )
        return {r["erp_reference"] for r in rows}

    async def record_posted(
        self, entry_key: str, erp_reference: str, adopted: bool, posted_at: dt.datetime
    ) -> None:
        """Store the ERP's reference, whether it was adopted, and when, on the intent row."""
        await self.conn.execute(
            "UPDATE entries SET erp_reference = $2, adopted = $3, posted_at = $4 "
            "WHERE entry_key = $1",
            entry_key,
            erp_reference,
            adopted,
            posted_at,
        )


class PgJobScheduler:
    """``post-entry`` jobs in the runtime's ``jobs``, in the caller's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def schedule(
        self,
        *,
        kind: str,
        key: str,
        tenant_id: str,
        payload: dict[str, Any],
        due_at: dt.datetime,
    ) -> bool:
        """Record a job; False if one with the same kind and key exists already."""
        return await jobs.schedule(
            self.conn, kind=kind, key=key, tenant_id=tenant_id, payload=payload, due_at=due_at
        )


def pg_repositories(conn: asyncpg.Connection, pool: asyncpg.Pool) -> Repositories:
    """The repositories on one transaction's connection; the intent log on the pool."""
    return Repositories(
        connections=PgConnectionRepository(conn),
        entries=PgEntryRepository(conn),
        intents=PgIntentLog(pool),
        jobs=PgJobScheduler(conn),
        profiles=PgTenantProfiles(conn),
    )
