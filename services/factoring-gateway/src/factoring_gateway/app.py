"""create_app(): factoring-gateway's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import FACTORING_GATEWAY, INVOICE_CREATED, INVOICE_UPDATED

from .config import Settings
from .deps import Deps, build_deps
from .entrypoints import consumers, jobs
from .entrypoints.http import ROUTERS
from .service.ports import RUN_JOB, SETTLEMENT_JOB, UPLOAD_JOB, WINDOW_JOB


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """factoring-gateway: invoice.created → decision → window → file → factor → receipt."""
    settings = settings or Settings()
    app: ServiceApp[Deps] = ServiceApp(
        FACTORING_GATEWAY, settings, "factoring_gateway", deps=build_deps
    )
    app.subscribe_batch(INVOICE_CREATED.name, consumers.on_invoice_created)
    app.subscribe_batch(INVOICE_UPDATED.name, consumers.on_invoice_updated)
    app.job(WINDOW_JOB, jobs.on_window)
    app.job(RUN_JOB, jobs.on_run)
    app.job(
        UPLOAD_JOB,
        jobs.on_upload,
        max_attempts=50,
        retry_initial=settings.upload_retry_initial_seconds,
        retry_max=settings.upload_retry_max_seconds,
    )
    # Settlements are read for as long as the agreement lasts: a provider down for a while
    # delays the next look (backoff capped at the poll interval), it never ends the polling.
    app.job(
        SETTLEMENT_JOB,
        jobs.on_settlements,
        max_attempts=1_000_000,
        retry_max=settings.settlement_poll_seconds,
    )
    for router in ROUTERS:
        app.include_router(router)
    return app
