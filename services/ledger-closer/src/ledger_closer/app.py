"""create_app(): ledger-closer's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import (
    INVOICE_CREATED,
    INVOICE_DELIVERY_FAILED,
    INVOICE_DELIVERY_UNCERTAIN,
    INVOICE_DISTRIBUTED,
    INVOICE_TRANSFERRED,
    LEDGER_CLOSER,
    PAYMENT_RECEIVED,
)

from .config import Settings
from .deps import Deps, build_deps
from .domain import BOOK_DOCUMENT, CLOSE_INVOICE, INVOICE_ORDER, POST_ENTRY
from .entrypoints import consumers, jobs


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """ledger-closer: invoice.created / transferred / payment.received and distribution's
    reports → ERP writes → invoice.booked, ledger.entry.posted, invoice.closing_held."""
    settings = settings or Settings()
    app: ServiceApp[Deps] = ServiceApp(LEDGER_CLOSER, settings, "ledger_closer", deps=build_deps)
    app.subscribe(INVOICE_TRANSFERRED.name, consumers.on_invoice_transferred)
    app.subscribe(PAYMENT_RECEIVED.name, consumers.on_payment_received)
    app.subscribe(INVOICE_CREATED.name, consumers.on_invoice_created)
    app.subscribe(INVOICE_DISTRIBUTED.name, consumers.on_invoice_distributed)
    app.subscribe(INVOICE_DELIVERY_FAILED.name, consumers.on_invoice_delivery_failed)
    app.subscribe(INVOICE_DELIVERY_UNCERTAIN.name, consumers.on_invoice_delivery_uncertain)
    # Several jobs of a kind at once, of different tenants: each mostly waits for its ERP.
    # Writes through one connection wait for each other (`lock_writes`), in every replica.
    at_once = {"concurrency": settings.write_concurrency, "per_tenant": 1}
    app.job(POST_ENTRY, jobs.post_entry, retry_initial=1.0, retry_max=60.0, **at_once)
    # A closing waits for distribution to report the send: it retries for about two days.
    app.job(
        CLOSE_INVOICE,
        jobs.post_entry,
        retry_initial=5.0,
        retry_max=3600.0,
        max_attempts=60,
        **at_once,
    )
    app.job(BOOK_DOCUMENT, jobs.book_document, retry_initial=1.0, retry_max=60.0, **at_once)
    app.job(INVOICE_ORDER, jobs.invoice_order, retry_initial=1.0, retry_max=300.0)
    return app
