"""create_app(): ledger-closer's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import INVOICE_TRANSFERRED, LEDGER_CLOSER, PAYMENT_RECEIVED

from .config import Settings
from .deps import Deps, build_deps
from .domain import POST_ENTRY
from .entrypoints import consumers, jobs


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """ledger-closer: invoice.transferred / payment.received → ERP write → ledger.entry.posted."""
    app: ServiceApp[Deps] = ServiceApp(
        LEDGER_CLOSER, settings or Settings(), "ledger_closer", deps=build_deps
    )
    app.subscribe(INVOICE_TRANSFERRED.name, consumers.on_invoice_transferred)
    app.subscribe(PAYMENT_RECEIVED.name, consumers.on_payment_received)
    app.job(POST_ENTRY, jobs.post_entry, retry_initial=1.0, retry_max=60.0)
    return app
