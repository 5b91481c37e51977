"""create_app(): ledger-closer's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.resilience import PartnerError
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.jobs import Job
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceTransferred, PaymentReceived
from nordflow_schemas.topics import INVOICE_TRANSFERRED, LEDGER_CLOSER, PAYMENT_RECEIVED

from .config import Settings
from .repository import find_connection
from .service import POST_ENTRY, PgIntentLog, post_entry, schedule_closing, schedule_payment


class EntryPoster:
    """The ``post-entry`` job: one payment into the tenant's ERP, then ledger.entry.posted."""

    def __init__(self, box: SecretBox, pool: asyncpg.Pool) -> None:
        self.box = box
        self.pool = pool
        # One client per connection, so its rate limiter spans every job of that company;
        # replaced when the connection is updated (new token or URL).
        self.writers: dict[str, tuple[dt.datetime, FortnoxClient]] = {}

    async def writer_for(self, row: asyncpg.Record) -> FortnoxClient:
        """The cached client of a write connection."""
        cached = self.writers.get(row["connection_id"])
        if cached is not None and cached[0] == row["updated_at"]:
            return cached[1]
        if cached is not None:
            await cached[1].aclose()
        client = FortnoxClient(row["base_url"], self.box.open(bytes(row["token_sealed"])))
        self.writers[row["connection_id"]] = (row["updated_at"], client)
        return client

    async def __call__(self, ctx: Context, job: Job) -> dict[str, Any]:
        """Run one job attempt inside the job's transaction."""
        source = job.payload["source"]
        row = await find_connection(ctx.conn, job.tenant_id, source["connection_id"])
        if row is None:
            # Retried with backoff, so an operator can still add the connection.
            raise LookupError(
                f"no ERP write connection {source['connection_id']!r} for tenant {job.tenant_id}"
            )
        if row["system"] != "fortnox":
            raise PermanentError(f"no ledger writer for {row['system']!r} yet")
        try:
            posted = await post_entry(
                ctx.conn, job, await self.writer_for(row), row, PgIntentLog(self.pool)
            )
        except PartnerError as exc:
            if exc.permanent:
                raise PermanentError(f"ERP refused the entry: {exc}") from exc
            raise
        await ctx.emit(posted, subject=posted.source.document_number)
        return {"erp_reference": posted.erp_reference}

    async def aclose(self) -> None:
        """Close every client."""
        for _, writer in self.writers.values():
            await writer.aclose()


def create_app(settings: Settings | None = None) -> ServiceApp:
    """ledger-closer: invoice.transferred / payment.received → ERP write → ledger.entry.posted."""
    settings = settings or Settings()
    app = ServiceApp(LEDGER_CLOSER, settings, "ledger_closer")
    box = SecretBox(settings.encryption_key)
    delay = dt.timedelta(seconds=settings.closing_delay_seconds)
    poster: EntryPoster | None = None

    async def on_invoice_transferred(ctx: Context, env: Envelope[InvoiceTransferred]) -> None:
        """Plan the closing entry after the configured delay."""
        await schedule_closing(ctx.conn, env.body, delay)

    async def on_payment_received(ctx: Context, env: Envelope[PaymentReceived]) -> None:
        """Plan booking the payment now, unless the ERP it came from already holds it."""
        await schedule_payment(ctx.conn, env.body)

    async def run_post_entry(ctx: Context, job: Job) -> dict[str, Any]:
        nonlocal poster
        poster = poster or EntryPoster(box, app.pool)
        return await poster(ctx, job)

    async def close() -> None:
        if poster is not None:
            await poster.aclose()

    app.subscribe(INVOICE_TRANSFERRED.name, on_invoice_transferred)
    app.subscribe(PAYMENT_RECEIVED.name, on_payment_received)
    app.job(POST_ENTRY, run_post_entry, retry_initial=1.0, retry_max=60.0)
    app.on_shutdown.append(close)
    return app
