"""distribution-router's operator actions on the real PostgreSQL: ``release_hold``,
``accept_suggestion`` and ``dismiss_suggestion`` commands (as the control panel sends them on
operator.action_requested) do what the API does, once however often the command arrives, for
the command's tenant only, and each ends with one operator.action_completed."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from distribution_router.adapters.repositories import PgSuggestionRepository, pg_repositories
from distribution_router.deps import Deps
from distribution_router.domain.deliveries import NewSuggestion
from distribution_router.service import holds
from distribution_router.testing import FakeSender, start_harness
from distribution_router.testing.invoices import company, created_event
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_schemas.envelope import Envelope, envelope
from nordflow_schemas.events import (
    ActionOutcome,
    Channel,
    ChannelSuggestionDecided,
    DeliveryHoldUpdated,
    Flow,
    HoldChange,
    InvoiceCreated,
    InvoiceDistributed,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
    SuggestionDecision,
)
from nordflow_schemas.topics import DISTRIBUTION_ROUTER

pytestmark = pytest.mark.integration


@pytest.fixture
async def paper_harness(database_url: str) -> Any:
    """The service with a paper sender (every buyer here is reached on paper)."""
    h = await start_harness(database_url, senders={Channel.PAPER: FakeSender(Channel.PAPER)})
    yield h
    await h.close()


def command(tenant: str, action: OperatorAction, target: str) -> Envelope[OperatorActionRequested]:
    return envelope(
        OperatorActionRequested(
            tenant_id=tenant,
            action_id=uuid.uuid4().hex,
            service=DISTRIBUTION_ROUTER,
            action=action,
            target_id=target,
            requested_by=f"{tenant}:ekonomi",
            requested_at=dt.datetime.now(dt.UTC),
        ),
        source="/control-panel",
    )


def outcome(out: Emitted) -> tuple[ActionOutcome, str]:
    [done] = out.of(OperatorActionCompleted)
    assert isinstance(done, OperatorActionCompleted)
    return done.outcome, done.message


async def held_invoice(h: ServiceHarness[Deps]) -> InvoiceCreated:
    """An invoice its tenant holds for two hours before it is sent."""
    event = created_event(company(customer_number="17")).model_copy(
        update={"flow": Flow(factor=False)}
    )
    async with h.pool.acquire() as conn, conn.transaction():
        await holds.set_policy(
            pg_repositories(conn).holds,
            tenant_id=event.tenant_id,
            customer_key=None,
            enabled=True,
            duration=dt.timedelta(hours=2),
        )
    await h.publish(event)
    return event


async def test_release_hold_sends_the_tenants_held_invoice_once(
    paper_harness: ServiceHarness[Deps],
) -> None:
    h = paper_harness
    event = await held_invoice(h)
    tenant, invoice = event.tenant_id, event.invoice_id
    assert (await h.run_jobs()).of(InvoiceDistributed) == []  # held for two hours

    stranger = await h.deliver(
        command(f"t-{uuid.uuid4().hex[:12]}", OperatorAction.RELEASE_HOLD, invoice)
    )
    assert outcome(stranger)[0] is ActionOutcome.NOT_FOUND  # another tenant's: none at all
    assert stranger.of(DeliveryHoldUpdated) == []

    release = command(tenant, OperatorAction.RELEASE_HOLD, invoice)
    out = await h.deliver(release)
    assert outcome(out)[0] is ActionOutcome.DONE
    [released] = out.of(DeliveryHoldUpdated)
    assert isinstance(released, DeliveryHoldUpdated)
    assert (released.change, released.released_by) == (HoldChange.RELEASED, f"{tenant}:ekonomi")
    assert (await h.deliver(release)).events == []  # redelivered: the inbox drops it

    sent = (await h.run_jobs()).of(InvoiceDistributed)
    assert [(d.invoice_id, d.cost) for d in sent] == [(invoice, Decimal("9.50"))]
    again = await h.deliver(command(tenant, OperatorAction.RELEASE_HOLD, invoice))
    assert outcome(again)[0] is ActionOutcome.REFUSED  # it left its hold already
    unknown = await h.deliver(command(tenant, OperatorAction.RELEASE_HOLD, "inv_none"))
    assert outcome(unknown)[0] is ActionOutcome.NOT_FOUND


async def test_accept_and_dismiss_decide_the_tenants_open_suggestion_once(
    paper_harness: ServiceHarness[Deps],
) -> None:
    h = paper_harness
    tenant = f"t-{uuid.uuid4().hex[:12]}"

    async def suggestion(customer: str) -> int:
        async with h.pool.acquire() as conn:
            found = await PgSuggestionRepository(conn).record_once(
                NewSuggestion(
                    tenant_id=tenant,
                    customer_key=customer,
                    invoice_id=f"inv_{uuid.uuid4().hex}",
                    current=Channel.PAPER,
                    suggested=Channel.PEPPOL,
                    recipient="0088:7300010000001",
                    now=dt.datetime.now(dt.UTC),
                    snooze=dt.timedelta(days=90),
                )
            )
        assert found is not None
        return found

    to_accept, to_dismiss = await suggestion("42"), await suggestion("43")
    theirs = await h.deliver(
        command(f"t-{uuid.uuid4().hex[:12]}", OperatorAction.ACCEPT_SUGGESTION, str(to_accept)),
    )
    assert outcome(theirs)[0] is ActionOutcome.NOT_FOUND

    accepted = await h.deliver(command(tenant, OperatorAction.ACCEPT_SUGGESTION, str(to_accept)))
    assert outcome(accepted)[0] is ActionOutcome.DONE
    dismissed = await h.deliver(command(tenant, OperatorAction.DISMISS_SUGGESTION, str(to_dismiss)))
    assert outcome(dismissed)[0] is ActionOutcome.DONE
    decided = [*accepted.of(ChannelSuggestionDecided), *dismissed.of(ChannelSuggestionDecided)]
    assert [(d.suggestion_id, d.decision, d.decided_by) for d in decided] == [  # type: ignore[attr-defined]
        (to_accept, SuggestionDecision.ACCEPTED, f"{tenant}:ekonomi"),
        (to_dismiss, SuggestionDecision.DISMISSED, f"{tenant}:ekonomi"),
    ]
    # The accepted channel is the customer's override now; the dismissed one's is not.
    overrides = await h.pool.fetch(
        "SELECT customer_key, channel FROM channel_overrides WHERE tenant_id = $1", tenant
    )
    assert [(r["customer_key"], r["channel"]) for r in overrides] == [("42", "peppol")]

    twice = await h.deliver(command(tenant, OperatorAction.DISMISS_SUGGESTION, str(to_accept)))
    assert outcome(twice) == (
        ActionOutcome.REFUSED,
        f"suggestion {to_accept}: the suggestion is accepted",
    )
    bad = await h.deliver(command(tenant, OperatorAction.ACCEPT_SUGGESTION, "x1"))
    assert outcome(bad)[0] is ActionOutcome.REFUSED
