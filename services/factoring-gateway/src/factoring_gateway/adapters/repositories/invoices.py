"""Offered invoices, their states and newest versions (``invoices``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg
from nordflow_schemas.events import Flow
from nordflow_schemas.invoice import DocumentType, Invoice

from ...domain.batches import InvoiceState, OfferedInvoice


def _offered(row: asyncpg.Record) -> OfferedInvoice:
    return OfferedInvoice(
        invoice=Invoice.model_validate_json(row["invoice"]),
        state=InvoiceState(row["state"]),
        reason=row["reason"],
        flow=Flow.model_validate_json(row["flow"]),
        agreement_id=row["agreement_id"],
        payment_reference=row["payment_reference"],
        version=row["version"],
        decided_at=row["decided_at"],
        batch_id=row["batch_id"],
        factor_due_date=row["factor_due_date"],
        trace=(row["traceparent"], row["tracestate"]),
    )


COLUMNS = (
    "invoice_id, state, reason, agreement_id, payment_reference, flow::text AS flow, "
    "invoice::text AS invoice, version, decided_at, batch_id, factor_due_date, traceparent, "
    "tracestate"
)


class PgInvoiceRepository:
    """``invoices``: one row per offered invoice."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def get(self, invoice_id: str) -> OfferedInvoice | None:
        """One offered invoice."""
        row = await self.conn.fetchrow(
            f"SELECT {COLUMNS} FROM invoices WHERE invoice_id = $1", invoice_id
        )
        return _offered(row) if row is not None else None

    async def by_number(
        self, tenant_id: str, number: str, agreement_id: str | None = None
    ) -> OfferedInvoice | None:
        """The tenant's invoice (not a credit note) with that number, newest first."""
        row = await self.conn.fetchrow(
            f"SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 AND number = $2 "
            "AND document_type = $3 AND ($4::text IS NULL OR agreement_id = $4) "
            "ORDER BY decided_at DESC LIMIT 1",
            tenant_id,
            number,
            DocumentType.INVOICE.value,
            agreement_id,
        )
        return _offered(row) if row is not None else None

    async def by_reference(self, agreement_id: str, reference: str) -> OfferedInvoice | None:
        """The agreement's invoice with that KID/OCR."""
        row = await self.conn.fetchrow(
            f"SELECT {COLUMNS} FROM invoices WHERE agreement_id = $1 "
            "AND payment_reference = $2 ORDER BY decided_at DESC LIMIT 1",
            agreement_id,
            reference,
        )
        return _offered(row) if row is not None else None

    async def record(self, offered: OfferedInvoice) -> bool:
        """Keep a first decision; False when one exists."""
        invoice = offered.invoice
        return bool(
            await self.conn.fetchval(
                """INSERT INTO invoices (invoice_id, tenant_id, number, document_type, state,
                       reason, agreement_id, payment_reference, flow, invoice, version,
                       decided_at, traceparent, tracestate)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12,
                           $13, $14)
                   ON CONFLICT (invoice_id) DO NOTHING RETURNING true""",
                invoice.invoice_id,
                invoice.tenant_id,
                invoice.number,
                invoice.document_type.value,
                offered.state.value,
                offered.reason,
                offered.agreement_id,
                offered.payment_reference,
                offered.flow.model_dump_json(),
                invoice.model_dump_json(),
                offered.version,
                offered.decided_at or dt.datetime.now(dt.UTC),
                offered.trace[0],
                offered.trace[1],
            )
        )

    async def update_invoice(self, invoice_id: str, invoice: Invoice, version: str) -> None:
        """Keep a newer version."""
        await self.conn.execute(
            "UPDATE invoices SET invoice = $2::jsonb, version = $3, updated_at = now() "
            "WHERE invoice_id = $1",
            invoice_id,
            invoice.model_dump_json(),
            version,
        )

    async def set_state(
        self,
        invoice_ids: Sequence[str],
        state: InvoiceState,
        reason: str,
        *,
        batch_id: str | None = None,
    ) -> None:
        """Move invoices to a state (with the batch they are in, when given)."""
        await self.conn.execute(
            "UPDATE invoices SET state = $2, reason = $3, "
            "batch_id = COALESCE($4, batch_id), updated_at = now() "
            "WHERE invoice_id = ANY($1::text[])",
            list(invoice_ids),
            state.value,
            reason,
            batch_id,
        )

    async def set_factor_due_date(self, invoice_id: str, due_date: dt.date | None) -> None:
        """The due date the provider now has."""
        await self.conn.execute(
            "UPDATE invoices SET factor_due_date = $2 WHERE invoice_id = $1", invoice_id, due_date
        )

    async def pending(self, agreement_id: str) -> list[OfferedInvoice]:
        """Pending invoices, locked until the transaction ends (a concurrent run waits, then
        finds them batched)."""
        rows = await self.conn.fetch(
            f"SELECT {COLUMNS} FROM invoices WHERE agreement_id = $1 AND state = 'pending' "
            "ORDER BY decided_at, invoice_id FOR UPDATE",
            agreement_id,
        )
        return [_offered(r) for r in rows]

    async def listing(
        self, tenant_id: str, *, state: InvoiceState | None, limit: int, offset: int
    ) -> list[OfferedInvoice]:
        """The tenant's offered invoices, newest first."""
        rows = await self.conn.fetch(
            f"SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR state = $2) "
            "ORDER BY decided_at DESC, invoice_id LIMIT $3 OFFSET $4",
            tenant_id,
            state.value if state else None,
            limit,
            offset,
        )
        return [_offered(r) for r in rows]
