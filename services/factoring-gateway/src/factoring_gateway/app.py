"""create_app(): factoring-gateway's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import FACTORING_GATEWAY, INVOICE_CREATED

from .config import Settings
from .deps import Deps, build_deps
from .entrypoints import consumers


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """factoring-gateway: invoice.created → invoice.transferred."""
    app: ServiceApp[Deps] = ServiceApp(
        FACTORING_GATEWAY, settings or Settings(), "factoring_gateway", deps=build_deps
    )
    app.subscribe(INVOICE_CREATED.name, consumers.on_invoice_created)
    return app
