"""Durable job handlers: the `send-invoice` job, delegating to `service.sending`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from nordflow_runtime.consumer import PermanentError
from nordflow_runtime.jobs import Job, JobRun

from ..deps import Deps
from ..service.ports import Repositories, SendStore
from ..service.sending import NoDeliveryError, send_invoice


async def on_send_invoice(run: JobRun[Deps], job: Job) -> dict[str, Any]:
    """Send a routed invoice exactly once, under the job's lease: no transaction is open
    across a partner call; the outcome and its events (distributed, failed, uncertain,
    suggested) are written in one short transaction."""
    deps = run.deps
    try:
        outcome = await send_invoice(
            send_store(run),
            deps.partners,
            tenant_id=job.tenant_id,
            invoice_id=job.payload["invoice_id"],
            clock=deps.clock,
        )
    except NoDeliveryError as exc:
        raise PermanentError(str(exc)) from exc
    return outcome.result


def send_store(run: JobRun[Deps]) -> SendStore:
    """The repositories on the pool for reads, and on a short transaction of the job's run
    (committed only while its lease holds) for each outcome."""

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[Repositories]:
        async with run.transaction() as ctx:
            yield run.deps.repositories(ctx.conn)

    return SendStore(reads=run.deps.repositories(run.pool), transaction=transaction)
