"""Use case: decide each created invoice once and record a transfer for the eligible ones."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import asyncpg
from nordflow_schemas.events import AgreementKind, InvoiceCreated, InvoiceTransferred

from .domain import Agreement, eligibility

STOCKHOLM = ZoneInfo("Europe/Stockholm")


async def load_agreement(conn: asyncpg.Connection, tenant_id: str) -> Agreement | None:
    """The tenant's agreement, if any."""
    row = await conn.fetchrow("SELECT * FROM agreements WHERE tenant_id = $1", tenant_id)
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


async def decide_transfer(
    conn: asyncpg.Connection, event: InvoiceCreated, now: dt.datetime
) -> InvoiceTransferred | None:
    """Record the decision; return the transfer event for an eligible invoice.

    A connection in test mode is decided but never transferred.
    """
    invoice = event.invoice
    agreement = await load_agreement(conn, event.tenant_id)
    reason = eligibility(agreement, invoice, now.astimezone(STOCKHOLM).date())
    if reason is None and event.test_mode:
        reason = "test mode: would be transferred"
    decided = await conn.fetchval(
        "INSERT INTO decisions (invoice_id, tenant_id, eligible, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
        event.invoice_id,
        event.tenant_id,
        reason is None,
        reason or "eligible",
    )
    # Decided once: a later copy never overturns the recorded decision.
    if not decided or reason is not None or agreement is None:
        return None
    transfer_id = f"tr_{uuid.uuid4().hex}"
    inserted = await conn.fetchval(
        "INSERT INTO transfers (transfer_id, invoice_id, tenant_id, provider, amount, currency, "
        "transferred_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
        transfer_id,
        event.invoice_id,
        event.tenant_id,
        agreement.provider,
        invoice.totals.payable,
        invoice.currency,
        now,
    )
    if not inserted:
        return None
    return InvoiceTransferred(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        source=invoice.source,
        document_type=invoice.document_type,
        number=invoice.number,
        provider=agreement.provider,
        agreement_kind=agreement.kind,
        transfer_id=transfer_id,
        amount=invoice.totals.payable,
        currency=invoice.currency,
        transferred_at=now,
    )


async def set_agreement(conn: asyncpg.Connection, agreement: Agreement) -> None:
    """Create or replace a tenant's agreement."""
    await conn.execute(
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
