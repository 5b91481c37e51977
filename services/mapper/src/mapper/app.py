"""create_app(): mapper's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import ErpDocumentFetched
from nordflow_schemas.topics import ERP_DOCUMENT_FETCHED, MAPPER

from .config import Settings
from .service import handle_fetched


async def on_erp_document_fetched(ctx: Context[None], env: Envelope[ErpDocumentFetched]) -> None:
    """Decode → map and validate → created, updated or rejected; a payment → payment.received."""
    outgoing = await handle_fetched(ctx.conn, env.body)
    if outgoing is not None:
        await ctx.emit(outgoing, subject=env.subject)


def create_app(settings: Settings | None = None) -> ServiceApp[None]:
    """mapper: erp.document.fetched → invoice.created | updated | rejected, payment.received."""
    app: ServiceApp[None] = ServiceApp(MAPPER, settings or Settings(), "mapper")
    app.subscribe(ERP_DOCUMENT_FETCHED.name, on_erp_document_fetched)
    return app
