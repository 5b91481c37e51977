"""create_app(): distribution-router's composition root; nothing connects at import."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from nordflow_documents.registry import default_registry
from nordflow_documents.validation import shared_validator
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context
from nordflow_runtime.jobs import Job
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import Channel, InvoiceCreated
from nordflow_schemas.topics import DISTRIBUTION_ROUTER, INVOICE_CREATED

from . import archive, holds
from .api_channels import PaperDefaults, build_channels_api
from .api_documents import build_documents_api
from .channels.base import Sender
from .config import Settings
from .domain import DEFAULT_UNIT_PRICES
from .sending import MAX_ATTEMPTS, PgAttemptLog, SendInvoice
from .service import SEND_INVOICE, ConsumerRegistry, distribute_invoice
from .smp import ParticipantLookup


def unit_prices(settings: Settings) -> dict[Channel, Decimal]:
    """What one send costs per channel when the partner does not say (SEK).

    ``UNIT_PRICE_PEPPOL``, ``UNIT_PRICE_B2C_BANK``, ``UNIT_PRICE_EMAIL``, ``UNIT_PRICE_PAPER``
    replace the defaults when set.
    """
    out = dict(DEFAULT_UNIT_PRICES)
    for channel in Channel:
        value = getattr(settings, f"unit_price_{channel.value}", None)
        if value is not None:
            out[channel] = Decimal(str(value))
    return out


def consumer_registry(senders: Mapping[Channel, Sender]) -> ConsumerRegistry | None:
    """The B2C bank adapter doubles as the registry of consumers who take bank e-invoices."""
    b2c = senders.get(Channel.B2C_BANK)
    if b2c is None or not hasattr(b2c, "registered"):
        return None
    return cast(ConsumerRegistry, b2c)


def create_app(settings: Settings | None = None) -> ServiceApp[None]:
    """distribution-router: invoice.created → send-invoice job → invoice.distributed | …"""
    settings = settings or Settings()
    app: ServiceApp[None] = ServiceApp(DISTRIBUTION_ROUTER, settings, "distribution_router")
    renderers = default_registry()
    lookup: ParticipantLookup | None = None
    senders: dict[Channel, Sender] = {}
    sender_job: SendInvoice | None = None

    async def start() -> None:
        nonlocal lookup, sender_job
        from .channels.factory import build_senders  # the adapters read their own settings

        lookup = ParticipantLookup(
            smp_url=settings.smp_url,
            sml_zone=settings.sml_zone,
            ttl=settings.participant_cache_seconds,
        )
        senders.update(build_senders(settings))
        shared_validator()  # compile the rule files before the first invoice arrives
        sender_job = SendInvoice(
            senders=senders,
            renderers=renderers,
            validator=shared_validator(),
            attempts=PgAttemptLog(app.pool),
            archive=archive.archive_document,
            attachments=holds.attachments,
            lookup=lookup,
            registry=consumer_registry(senders),
            unit_prices=unit_prices(settings),
            suggestion_snooze=dt.timedelta(days=settings.suggestion_snooze_days),
        )

    async def stop() -> None:
        if lookup is not None:
            await lookup.aclose()
        for sender in senders.values():
            await sender.aclose()

    async def on_invoice_created(ctx: Context[None], env: Envelope[InvoiceCreated]) -> None:
        """Route, render and validate, and schedule the send (or emit delivery_failed)."""
        assert lookup is not None, "started"
        outcome = await distribute_invoice(
            ctx.conn,
            env.body,
            dt.datetime.now(dt.UTC),
            lookup=lookup,
            renderers=renderers,
            validator=shared_validator(),
            registry=consumer_registry(senders),
            holds=holds,
        )
        if outcome is not None:
            await ctx.emit(outcome, subject=env.subject)

    async def send_invoice(ctx: Context[None], job: Job) -> dict[str, Any]:
        assert sender_job is not None, "started"
        return await sender_job(ctx, job)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.subscribe(INVOICE_CREATED.name, on_invoice_created)
    app.job(
        SEND_INVOICE,
        send_invoice,
        max_attempts=MAX_ATTEMPTS,
        retry_initial=settings.send_retry_initial_seconds,
        retry_max=settings.send_retry_max_seconds,
    )
    paper = PaperDefaults(
        postage=settings.print_post_postage,
        colour=settings.print_post_colour,
        duplex=settings.print_post_duplex,
    )
    app.routers.append(build_channels_api(lambda: app.pool, paper))
    app.routers.append(build_documents_api(lambda: app.pool, on_release=app.committed))
    return app
