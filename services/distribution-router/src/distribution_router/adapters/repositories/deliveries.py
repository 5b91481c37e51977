"""`deliveries` and `delivery_attempts` in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import asyncpg
from nordflow_runtime import jobs
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import Invoice

from ...domain.channels import SEND_INVOICE, Route, public_recipient, routes_from, routes_json
from ...domain.deliveries import (
    Attempt,
    ClaimedDelivery,
    DeliveryView,
    NewDelivery,
    SentDelivery,
)


def _attempt(row: asyncpg.Record) -> Attempt:
    return Attempt(
        idempotency_key=row["idempotency_key"],
        channel=Channel(row["channel"]),
        attempt=row["attempt"],
        state=row["state"],
        recipient=row["recipient"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        partner_reference=row["partner_reference"],
        cost=row["cost"],
        error=row["error"],
    )


class PgDeliveryRepository:
    """One `deliveries` row per invoice, and its `send-invoice` job."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def exists(self, invoice_id: str) -> bool:
        """Whether the invoice was routed before."""
        seen = await self.conn.fetchval(
            "SELECT 1 FROM deliveries WHERE invoice_id = $1", invoice_id
        )
        return bool(seen)

    async def record(self, d: NewDelivery) -> None:
        """Insert the routed invoice."""
        await self.conn.execute(
            "INSERT INTO deliveries (invoice_id, tenant_id, number, channel, recipient, "
            "test_mode, distributed_at, status, document_sha256, errors, document_format, "
            "customer_key, route, route_reason, invoice, due_at, completed_at, not_sent_reason) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13::jsonb, $14, "
            "$15::jsonb, $16, $17, $18)",
            d.invoice_id,
            d.tenant_id,
            d.number,
            d.channel.value,
            d.recipient,
            d.test_mode,
            d.routed_at,
            d.status,
            d.document_sha256,
            json.dumps([e.model_dump() for e in d.errors]) if d.errors else None,
            d.document_format,
            d.customer_key,
            routes_json(d.routes),
            d.route_reason,
            d.invoice.model_dump_json(),
            d.due_at,
            d.completed_at,
            d.not_sent_reason,
        )

    async def schedule_send(self, tenant_id: str, invoice_id: str, due_at: dt.datetime) -> None:
        """Record the invoice's send-invoice job (job key: the invoice id)."""
        if not isinstance(self.conn, asyncpg.Connection):
            raise TypeError("a send job is scheduled in the routing transaction")
        await jobs.schedule(
            self.conn,
            kind=SEND_INVOICE,
            key=invoice_id,
            tenant_id=tenant_id,
            payload={"invoice_id": invoice_id},
            due_at=due_at,
        )

    async def get(self, tenant_id: str, invoice_id: str) -> ClaimedDelivery | None:
        """The delivery as the send job reads it (unlocked)."""
        row = await self.conn.fetchrow(
            "SELECT status, customer_key, invoice, route, document_sha256, errors FROM deliveries "
            "WHERE invoice_id = $1 AND tenant_id = $2",
            invoice_id,
            tenant_id,
        )
        if row is None:
            return None
        return ClaimedDelivery(
            status=row["status"],
            customer_key=row["customer_key"],
            invoice=Invoice.model_validate_json(row["invoice"]),
            routes=routes_from(row["route"]),
            document_sha256=row["document_sha256"] if not row["errors"] else None,
        )

    async def mark_sent(self, invoice_id: str, sent: SentDelivery) -> bool:
        """Record the accepted send; False unless the delivery was scheduled."""
        changed = await self.conn.fetchval(
            "UPDATE deliveries SET status = 'sent', channel = $2, recipient = $3, "
            "document_format = $4, completed_at = $5, partner_reference = $6, cost = $7, "
            "archive_sequence = $8, document_sha256 = $9, attachments = $10::jsonb "
            "WHERE invoice_id = $1 AND status = 'scheduled' RETURNING true",
            invoice_id,
            sent.route.channel.value,
            public_recipient(sent.route),
            sent.route.document_format,
            sent.now,
            sent.reference,
            sent.cost,
            sent.archive_sequence,
            sent.sha256,
            json.dumps(sent.attachments) if sent.attachments else None,
        )
        return bool(changed)

    async def finish(
        self,
        invoice_id: str,
        status: str,
        route: Route,
        now: dt.datetime,
        errors: list[dict[str, str]] | None,
    ) -> bool:
        """Record a final outcome other than sent; False unless the delivery was scheduled."""
        changed = await self.conn.fetchval(
            "UPDATE deliveries SET status = $2, channel = $3, recipient = $4, "
            "document_format = $5, completed_at = $6, errors = $7::jsonb "
            "WHERE invoice_id = $1 AND status = 'scheduled' RETURNING true",
            invoice_id,
            status,
            route.channel.value,
            public_recipient(route),
            route.document_format,
            now,
            json.dumps(errors) if errors else None,
        )
        return bool(changed)

    async def views(
        self, tenant_id: str, invoice_id: str | None, status: str | None, limit: int
    ) -> list[DeliveryView]:
        """The tenant's deliveries with their attempts, newest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM deliveries WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR invoice_id = $2) AND ($3::text IS NULL OR status = $3) "
            "ORDER BY distributed_at DESC LIMIT $4",
            tenant_id,
            invoice_id,
            status,
            limit,
        )
        attempts = await self.conn.fetch(
            "SELECT * FROM delivery_attempts WHERE tenant_id = $1 "
            "AND invoice_id = ANY($2::text[]) ORDER BY started_at, attempt",
            tenant_id,
            [r["invoice_id"] for r in rows],
        )
        by_invoice: dict[str, list[Attempt]] = {}
        for a in attempts:
            by_invoice.setdefault(a["invoice_id"], []).append(_attempt(a))
        return [_view(r, by_invoice.get(r["invoice_id"], [])) for r in rows]


def _view(row: asyncpg.Record, attempts: list[Attempt]) -> DeliveryView:
    return DeliveryView(
        invoice_id=row["invoice_id"],
        number=row["number"],
        status=row["status"],
        test_mode=row["test_mode"],
        channel=Channel(row["channel"]),
        recipient=row["recipient"],
        document_format=row["document_format"],
        customer_key=row["customer_key"],
        routed_at=row["distributed_at"],
        due_at=row["due_at"],
        completed_at=row["completed_at"],
        routes=routes_from(row["route"]) if row["route"] is not None else (),
        route_reason=row["route_reason"],
        partner_reference=row["partner_reference"],
        cost=row["cost"],
        archive_sequence=row["archive_sequence"],
        errors=json.loads(row["errors"]) if row["errors"] else [],
        attachments=json.loads(row["attachments"]) if row["attachments"] else [],
        attempts=attempts,
        not_sent_reason=row["not_sent_reason"],
    )


class PgAttemptLog:
    """`delivery_attempts`: ``begin`` and ``finish`` on a separate pooled connection, so each
    commits on its own (they never touch `deliveries`, whose row the job's transaction holds
    locked); reading and recording the sent attempt on the job's connection."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool, pool: asyncpg.Pool | None) -> None:
        self.conn = conn
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        """The pool the committed-at-once writes use."""
        if self._pool is None:
            raise RuntimeError("the attempt log needs the service's pool to commit on its own")
        return self._pool

    async def begin(
        self, *, key: str, tenant_id: str, invoice_id: str, route: Route, attempt: int
    ) -> None:
        """Insert the attempt in state `sending` (a lost one goes back to `sending`)."""
        began = await self.pool.fetchval(
            "INSERT INTO delivery_attempts (idempotency_key, tenant_id, invoice_id, channel, "
            "attempt, recipient) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (idempotency_key) DO UPDATE SET state = 'sending', error = NULL, "
            "finished_at = NULL WHERE delivery_attempts.state = 'lost' RETURNING 1",
            key,
            tenant_id,
            invoice_id,
            route.channel.value,
            attempt,
            public_recipient(route),
        )
        if began is None:  # never send under a key whose outcome is already recorded
            raise RuntimeError(f"attempt {key} exists and is not lost")

    async def finish(self, key: str, state: str, error: str | None = None) -> None:
        """Set the attempt's final state."""
        await self.pool.execute(
            "UPDATE delivery_attempts SET state = $2, error = $3, finished_at = now() "
            "WHERE idempotency_key = $1",
            key,
            state,
            error[:2000] if error else None,
        )

    async def of_invoice(self, invoice_id: str) -> list[Attempt]:
        """Every attempt of the invoice, oldest first."""
        rows = await self.conn.fetch(
            "SELECT * FROM delivery_attempts WHERE invoice_id = $1 ORDER BY started_at, attempt",
            invoice_id,
        )
        return [_attempt(r) for r in rows]

    async def mark_sent(self, key: str, *, now: dt.datetime, reference: str, cost: Decimal) -> None:
        """Record the accepted attempt in the job's transaction."""
        await self.conn.execute(
            "UPDATE delivery_attempts SET state = 'sent', finished_at = $2, "
            "partner_reference = $3, cost = $4, error = NULL WHERE idempotency_key = $1",
            key,
            now,
            reference,
            cost,
        )
