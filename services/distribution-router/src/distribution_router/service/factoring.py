"""Use case: an invoice whose flow includes factoring waits for factoring-gateway's decision
(`invoice.factoring_decided`) before it is routed, so that an assigned invoice reaches its
buyer with the factor's account and the notice of assignment on every channel.

The two events may arrive in either order (different topics): whichever comes second routes
the invoice. Nothing here reads factoring-gateway's tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from nordflow_schemas.events import EventBody, InvoiceCreated, InvoiceFactoringDecided

from ..domain.assignment import assigned
from .ports import Partners, Repositories
from .routing import Scope, distribute_many, no_scope


def _with_decision(created: InvoiceCreated, decision: InvoiceFactoringDecided) -> InvoiceCreated:
    return created.model_copy(update={"invoice": assigned(created.invoice, decision)})


async def invoice_created(
    repos: Repositories, partners: Partners, event: InvoiceCreated, now: dt.datetime
) -> EventBody | None:
    """Route now, or, when the flow includes factoring and no decision is known yet, wait."""
    return (await invoices_created(repos, partners, [event], now))[0]


async def invoices_created(
    repos: Repositories,
    partners: Partners,
    events: Sequence[InvoiceCreated],
    now: dt.datetime,
    *,
    scope: Scope = no_scope,
) -> list[EventBody | None]:
    """`invoice_created` for a consumed batch (routed together: `distribute_many`, each
    event's writes in ``scope`` of its index); the outcome of each event, in order."""
    ready: list[tuple[int, InvoiceCreated]] = []
    for index, event in enumerate(events):
        if event.flow.factor:
            decision = await repos.factoring.decision(event.invoice_id)
            if decision is None:
                await repos.factoring.park(event)
                continue
            ready.append((index, _with_decision(event, decision)))
        else:
            ready.append((index, event))
    return await _route(repos, partners, len(events), ready, now, scope)


async def factoring_decided(
    repos: Repositories, partners: Partners, decision: InvoiceFactoringDecided, now: dt.datetime
) -> EventBody | None:
    """Keep the decision; route the invoice that waited for it, if one did."""
    return (await factoring_decisions(repos, partners, [decision], now))[0]


async def factoring_decisions(
    repos: Repositories,
    partners: Partners,
    decisions: Sequence[InvoiceFactoringDecided],
    now: dt.datetime,
    *,
    scope: Scope = no_scope,
) -> list[EventBody | None]:
    """`factoring_decided` for a consumed batch (the invoices that waited routed together,
    each one's writes in ``scope`` of its decision's index); the outcome of each decision,
    in order."""
    ready: list[tuple[int, InvoiceCreated]] = []
    for index, decision in enumerate(decisions):
        if not await repos.factoring.record(decision):
            continue
        waiting = await repos.factoring.take_parked(decision.invoice_id)
        if waiting is not None:
            ready.append((index, _with_decision(waiting, decision)))
    return await _route(repos, partners, len(decisions), ready, now, scope)


async def _route(
    repos: Repositories,
    partners: Partners,
    count: int,
    ready: list[tuple[int, InvoiceCreated]],
    now: dt.datetime,
    scope: Scope,
) -> list[EventBody | None]:
    """Route the invoices ready for it; ``count`` outcomes, each at its event's index."""
    outcomes: list[EventBody | None] = [None] * count
    routed = await distribute_many(
        repos,
        partners,
        [event for _, event in ready],
        now,
        scope=lambda routed_index: scope(ready[routed_index][0]),
    )
    for (index, _), outcome in zip(ready, routed, strict=True):
        outcomes[index] = outcome
    return outcomes
