"""factoring-gateway's decisions as this service keeps them, and the invoices waiting for one."""

from __future__ import annotations

import asyncpg
from nordflow_schemas.events import InvoiceCreated, InvoiceFactoringDecided


class PgFactoringRepository:
    """``factoring_decisions`` and ``awaiting_factoring``."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def decision(self, invoice_id: str) -> InvoiceFactoringDecided | None:
        """The invoice's decision, if it has arrived."""
        text = await self.conn.fetchval(
            "SELECT decision::text FROM factoring_decisions WHERE invoice_id = $1", invoice_id
        )
        return None if text is None else InvoiceFactoringDecided.model_validate_json(text)

    async def record(self, decision: InvoiceFactoringDecided) -> bool:
        """Keep the decision; False if the invoice had one (the first one stands)."""
        return bool(
            await self.conn.fetchval(
                "INSERT INTO factoring_decisions (invoice_id, tenant_id, decision) "
                "VALUES ($1, $2, $3::jsonb) ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
                decision.invoice_id,
                decision.tenant_id,
                decision.model_dump_json(),
            )
        )

    async def park(self, created: InvoiceCreated) -> None:
        """Keep a created invoice until its decision arrives (once)."""
        await self.conn.execute(
            "INSERT INTO awaiting_factoring (invoice_id, tenant_id, created) "
            "VALUES ($1, $2, $3::jsonb) ON CONFLICT (invoice_id) DO NOTHING",
            created.invoice_id,
            created.tenant_id,
            created.model_dump_json(),
        )

    async def take_parked(self, invoice_id: str) -> InvoiceCreated | None:
        """The waiting invoice, no longer waiting; None if none waits."""
        text = await self.conn.fetchval(
            "DELETE FROM awaiting_factoring WHERE invoice_id = $1 RETURNING created::text",
            invoice_id,
        )
        return None if text is None else InvoiceCreated.model_validate_json(text)

    async def waiting(self, tenant_id: str) -> int:
        """How many of the tenant's invoices wait for a factoring decision."""
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM awaiting_factoring WHERE tenant_id = $1", tenant_id
        )
        return count
