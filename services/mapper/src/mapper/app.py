"""create_app(): mapper's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import ERP_DOCUMENT_CHUNKED, ERP_DOCUMENT_FETCHED, MAPPER

from .config import Settings
from .deps import Deps, build_deps
from .entrypoints import consumers, loops


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """mapper: erp.document.fetched → invoice.created | updated | rejected, payment.received;
    erp.document.chunked (its own consumer group) → the contents that came by reference."""
    app: ServiceApp[Deps] = ServiceApp(MAPPER, settings or Settings(), "mapper", deps=build_deps)
    app.subscribe_batch(ERP_DOCUMENT_FETCHED.name, consumers.on_erp_document_fetched)
    app.subscribe_batch(ERP_DOCUMENT_CHUNKED.name, consumers.on_erp_document_chunked)
    app.loop(loops.purge_payloads)
    return app
