"""Use case: an invoice whose flow includes factoring waits for factoring-gateway's decision
(`invoice.factoring_decided`) before it is routed, so that an assigned invoice reaches its
buyer with the factor's account and the notice of assignment on every channel.

The two events may arrive in either order (different topics): whichever comes second routes
the invoice. Nothing here reads factoring-gateway's tables.
"""

from __future__ import annotations

import datetime as dt

from nordflow_schemas.events import EventBody, InvoiceCreated, InvoiceFactoringDecided

from ..domain.assignment import assigned
from .ports import Partners, Repositories
from .routing import distribute_invoice


def _with_decision(created: InvoiceCreated, decision: InvoiceFactoringDecided) -> InvoiceCreated:
    return created.model_copy(update={"invoice": assigned(created.invoice, decision)})


async def invoice_created(
    repos: Repositories, partners: Partners, event: InvoiceCreated, now: dt.datetime
) -> EventBody | None:
    """Route now, or, when the flow includes factoring and no decision is known yet, wait."""
    if event.flow.factor:
        decision = await repos.factoring.decision(event.invoice_id)
        if decision is None:
            await repos.factoring.park(event)
            return None
        event = _with_decision(event, decision)
    return await distribute_invoice(repos, partners, event, now)


async def factoring_decided(
    repos: Repositories, partners: Partners, decision: InvoiceFactoringDecided, now: dt.datetime
) -> EventBody | None:
    """Keep the decision; route the invoice that waited for it, if one did."""
    if not await repos.factoring.record(decision):
        return None
    waiting = await repos.factoring.take_parked(decision.invoice_id)
    if waiting is None:
        return None
    return await distribute_invoice(repos, partners, _with_decision(waiting, decision), now)
