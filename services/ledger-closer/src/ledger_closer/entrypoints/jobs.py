"""Durable job handlers: decode the job, delegate to the use case, emit what it returns."""

from __future__ import annotations

from typing import Any

from nordflow_runtime.consumer import Context, PermanentError
from nordflow_runtime.jobs import Job

from .. import service
from ..deps import Deps
from ..domain import PlannedEntry, UnpostableError


async def post_entry(ctx: Context[Deps], job: Job) -> dict[str, Any]:
    """The ``post-entry`` job: one entry into the tenant's ERP, then ledger.entry.posted.

    Runs in the job's transaction (the intent row apart). An entry that can never be written
    (refused by the ERP, its authorization refused, nothing to book against) fails the job;
    any other error retries it with backoff.
    """
    try:
        posted = await service.post_entry(
            ctx.deps.repositories(ctx.conn),
            ctx.deps.writers,
            entry_key=job.key,
            tenant_id=job.tenant_id,
            entry=PlannedEntry.from_payload(job.payload),
            clock=ctx.deps.clock,
        )
    except UnpostableError as exc:
        raise PermanentError(str(exc)) from exc
    await ctx.emit(posted, subject=posted.source.document_number)
    return {"erp_reference": posted.erp_reference}
