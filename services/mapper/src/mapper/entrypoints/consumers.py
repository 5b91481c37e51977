"""Consumer handlers: decode nothing more than the envelope, delegate to the use cases."""

from __future__ import annotations

from nordflow_runtime.consumer import Context, PermanentError, UnavailableError
from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import (
    ErpDocumentChunked,
    ErpDocumentFetched,
    InvoiceCreated,
    InvoiceUpdated,
)

from .. import service
from ..deps import Deps


async def on_erp_document_fetched(
    ctx: Context[Deps], envs: list[Envelope[ErpDocumentFetched]]
) -> None:
    """Map and validate → created, updated or rejected; a payment → payment.received — a
    consumed batch's documents at once.

    A document whose content came by reference is put together from mapper's own chunks
    first: while one is missing the record waits (``UnavailableError``: retried without
    counting); chunks that do not make the content referred to are dead-lettered. A payment
    document whose data cannot be read is dead-lettered too (``PermanentError``: the
    consumer then applies the batch record by record, so only that document is).
    """
    repos = ctx.deps.repositories(ctx.conn)
    try:
        events = await service.resolve_payloads(repos.chunks, [env.body for env in envs])
        outgoing = await service.handle_fetched_batch(repos, events)
    except service.PayloadPendingError as exc:
        raise UnavailableError(str(exc)) from exc
    except (service.UnreadablePayment, service.PayloadMismatchError) as exc:
        raise PermanentError(str(exc)) from exc
    for env, event in zip(envs, outgoing, strict=True):
        if isinstance(event, InvoiceCreated | InvoiceUpdated):
            # A consumer's personal number leaves masked, sealed for the services that need it.
            event = event.model_copy(  # noqa: PLW2901 - the sealed event replaces it
                update={"invoice": ctx.deps.personal.seal_invoice(event.invoice)}
            )
        if event is not None:
            await ctx.emit(event, subject=env.subject, cause=env)


async def on_erp_document_chunked(
    ctx: Context[Deps], envs: list[Envelope[ErpDocumentChunked]]
) -> None:
    """Keep the chunks of documents' contents that came by reference (a consumer group of
    its own, so a fetched document waiting for its chunks never holds them up). A chunk
    whose data is no base64 is dead-lettered."""
    repos = ctx.deps.repositories(ctx.conn)
    try:
        await service.store_chunks(repos.chunks, [env.body for env in envs])
    except service.PayloadMismatchError as exc:
        raise PermanentError(str(exc)) from exc
