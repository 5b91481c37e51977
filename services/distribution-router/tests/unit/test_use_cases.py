"""The use cases on the fake repositories: routing with a hold, exactly-once sending,
holds, suggestions and statistics in the tenant's time zone."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Awaitable
from decimal import Decimal

import pytest
from distribution_router.domain.holds import HoldClosedError
from distribution_router.domain.sending import Receipt, TransientSendError
from distribution_router.service import channels, holds, statistics
from distribution_router.service.ports import Partners, Repositories
from distribution_router.service.routing import distribute_invoice
from distribution_router.service.sending import DeliveryFinishedError, SendOutcome, send_invoice
from distribution_router.testing import FakeSender, Registered, fake_partners, fake_store
from distribution_router.testing.fakes import fake_repositories
from distribution_router.testing.invoices import GLN, company, created_event
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import Channel, ChannelSuggested, InvoiceCreated, InvoiceDistributed
from nordflow_schemas.testing import tenant_profile

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


def clock() -> dt.datetime:
    return NOW


def send(repos: Repositories, partners: Partners, event: InvoiceCreated) -> Awaitable[SendOutcome]:
    """One run of the send job for the routed invoice of ``event``."""
    return send_invoice(
        fake_store(repos),
        partners,
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        clock=clock,
    )


async def routed_and_sent(
    repos: Repositories, senders: dict[Channel, FakeSender], lookup: Registered, **buyer: object
) -> tuple[str, str]:
    event = created_event(company(**buyer))  # type: ignore[arg-type]
    partners = fake_partners(senders, lookup)
    assert await distribute_invoice(repos, partners, event, NOW) is None
    outcome = await send(repos, partners, event)
    return event.invoice_id, str(outcome.result["status"])


async def test_a_peppol_recipient_is_sent_once_and_announced() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    event = created_event(company(gln=True))
    partners = fake_partners(senders, Registered(GLN))
    await distribute_invoice(repos, partners, event, NOW)

    first = await send(repos, partners, event)
    again = await send(repos, partners, event)

    [distributed] = first.events
    assert isinstance(distributed, InvoiceDistributed)
    assert (distributed.channel, distributed.archive_sequence) == (Channel.PEPPOL, 1)
    assert first.subject == event.invoice.number
    assert again.result == {"status": "sent"}
    assert again.events == []
    assert list(senders[Channel.PEPPOL].received) == [f"{event.invoice_id}:peppol:1"]


async def test_an_answer_lost_after_the_send_is_looked_up_not_sent_again() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    senders[Channel.PAPER].script = [TransientSendError("timeout", maybe_delivered=True)]
    event = created_event(company())
    partners = fake_partners(senders)
    await distribute_invoice(repos, partners, event, NOW)
    with pytest.raises(TransientSendError):
        await send(repos, partners, event)
    outcome = await send(repos, partners, event)
    assert outcome.result["status"] == "sent"
    assert senders[Channel.PAPER].calls == 1
    assert repos.attempts.states(event.invoice_id) == [("paper", "sent")]  # type: ignore[attr-defined]


class SlowLookup(FakeSender):
    """A partner whose look-ups answer only once two runs are asking."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.both_asking = asyncio.Barrier(2)

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        await self.both_asking.wait()
        return await super().lookup(idempotency_key)


async def test_two_runs_settling_one_send_record_and_announce_it_once() -> None:
    """A run whose lease ran out while it asked the partner, and the run that took the job
    over: both find the send at the partner; the second outcome is refused."""
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    senders[Channel.PAPER] = SlowLookup(Channel.PAPER)
    senders[Channel.PAPER].script = [TransientSendError("timeout", maybe_delivered=True)]
    event = created_event(company())
    partners = fake_partners(senders)
    await distribute_invoice(repos, partners, event, NOW)
    run = {
        "tenant_id": event.tenant_id,
        "invoice_id": event.invoice_id,
        "clock": clock,
    }
    with pytest.raises(TransientSendError):
        await send_invoice(fake_store(repos), partners, **run)  # type: ignore[arg-type]

    both = await asyncio.gather(
        send_invoice(fake_store(repos), partners, **run),  # type: ignore[arg-type]
        send_invoice(fake_store(repos), partners, **run),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    [recorded] = [r for r in both if isinstance(r, SendOutcome)]
    assert recorded.result["status"] == "sent"
    assert [type(r) for r in both if not isinstance(r, SendOutcome)] == [DeliveryFinishedError]
    assert senders[Channel.PAPER].calls == 1
    assert len(repos.outbox.of(InvoiceDistributed)) == 1  # type: ignore[attr-defined]


async def test_an_email_of_unknown_outcome_is_uncertain_and_never_repeated() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c, can_lookup=c is not Channel.EMAIL) for c in Channel}
    senders[Channel.EMAIL].script = [TransientSendError("cut off", maybe_delivered=True)]
    invoice_id, status = await routed_and_sent(
        repos, senders, Registered(), email="ap@kund.example"
    )
    assert status == "uncertain"
    assert senders[Channel.EMAIL].calls == 1
    assert repos.deliveries.status(invoice_id) == "uncertain"  # type: ignore[attr-defined]


