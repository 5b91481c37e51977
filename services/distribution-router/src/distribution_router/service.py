"""Use case: route each created invoice once and record the delivery."""

from __future__ import annotations

import datetime as dt

import asyncpg
from nordflow_schemas.events import InvoiceCreated, InvoiceDistributed

from .domain import choose_channel


async def distribute_invoice(
    conn: asyncpg.Connection, event: InvoiceCreated, now: dt.datetime
) -> InvoiceDistributed | None:
    """Record the route; return the event unless the invoice was routed before or is a test."""
    route = choose_channel(event.invoice)
    inserted = await conn.fetchval(
        "INSERT INTO deliveries (invoice_id, tenant_id, number, channel, recipient, test_mode, "
        "distributed_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
        event.invoice_id,
        event.tenant_id,
        event.invoice.number,
        route.channel.value,
        route.recipient,
        event.test_mode,
        now,
    )
    if not inserted or event.test_mode:
        return None
    return InvoiceDistributed(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        number=event.invoice.number,
        channel=route.channel,
        document_format=route.document_format,
        recipient=route.recipient,
        distributed_at=now,
    )
