"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context, PermanentError
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import ErpDocumentFetched, InvoiceCreated, InvoiceUpdated

from .. import service
from ..deps import Deps


async def on_erp_document_fetched(
    ctx: Context[Deps], envs: list[Envelope[ErpDocumentFetched]]
) -> None:
    """Map and validate → created, updated or rejected; a payment → payment.received — a
    consumed batch's documents at once.

    A payment document whose data cannot be read is dead-lettered (``PermanentError``: the
    consumer then applies the batch record by record, so only that document is).
    """
    repos = ctx.deps.repositories(ctx.conn)
    try:
        outgoing = await service.handle_fetched_batch(repos, [env.body for env in envs])
    except service.UnreadablePayment as exc:
        raise PermanentError(str(exc)) from exc
    for env, event in zip(envs, outgoing, strict=True):
        if isinstance(event, InvoiceCreated | InvoiceUpdated):
            # A consumer's personal number leaves masked, sealed for the services that need it.
            event = event.model_copy(  # noqa: PLW2901 - the sealed event replaces it
                update={"invoice": ctx.deps.personal.seal_invoice(event.invoice)}
            )
        if event is not None:
            await ctx.emit(event, subject=env.subject, cause=env)
