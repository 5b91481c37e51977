"""Use cases: schedule closings, and write each payment into the ERP exactly once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import asyncpg
from nordflow_runtime import jobs
from nordflow_runtime.consumer import PermanentError
from nordflow_schemas.common import SourceRef
from nordflow_schemas.events import (
    EntryKind,
    InvoiceTransferred,
    LedgerEntryPosted,
    PaymentReceived,
)
from nordflow_schemas.invoice import DocumentType

POST_ENTRY = "post-entry"
# The business date of a Swedish/Norwegian ledger entry is local (CET/CEST), not UTC.
STOCKHOLM = ZoneInfo("Europe/Stockholm")


class LedgerWriter(Protocol):
    """What closing needs from an ERP client (FortnoxClient satisfies it)."""

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        """Payments already registered on an invoice."""
        ...

    async def create_payment(
        self,
        *,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        mode_of_payment: str,
        account: int,
    ) -> dict[str, Any]:
        """Register one payment."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


async def schedule_closing(
    conn: asyncpg.Connection, event: InvoiceTransferred, delay: dt.timedelta
) -> bool:
    """Plan the closing entry of a transferred invoice (durable timer, once per invoice)."""
    if event.test_mode:
        return False
    # A credit note is closed by a refund: a negative payment in the ERP.
    sign = -1 if event.document_type is DocumentType.CREDIT_NOTE else 1
    return await jobs.schedule(
        conn,
        kind=POST_ENTRY,
        key=f"closing:{event.invoice_id}",
        tenant_id=event.tenant_id,
        payload={
            "invoice_id": event.invoice_id,
            "kind": EntryKind.CLOSING_ENTRY.value,
            "source": event.source.model_dump(mode="json"),
            "amount": str(event.amount * sign),
            "currency": event.currency,
            "paid_on": event.transferred_at.astimezone(STOCKHOLM).date().isoformat(),
            "account_role": "factoring",
        },
        due_at=event.transferred_at + delay,
    )


async def schedule_payment(conn: asyncpg.Connection, event: PaymentReceived) -> bool:
    """Plan booking a reported payment on its invoice (once per payment id).

    Nothing is planned in test mode, nor for a payment picked up from the ERP itself
    (``recorded_at_source``): booking it again would pay the invoice twice.
    """
    if event.test_mode or event.recorded_at_source:
        return False
    return await jobs.schedule(
        conn,
        kind=POST_ENTRY,
        key=f"payment:{event.payment_id}",
        tenant_id=event.tenant_id,
        payload={
            "invoice_id": event.invoice_id,
            "kind": EntryKind.INVOICE_PAYMENT.value,
            "source": event.source.model_dump(mode="json"),
            "amount": str(event.amount),
            "currency": event.currency,
            "paid_on": event.paid_on.isoformat(),
            "account_role": "bank",
        },
        due_at=dt.datetime.now(dt.UTC),
    )


class IntentLog(Protocol):
    """Records the intent to write, committed on its own before the ERP is called."""

    async def record(self, job: jobs.Job, amount: Decimal, account: int) -> None:
        """Insert the intent row (once per entry key); survives a crash of the job."""
        ...


class PgIntentLog:
    """Intent rows written on a separate connection, so they commit before the ERP call."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, job: jobs.Job, amount: Decimal, account: int) -> None:
        """Insert the intent row, or count one more attempt on it."""
        p = job.payload
        await self.pool.execute(
            "INSERT INTO entries (entry_key, tenant_id, invoice_id, kind, amount, currency, "
            "account) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entry_key) DO UPDATE "
            "SET attempts = entries.attempts + 1",
            job.key,
            job.tenant_id,
            p["invoice_id"],
            p["kind"],
            amount,
            p["currency"],
            account,
        )


def _matches(
    payment: dict[str, Any], amount: Decimal, mode: str, account: int, paid_on: str
) -> bool:
    return (
        Decimal(str(payment.get("Amount", "0"))) == amount
        and str(payment.get("ModeOfPayment") or "") == mode
        and str(payment.get("ModeOfPaymentAccount") or "") == str(account)
        and str(payment.get("PaymentDate") or "") == paid_on
    )


async def post_entry(
    conn: asyncpg.Connection,
    job: jobs.Job,
    writer: LedgerWriter,
    settings_row: asyncpg.Record,
    intents: IntentLog,
) -> LedgerEntryPosted:
    """Write one payment into the ERP exactly once and return the event saying so.

    The intent row is written before the call. If an earlier attempt's outcome is unknown
    (crash or timeout after the ERP applied it), the payment is looked up at the ERP first
    and adopted instead of created again: the ERP has no idempotency keys.
    """
    p = job.payload
    source = SourceRef.model_validate(p["source"])
    if not source.document_number:
        raise PermanentError("the source invoice has no document number to book against")
    amount = Decimal(p["amount"])
    mode = settings_row["mode_of_payment"]
    account = (
        settings_row["factoring_account"]
        if p["account_role"] == "factoring"
        else settings_row["bank_account"]
    )
    await intents.record(job, amount, account)
    # Always look first: a killed attempt rolls back our records but not the ERP's. Payments
    # already recorded as another entry of ours are not candidates for adoption.
    known = {
        r["erp_reference"]
        for r in await conn.fetch(
            "SELECT erp_reference FROM entries WHERE invoice_id = $1 AND erp_reference IS NOT NULL",
            p["invoice_id"],
        )
    }
    existing = [
        pay
        for pay in await writer.payments_for_invoice(source.document_number)
        if _matches(pay, amount, mode, account, p["paid_on"])
        and str(pay.get("Number")) not in known
    ]
    adopted = bool(existing)
    if existing:
        payment = existing[0]
    else:
        payment = await writer.create_payment(
            document_number=source.document_number,
            amount=amount,
            payment_date=dt.date.fromisoformat(p["paid_on"]),
            mode_of_payment=mode,
            account=account,
        )
    reference = str(payment.get("Number"))
    posted_at = dt.datetime.now(dt.UTC)
    await conn.execute(
        "UPDATE entries SET erp_reference = $2, adopted = $3, posted_at = $4 WHERE entry_key = $1",
        job.key,
        reference,
        adopted,
        posted_at,
    )
    return LedgerEntryPosted(
        tenant_id=job.tenant_id,
        invoice_id=p["invoice_id"],
        source=source,
        entry_kind=EntryKind(p["kind"]),
        erp_reference=reference,
        amount=amount,
        currency=p["currency"],
        account=str(account),
        posted_at=posted_at,
    )