async def test_a_paper_customer_in_peppol_is_suggested_once() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    tenant = created_event(company()).tenant_id
    await channels.set_override(repos.overrides, tenant, None, Channel.PAPER)
    partners = fake_partners(senders, Registered(GLN))
    suggested = []
    for _ in range(2):
        event = created_event(company(gln=True, customer_number="42"), tenant=tenant)
        await distribute_invoice(repos, partners, event, NOW)
        outcome = await send_invoice(
            fake_store(repos), partners, tenant_id=tenant, invoice_id=event.invoice_id, clock=clock
        )
        suggested += [e for e in outcome.events if isinstance(e, ChannelSuggested)]
    assert [(s.current_channel, s.suggested_channel) for s in suggested] == [
        (Channel.PAPER, Channel.PEPPOL)
    ]
    [open_one] = await channels.suggestions(repos.suggestions, tenant, "open")
    accepted = await channels.decide_suggestion(repos, tenant, open_one.suggestion_id, "accepted")
    assert accepted.state == "accepted"
    assert await repos.overrides.for_customer(tenant, "42") is Channel.PEPPOL


async def test_a_suggestion_that_cannot_be_recorded_never_undoes_the_send() -> None:
    repos = fake_repositories()

    async def broken(*_: object) -> None:
        raise ConnectionResetError("the suggestions table is away")

    repos.suggestions.record_once = broken  # type: ignore[method-assign]
    senders = {c: FakeSender(c) for c in Channel}
    event = created_event(company(gln=True))
    await channels.set_override(repos.overrides, event.tenant_id, None, Channel.PAPER)
    partners = fake_partners(senders, Registered(GLN))
    await distribute_invoice(repos, partners, event, NOW)

    outcome = await send(repos, partners, event)

    assert outcome.result["status"] == "sent"
    assert [type(e) for e in outcome.events] == [InvoiceDistributed]
    assert repos.deliveries.status(event.invoice_id) == "sent"  # type: ignore[attr-defined]


async def test_a_held_invoice_is_scheduled_when_its_hold_ends_and_takes_files_until_then() -> None:
    repos = fake_repositories()
    repos.holds.clock = clock  # type: ignore[attr-defined]
    event = created_event(company(customer_number="17"))
    await holds.set_policy(
        repos.holds,
        tenant_id=event.tenant_id,
        customer_key=None,
        enabled=True,
        duration=dt.timedelta(hours=2),
    )
    await distribute_invoice(repos, fake_partners(), event, NOW)
    assert repos.deliveries.scheduled[event.invoice_id] == NOW + dt.timedelta(hours=2)  # type: ignore[attr-defined]
    await holds.release_hold(
        repos, tenant_id=event.tenant_id, invoice_id=event.invoice_id, released_by="me"
    )
    with pytest.raises(HoldClosedError, match="released"):
        await holds.add_attachment(
            repos,
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            filename="a.csv",
            content_type="text/csv",
            content=b"a;b\n",
        )


async def sent_at(repos: Repositories, tenant: str, moment: dt.datetime) -> None:
    """A delivery of the tenant sent at ``moment``."""
    senders = {c: FakeSender(c) for c in Channel}
    event = created_event(company(), tenant=tenant)
    partners = fake_partners(senders)
    await distribute_invoice(repos, partners, event, moment)
    await send_invoice(
        fake_store(repos),
        partners,
        tenant_id=tenant,
        invoice_id=event.invoice_id,
        clock=lambda: moment,
    )


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Oslo", dt.date(2025, 3, 5)),  # 00:30 in Oslo
        ("Atlantic/Reykjavik", dt.date(2025, 3, 4)),  # UTC
        ("America/New_York", dt.date(2025, 3, 4)),  # 18:30 the day before
    ],
)
async def test_statistics_days_are_the_tenants_profiles(zone: str, day: dt.date) -> None:
    tenant = created_event(company()).tenant_id
    profiles = FakeTenantProfiles({tenant: tenant_profile("NO", time_zone=zone)})
    repos = fake_repositories(profiles)
    await sent_at(repos, tenant, dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC))

    found = await statistics.statistics(
        repos, tenant, dt.date(2025, 3, 3), dt.date(2025, 3, 6), "day"
    )

    assert found.time_zone == zone
    assert {p.period: p.sent for p in found.periods if p.sent} == {day: 1}
    assert found.total.cost == Decimal("9.50")  # paper at the default unit price


async def test_without_a_profile_the_sellers_country_gives_the_zone() -> None:
    repos = fake_repositories()
    tenant = created_event(company()).tenant_id
    await sent_at(repos, tenant, dt.datetime(2025, 3, 4, 23, 30, tzinfo=dt.UTC))
    found = await statistics.statistics(
        repos, tenant, dt.date(2025, 3, 1), dt.date(2025, 3, 31), "month"
    )
    assert found.time_zone == "Europe/Stockholm"  # a Swedish seller
    assert [(p.period, p.sent) for p in found.periods] == [(dt.date(2025, 3, 1), 1)]


class CountingValidator:
    """The official rules, counting how often they run."""

    def __init__(self) -> None:
        from nordflow_documents.validation import shared_validator

        self.inner = shared_validator()
        self.calls = 0

    def validate(self, document: bytes) -> object:
        self.calls += 1
        return self.inner.validate(document)


async def test_a_document_validated_at_routing_is_not_validated_again_when_sent() -> None:
    repos = fake_repositories()
    senders = {c: FakeSender(c) for c in Channel}
    validator = CountingValidator()
    partners = dataclasses.replace(
        fake_partners(senders, Registered(GLN)),
        validator=validator,  # type: ignore[arg-type]
    )
    event = created_event(company(gln=True))
    await distribute_invoice(repos, partners, event, NOW)
    assert validator.calls == 1
    outcome = await send(repos, partners, event)
    assert outcome.result["status"] == "sent"
    assert validator.calls == 1  # the same bytes: the routing's verdict stands
    assert list(senders[Channel.PEPPOL].received) == [f"{event.invoice_id}:peppol:1"]
