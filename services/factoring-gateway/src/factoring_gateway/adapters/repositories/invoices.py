"""Offered invoices, their states and newest versions (``invoices``), and the newer
versions of invoices not seen created yet (``early_versions``)."""

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

    async def get_many(self, invoice_ids: Sequence[str]) -> dict[str, OfferedInvoice]:
        """Those of the invoices offered here, by id, in one statement."""
        rows = await self.conn.fetch(
            f"SELECT {COLUMNS} FROM invoices WHERE invoice_id = ANY($1::text[])",
            list(invoice_ids),
        )
        return {row["invoice_id"]: _offered(row) for row in rows}

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

    async def record(self, offered: Sequence[OfferedInvoice]) -> set[str]:
        """Keep first decisions in one statement; the ids kept (one decided before is not)."""
        now = dt.datetime.now(dt.UTC)
        rows = [
            (
                o.invoice.invoice_id,
                o.invoice.tenant_id,
                o.invoice.number,
                o.invoice.document_type.value,
                o.state.value,
                o.reason,
                o.agreement_id,
                o.payment_reference,
                o.flow.model_dump_json(),
                o.invoice.model_dump_json(),
                o.version,
                o.decided_at or now,
                o.trace[0],
                o.trace[1],
            )
            for o in offered
        ]
        if not rows:
            return set()
        kept = await self.conn.fetch(
            """INSERT INTO invoices (invoice_id, tenant_id, number, document_type, state,
                   reason, agreement_id, payment_reference, flow, invoice, version,
                   decided_at, traceparent, tracestate)
               SELECT id, tenant, num, doc, st, why, agr, ref, fl::jsonb, inv::jsonb, ver, at,
                      tp, ts
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                           $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                           $11::text[], $12::timestamptz[], $13::text[], $14::text[])
                    AS x(id, tenant, num, doc, st, why, agr, ref, fl, inv, ver, at, tp, ts)
               ON CONFLICT (invoice_id) DO NOTHING RETURNING invoice_id""",
            *(list(column) for column in zip(*rows, strict=True)),
        )
        return {row["invoice_id"] for row in kept}

    async def update_invoices(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        """Keep newer versions (one per invoice) in one statement."""
        if not versions:
            return
        await self.conn.execute(
            "UPDATE invoices AS i SET invoice = u.invoice::jsonb, version = u.version, "
            "updated_at = now() "
            "FROM unnest($1::text[], $2::text[], $3::text[]) AS u(invoice_id, invoice, version) "
            "WHERE i.invoice_id = u.invoice_id",
            [invoice_id for invoice_id, _, _ in versions],
            [invoice.model_dump_json() for _, invoice, _ in versions],
            [version for _, _, version in versions],
        )

    async def lock(self, invoice_ids: Sequence[str]) -> None:
        """Transaction-scoped advisory locks of the invoices, taken in one statement in id
        order (two batches never wait on each other in a circle)."""
        await self.conn.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended('factoring-gateway:invoice:' "
            "|| id, 0))) FROM (SELECT DISTINCT unnest($1::text[]) AS id ORDER BY 1) ids",
            list(invoice_ids),
        )

    async def keep_early_versions(self, versions: Sequence[tuple[str, Invoice, str]]) -> None:
        """Keep newer versions of invoices not seen created yet (one per invoice) in one
        statement; each replaces the one kept before."""
        if not versions:
            return
        await self.conn.execute(
            "INSERT INTO early_versions (invoice_id, tenant_id, version, invoice) "
            "SELECT id, tenant, ver, inv::jsonb "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
            "AS x(id, tenant, ver, inv) "
            "ON CONFLICT (invoice_id) DO UPDATE SET version = EXCLUDED.version, "
            "invoice = EXCLUDED.invoice, received_at = now()",
            [invoice_id for invoice_id, _, _ in versions],
            [invoice.tenant_id for _, invoice, _ in versions],
            [version for _, _, version in versions],
            [invoice.model_dump_json() for _, invoice, _ in versions],
        )

    async def take_early_versions(
        self, invoice_ids: Sequence[str]
    ) -> dict[str, tuple[Invoice, str]]:
        """The versions kept of these invoices, removed, in one statement."""
        rows = await self.conn.fetch(
            "DELETE FROM early_versions WHERE invoice_id = ANY($1::text[]) "
            "RETURNING invoice_id, version, invoice::text AS invoice",
            list(invoice_ids),
        )
        return {
            row["invoice_id"]: (Invoice.model_validate_json(row["invoice"]), row["version"])
            for row in rows
        }

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
