"""asyncpg adapter for ERP write connections (tokens sealed at rest)."""

from __future__ import annotations

import asyncpg


async def upsert_connection(
    conn: asyncpg.Connection,
    *,
    connection_id: str,
    tenant_id: str,
    system: str,
    base_url: str,
    token_sealed: bytes,
    mode_of_payment: str,
    factoring_account: int,
    bank_account: int,
) -> None:
    """Create or replace where and how ledger-closer writes for a source connection.

    Raises PermissionError if the id belongs to another tenant.
    """
    saved = await conn.fetchval(
        """INSERT INTO erp_connections (connection_id, tenant_id, system, base_url, token_sealed,
                                        mode_of_payment, factoring_account, bank_account)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (connection_id) DO UPDATE SET base_url = EXCLUDED.base_url,
               token_sealed = EXCLUDED.token_sealed, mode_of_payment = EXCLUDED.mode_of_payment,
               factoring_account = EXCLUDED.factoring_account,
               bank_account = EXCLUDED.bank_account, updated_at = now()
           WHERE erp_connections.tenant_id = EXCLUDED.tenant_id
           RETURNING true""",
        connection_id,
        tenant_id,
        system,
        base_url,
        token_sealed,
        mode_of_payment,
        factoring_account,
        bank_account,
    )
    if not saved:
        raise PermissionError(f"connection {connection_id!r} belongs to another tenant")


async def find_connection(
    conn: asyncpg.Connection, tenant_id: str, connection_id: str
) -> asyncpg.Record | None:
    """The tenant's write connection for a source connection."""
    return await conn.fetchrow(
        "SELECT * FROM erp_connections WHERE tenant_id = $1 AND connection_id = $2",
        tenant_id,
        connection_id,
    )
