"""Holds and suggestion decisions announced on their topics, on the fakes: each change once,
with the whole hold and a growing revision; a redelivered invoice or a refused change
announces nothing; a send carries its cost; a consumer's key is never in clear."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import cast

import pytest
from distribution_router.domain.holds import (
    ALLOWED_TYPES,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS_PER_INVOICE,
    HoldClosedError,
)
from distribution_router.service import channels, holds
from distribution_router.service.ports import Repositories
from distribution_router.service.routing import distribute_invoice
from distribution_router.service.sending import send_invoice
from distribution_router.testing import FakeSender, Registered, fake_partners, fake_store
from distribution_router.testing.fakes import FakeOutbox, fake_repositories
from distribution_router.testing.invoices import GLN, PERSONNUMMER, company, consumer, created_event
from nordflow_schemas.events import (
    Channel,
    ChannelSuggested,
    ChannelSuggestionDecided,
    DeliveryHoldUpdated,
    HoldChange,
    HoldReason,
    InvoiceDistributed,
    SuggestionDecision,
)

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
PDF = b"%PDF-1.7 terms"


def clock() -> dt.datetime:
    return NOW


def outbox(repos: Repositories) -> FakeOutbox:
    return cast(FakeOutbox, repos.outbox)


def holds_of(repos: Repositories) -> list[DeliveryHoldUpdated]:
    return [e for e in outbox(repos).events if isinstance(e, DeliveryHoldUpdated)]


async def held(customer_policy: bool = False) -> tuple[Repositories, str, str]:
    """A routed invoice held for two hours by the tenant's (or its customer's) policy:
    the repositories, the tenant and the invoice id."""
    repos = fake_repositories()
    repos.holds.clock = clock  # type: ignore[attr-defined]
    event = created_event(company(customer_number="17"))
    await holds.set_policy(
        repos.holds,
        tenant_id=event.tenant_id,
        customer_key="17" if customer_policy else None,
        enabled=True,
        duration=dt.timedelta(hours=2),
    )
    assert await distribute_invoice(repos, fake_partners(), event, NOW) is None
    return repos, event.tenant_id, event.invoice_id


async def test_a_held_invoice_is_announced_once_with_what_it_waits_for() -> None:
    repos, tenant, invoice = await held()
    routed = repos.deliveries.rows[invoice]  # type: ignore[attr-defined]
    again = created_event(company(customer_number="17"), tenant=tenant, number=routed.number)
    redelivered = again.model_copy(update={"invoice_id": invoice})
    await distribute_invoice(repos, fake_partners(), redelivered, NOW)  # routed before: nothing

    [placed] = holds_of(repos)
    assert (placed.tenant_id, placed.invoice_id, placed.change) == (
        tenant,
        invoice,
        HoldChange.PLACED,
    )
    assert placed.revision == 1
    assert placed.reason is HoldReason.TENANT_POLICY
    assert (placed.held_at, placed.held_until) == (NOW, NOW + dt.timedelta(hours=2))
    assert placed.number == routed.number
    assert outbox(repos).subjects == [placed.number]
    assert placed.needed is not None
    assert placed.needed.content_types == tuple(ALLOWED_TYPES)
    assert (placed.needed.max_files, placed.needed.max_file_bytes) == (
        MAX_ATTACHMENTS_PER_INVOICE,
        MAX_ATTACHMENT_BYTES,
    )
    assert (placed.attachments, placed.released_at) == ((), None)


async def test_a_customers_policy_is_the_reason() -> None:
    repos, _, _ = await held(customer_policy=True)
    [placed] = holds_of(repos)
    assert placed.reason is HoldReason.CUSTOMER_POLICY


async def test_an_invoice_not_held_announces_no_hold() -> None:
    repos = fake_repositories()
    await distribute_invoice(repos, fake_partners(), created_event(company()), NOW)
    assert outbox(repos).events == []


async def test_every_change_is_announced_with_the_whole_hold_and_the_next_revision() -> None:
    repos, tenant, invoice = await held()
    first = await holds.add_attachment(
        repos,
        tenant_id=tenant,
        invoice_id=invoice,
        filename="terms.pdf",
        content_type="application/PDF; name=terms.pdf",
        content=PDF,
    )
    await holds.add_attachment(
        repos,
        tenant_id=tenant,
        invoice_id=invoice,
        filename="hours.csv",
        content_type="text/csv",
        content=b"day;hours\n",
    )
    assert await holds.remove_attachment(
        repos, tenant_id=tenant, invoice_id=invoice, attachment_id=first.attachment_id
    )
    assert not await holds.remove_attachment(  # no such file: nothing changed
        repos, tenant_id=tenant, invoice_id=invoice, attachment_id=first.attachment_id
    )
    await holds.release_hold(
        repos, tenant_id=tenant, invoice_id=invoice, released_by="api token 'ekonomi'"
    )

    events = holds_of(repos)
    assert [(e.change, e.revision) for e in events] == [
        (HoldChange.PLACED, 1),
        (HoldChange.ATTACHMENT_ADDED, 2),
        (HoldChange.ATTACHMENT_ADDED, 3),
        (HoldChange.ATTACHMENT_REMOVED, 4),
        (HoldChange.RELEASED, 5),
    ]
    assert [[a.filename for a in e.attachments] for e in events] == [
        [],
        ["terms.pdf"],
        ["terms.pdf", "hours.csv"],
        ["hours.csv"],
        ["hours.csv"],
    ]
    added = events[1].attachment
    assert added is not None
    assert (added.filename, added.content_type, added.size) == (
        "terms.pdf",
        "application/pdf",
        len(PDF),
    )
    removed = events[3].attachment
    assert removed is not None
    assert removed.filename == "terms.pdf"
    released = events[-1]
    assert (released.released_at, released.released_by) == (NOW, "api token 'ekonomi'")
    assert released.needed is None  # it waits for nothing any more
    assert all(e.needed is not None for e in events[:-1])
    assert {e.invoice_id for e in events} == {invoice}


async def test_a_refused_change_announces_nothing() -> None:
    repos, tenant, invoice = await held()
    await holds.release_hold(repos, tenant_id=tenant, invoice_id=invoice, released_by="me")
    count = len(outbox(repos).events)
    with pytest.raises(HoldClosedError):
        await holds.release_hold(repos, tenant_id=tenant, invoice_id=invoice, released_by="me")
    with pytest.raises(HoldClosedError):
        await holds.add_attachment(
            repos,
            tenant_id=tenant,
            invoice_id=invoice,
            filename="late.pdf",
            content_type="application/pdf",
            content=PDF,
        )
    with pytest.raises(holds.HoldNotFoundError):
        await holds.release_hold(repos, tenant_id="t-other", invoice_id=invoice, released_by="x")
    assert len(outbox(repos).events) == count


async def test_a_send_carries_what_it_cost() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    partners = fake_partners(senders)
    event = created_event(company())  # not in PEPPOL, no e-mail: paper
    await distribute_invoice(repos, partners, event, NOW)
    outcome = await send_invoice(
        fake_store(repos),
        partners,
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        clock=clock,
    )
    [sent] = [e for e in outcome.events if isinstance(e, InvoiceDistributed)]
    assert (sent.channel, sent.cost, sent.cost_currency) == (Channel.PAPER, Decimal("9.50"), "SEK")


async def test_a_decided_suggestion_is_announced_once_beside_the_suggestion() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    partners = fake_partners(senders, Registered(GLN))
    tenant = created_event(company()).tenant_id
    await channels.set_override(repos.overrides, tenant, None, Channel.PAPER)
    event = created_event(company(gln=True, customer_number="42"), tenant=tenant)
    await distribute_invoice(repos, partners, event, NOW)
    outcome = await send_invoice(
        fake_store(repos), partners, tenant_id=tenant, invoice_id=event.invoice_id, clock=clock
    )
    [suggested] = [e for e in outcome.events if isinstance(e, ChannelSuggested)]

    await channels.decide_suggestion(
        repos, tenant, suggested.suggestion_id, "accepted", decided_by="api token 'ekonomi'"
    )
    with pytest.raises(channels.SuggestionDecidedError):
        await channels.decide_suggestion(repos, tenant, suggested.suggestion_id, "dismissed")

    [decided] = outbox(repos).of(ChannelSuggestionDecided)
    assert isinstance(decided, ChannelSuggestionDecided)
    assert decided.invoice_id == suggested.invoice_id  # the same key: one partition, in order
    assert (decided.suggestion_id, decided.decision, decided.decided_by) == (
        suggested.suggestion_id,
        SuggestionDecision.ACCEPTED,
        "api token 'ekonomi'",
    )
    assert (decided.current_channel, decided.suggested_channel) == (Channel.PAPER, Channel.PEPPOL)


async def test_a_consumers_personal_number_is_masked_in_a_suggestion() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    partners = fake_partners(senders)
    event = created_event(consumer())  # no customer number: keyed by the personal number
    await distribute_invoice(repos, partners, event, NOW)  # not registered yet: paper
    digits = PERSONNUMMER.replace("-", "")
    senders[Channel.B2C_BANK].consumers.add(digits)  # registered at the bank since
    outcome = await send_invoice(
        fake_store(repos),
        partners,
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        clock=clock,
    )
    [suggested] = [e for e in outcome.events if isinstance(e, ChannelSuggested)]
    assert suggested.suggested_channel is Channel.B2C_BANK
    assert suggested.customer_key == f"******{digits[-4:]}"
    assert PERSONNUMMER not in suggested.model_dump_json()
    assert digits not in suggested.model_dump_json()
