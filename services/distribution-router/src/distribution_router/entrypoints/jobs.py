"""Durable job handlers: the `send-invoice` job, delegating to `service.sending`."""

from __future__ import annotations

from typing import Any

from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job

from ..deps import Deps
from ..service.sending import NoDeliveryError, send_invoice


async def on_send_invoice(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """Send a routed invoice exactly once, inside the job's transaction (its row locked);
    emit what the send decided (distributed, failed, uncertain, suggested)."""
    deps = ctx.deps
    try:
        outcome = await send_invoice(
            deps.repositories(ctx.conn),
            deps.partners,
            tenant_id=job.tenant_id,
            invoice_id=job.payload["invoice_id"],
            clock=deps.clock,
        )
    except NoDeliveryError as exc:
        raise PermanentError(str(exc)) from exc
    for event in outcome.events:
        await ctx.emit(event, subject=outcome.subject)
    return outcome.result
