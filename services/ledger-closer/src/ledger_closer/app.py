"""create_app(): ledger-closer's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthError, OAuthSession, Tokens
from nordflow_connectors.pg_tokens import PgTokenStore
from nordflow_connectors.resilience import PartnerError
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.jobs import Job
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import InvoiceTransferred, PaymentReceived
from nordflow_schemas.topics import INVOICE_TRANSFERRED, LEDGER_CLOSER, PAYMENT_RECEIVED
from pydantic import SecretStr

from .config import Settings
from .credentials import FortnoxOAuthCredentials, parse_credentials
from .repository import find_connection
from .service import POST_ENTRY, PgIntentLog, post_entry, schedule_closing, schedule_payment

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LOCK_NAMESPACE = "ledger_closer.oauth"


@dataclass
class Writer:
    """One write connection's client and, for an OAuth connection, its session."""

    updated_at: dt.datetime
    client: FortnoxClient
    session: OAuthSession | None = None

    async def aclose(self) -> None:
        """Close the client and the session."""
        await self.client.aclose()
        if self.session is not None:
            await self.session.aclose()


class EntryPoster:
    """The ``post-entry`` job: one payment into the tenant's ERP, then ledger.entry.posted.

    An OAuth connection refreshes with ledger-closer's own grant, its rotating tokens sealed
    in this service's ``oauth_tokens`` (shared by its replicas under an advisory lock).
    """

    def __init__(self, box: SecretBox, pool: asyncpg.Pool) -> None:
        self.box = box
        self.pool = pool
        # One client per connection, so its rate limiter spans every job of that company;
        # replaced when the connection is updated (new token or URL).
        self.writers: dict[str, Writer] = {}

    async def writer_for(self, row: asyncpg.Record) -> FortnoxClient:
        """The cached client of a write connection."""
        cached = self.writers.get(row["connection_id"])
        if cached is not None and cached.updated_at == row["updated_at"]:
            return cached.client
        if cached is not None:
            del self.writers[row["connection_id"]]
            await cached.aclose()
        writer = self._open(row)
        self.writers[row["connection_id"]] = writer
        return writer.client

    def _open(self, row: asyncpg.Record) -> Writer:
        credentials = parse_credentials(self.box.open(bytes(row["token_sealed"])))
        if not isinstance(credentials, FortnoxOAuthCredentials):
            return Writer(row["updated_at"], FortnoxClient(row["base_url"], credentials))
        initial = Tokens(
            access_token=SecretStr(""),  # expired at once: the first use refreshes
            refresh_token=credentials.refresh_token,
            expires_at=EPOCH,
        )
        store = PgTokenStore(
            self.pool,
            self.box,
            row["connection_id"],
            row["tenant_id"],
            initial,
            lock_namespace=LOCK_NAMESPACE,
        )
        session = OAuthSession(
            credentials.token_url, credentials.client_id, credentials.client_secret, store
        )
        return Writer(row["updated_at"], FortnoxClient(row["base_url"], session), session)

    async def __call__(self, ctx: Context[None], job: Job) -> dict[str, Any]:
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
        except OAuthError as exc:
            if exc.permanent or exc.reauthorization_required:
                raise PermanentError(
                    f"ERP authorization refused: {exc} (authorize ledger-closer again and "
                    "re-add the connection with the new refresh token; then retry the job)"
                ) from exc
            raise
        await ctx.emit(posted, subject=posted.source.document_number)
        return {"erp_reference": posted.erp_reference}

    async def aclose(self) -> None:
        """Close every client and session."""
        writers, self.writers = self.writers, {}
        for writer in writers.values():
            await writer.aclose()


def create_app(settings: Settings | None = None) -> ServiceApp[None]:
    """ledger-closer: invoice.transferred / payment.received → ERP write → ledger.entry.posted."""
    settings = settings or Settings()
    app: ServiceApp[None] = ServiceApp(LEDGER_CLOSER, settings, "ledger_closer")
    box = SecretBox(settings.encryption_key)
    delay = dt.timedelta(seconds=settings.closing_delay_seconds)
    poster: EntryPoster | None = None

    async def on_invoice_transferred(ctx: Context[None], env: Envelope[InvoiceTransferred]) -> None:
        """Plan the closing entry after the configured delay."""
        await schedule_closing(ctx.conn, env.body, delay)

    async def on_payment_received(ctx: Context[None], env: Envelope[PaymentReceived]) -> None:
        """Plan booking the payment now, unless the ERP it came from already holds it."""
        await schedule_payment(ctx.conn, env.body)

    async def run_post_entry(ctx: Context[None], job: Job) -> dict[str, Any]:
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
