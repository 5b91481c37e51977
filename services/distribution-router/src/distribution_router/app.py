"""create_app(): distribution-router's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.events import OperatorAction
from nordflow_schemas.topics import DISTRIBUTION_ROUTER, INVOICE_CREATED, INVOICE_FACTORING_DECIDED

from .config import Settings
from .deps import Deps, build_deps
from .domain.channels import SEND_INVOICE
from .domain.sending import MAX_ATTEMPTS
from .entrypoints import actions, consumers, jobs
from .entrypoints.http import ROUTERS, holds


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """distribution-router: invoice.created → send-invoice job → invoice.distributed | …"""
    settings = settings or Settings()
    app: ServiceApp[Deps] = ServiceApp(
        DISTRIBUTION_ROUTER, settings, "distribution_router", deps=build_deps
    )
    app.subscribe_batch(INVOICE_CREATED.name, consumers.on_invoice_created)
    app.subscribe_batch(INVOICE_FACTORING_DECIDED.name, consumers.on_invoice_factoring_decided)
    app.job(
        SEND_INVOICE,
        jobs.on_send_invoice,
        max_attempts=MAX_ATTEMPTS,
        retry_initial=settings.send_retry_initial_seconds,
        retry_max=settings.send_retry_max_seconds,
        concurrency=settings.send_concurrency,
        lease_seconds=settings.send_lease_seconds,
        per_tenant=settings.send_per_tenant,
    )
    app.operator_action(OperatorAction.ACCEPT_SUGGESTION, actions.accept_suggestion)
    app.operator_action(OperatorAction.DISMISS_SUGGESTION, actions.dismiss_suggestion)
    app.operator_action(OperatorAction.RELEASE_HOLD, actions.release_hold)
    for router in ROUTERS:
        app.include_router(router)
    # Attachments to held invoices are files of up to 10 MiB: their own body limit.
    app.body_limit("/api/v1/holds/", holds.ATTACHMENT_BODY_LIMIT)
    return app
