"""Durable job handlers: the window timer, on-demand runs, uploads and settlement reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

from nordflow_runtime import telemetry
from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job
from nordflow_schemas.events import EventBody

from ..deps import Deps
from ..domain.batches import Trigger
from ..domain.transfer import TransferConfigurationError
from ..service import settlements, transfers, uploads


async def on_window(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """The agreement's window of one business day: batches, their uploads, the next timer."""
    deps = ctx.deps
    outcome = await transfers.run_window(
        deps.repositories(ctx.conn),
        deps.formats,
        job.payload["agreement_id"],
        dt.date.fromisoformat(job.payload["date"]),
        deps.clock(),
    )
    return outcome.result()


async def on_run(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """An on-demand run (``transfers run``, ``POST /api/v1/transfers/runs``) or a
    resubmission of a refused batch."""
    deps = ctx.deps
    repos = deps.repositories(ctx.conn)
    if batch_id := job.payload.get("resubmit"):
        try:
            outcome = await transfers.resubmit(
                repos, deps.formats, job.tenant_id, batch_id, deps.clock()
            )
        except (transfers.NoSuchBatchError, transfers.NotResubmittableError) as exc:
            raise PermanentError(str(exc)) from exc
    else:
        outcome = await transfers.run_transfers(
            repos,
            deps.formats,
            job.payload["agreement_id"],
            deps.clock(),
            trigger=Trigger.ON_DEMAND,
        )
    return outcome.result()


async def on_upload(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """Hand a batch over exactly once; emit its transfers (or failures) with the receipt."""
    deps = ctx.deps
    try:
        outcome = await uploads.upload_batch(
            deps.repositories(ctx.conn),
            deps.clients,
            deps.sealer,
            job.payload["batch_id"],
            deps.clock,
            receipt_timeout=deps.receipt_timeout,
        )
    except (uploads.NoBatchError, TransferConfigurationError) as exc:
        raise PermanentError(str(exc)) from exc
    for event, subject, trace in outcome.events:
        await _emit_in(ctx, event, subject, trace)
    return outcome.result


async def _emit_in(
    ctx: Context[Deps], event: EventBody, subject: str, trace: tuple[str | None, str | None]
) -> None:
    """Emit ``event`` in the trace of its invoice's creation (a batch holds many invoices:
    each invoice's journey stays one trace), when that trace is known."""
    if trace[0] is None:
        await ctx.emit(event, subject=subject)
        return
    with telemetry.tracer().start_as_current_span(
        f"{type(event).__name__} emit", context=telemetry.extract(*trace)
    ):
        await ctx.emit(event, subject=subject)


async def on_settlements(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """Read the provider's new settlement files; emit payment.received for matched lines."""
    deps = ctx.deps
    try:
        events = await settlements.fetch_settlements(
            deps.repositories(ctx.conn),
            deps.clients,
            deps.sealer,
            job.payload["agreement_id"],
            deps.clock(),
            interval=None if job.payload.get("once") else deps.settlement_interval,
        )
    except TransferConfigurationError as exc:
        raise PermanentError(str(exc)) from exc
    for event, trace in events:
        await _emit_in(ctx, event, event.payment_id, trace)
    return {"payments": len(events)}
