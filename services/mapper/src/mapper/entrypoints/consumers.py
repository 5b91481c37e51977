"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context, PermanentError
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import ErpDocumentFetched, InvoiceCreated, InvoiceUpdated

from .. import service
from ..deps import Deps


async def on_erp_document_fetched(ctx: Context[Deps], env: Envelope[ErpDocumentFetched]) -> None:
    """Map and validate → created, updated or rejected; a payment → payment.received.

    A payment document whose data cannot be read is dead-lettered (``PermanentError``).
    """
    repos = ctx.deps.repositories(ctx.conn)
    try:
        outgoing = await service.handle_fetched(repos, env.body)
    except service.UnreadablePayment as exc:
        raise PermanentError(str(exc)) from exc
    if isinstance(outgoing, InvoiceCreated | InvoiceUpdated):
        # A consumer's personal number leaves masked, sealed for the services that need it.
        sealed = ctx.deps.personal.seal_invoice(outgoing.invoice)
        outgoing = outgoing.model_copy(update={"invoice": sealed})
    if outgoing is not None:
        await ctx.emit(outgoing, subject=env.subject)
