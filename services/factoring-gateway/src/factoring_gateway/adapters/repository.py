"""PostgreSQL repositories of factoring-gateway (all of its SQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import asyncpg
from nordflow_runtime.tenant_profiles import PgTenantProfiles
from nordflow_schemas.events import AgreementKind

from ..domain import Agreement
from ..service import Repositories


class PgAgreementRepository:
    """Agreements in ``agreements`` (one per tenant)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, tenant_id: str) -> Agreement | None:
        """The tenant's agreement, if any."""
        row = await self.conn.fetchrow("SELECT * FROM agreements WHERE tenant_id = $1", tenant_id)
        if row is None:
            return None
        return Agreement(
            tenant_id=row["tenant_id"],
            provider=row["provider"],
            kind=AgreementKind(row["kind"]),
            enabled=row["enabled"],
            max_age_days=row["max_age_days"],
            include_credit_notes=row["include_credit_notes"],
            payment_methods=frozenset(row["payment_methods"])
            if row["payment_methods"] is not None
            else None,
            currencies=frozenset(row["currencies"]),
        )

    async def save(self, agreement: Agreement) -> None:
        """Create or replace the tenant's agreement."""
        await self.conn.execute(
            """INSERT INTO agreements (tenant_id, provider, kind, enabled, max_age_days,
                                       include_credit_notes, payment_methods, currencies)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (tenant_id) DO UPDATE SET provider = EXCLUDED.provider,
                   kind = EXCLUDED.kind, enabled = EXCLUDED.enabled,
                   max_age_days = EXCLUDED.max_age_days,
                   include_credit_notes = EXCLUDED.include_credit_notes,
                   payment_methods = EXCLUDED.payment_methods, currencies = EXCLUDED.currencies,
                   updated_at = now()""",
            agreement.tenant_id,
            agreement.provider,
            agreement.kind.value,
            agreement.enabled,
            agreement.max_age_days,
            agreement.include_credit_notes,
            sorted(agreement.payment_methods) if agreement.payment_methods is not None else None,
            sorted(agreement.currencies),
        )


class PgTransferRepository:
    """Decisions in ``decisions``, transfers in ``transfers`` (each unique per invoice)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record_decision(
        self, tenant_id: str, invoice_id: str, eligible: bool, reason: str
    ) -> bool:
        """Record the invoice's decision; False if it was decided before."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO decisions (invoice_id, tenant_id, eligible, reason) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
                invoice_id,
                tenant_id,
                eligible,
                reason,
            )
        )

    async def record_transfer(
        self,
        *,
        transfer_id: str,
        tenant_id: str,
        invoice_id: str,
        provider: str,
        amount: Decimal,
        currency: str,
        transferred_at: dt.datetime,
    ) -> bool:
        """Record the transfer; False if the invoice has one already."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO transfers (transfer_id, invoice_id, tenant_id, provider, amount, "
                "currency, transferred_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
                transfer_id,
                invoice_id,
                tenant_id,
                provider,
                amount,
                currency,
                transferred_at,
            )
        )


def pg_repositories(conn: asyncpg.Connection) -> Repositories:
    """The repositories on one connection (the consumer's batch transaction)."""
    return Repositories(
        agreements=PgAgreementRepository(conn),
        transfers=PgTransferRepository(conn),
        profiles=PgTenantProfiles(conn),
    )
