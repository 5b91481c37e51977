"""A consumed batch is routed as each invoice would be on its own, with the networks asked
and the documents rendered for the whole batch at once (on the fakes)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest
from distribution_router.service import factoring
from distribution_router.service.routing import (
    LOOKUPS_AT_ONCE,
    distribute_invoice,
    distribute_many,
)
from distribution_router.testing import FakeSender, Registered, fake_partners
from distribution_router.testing.fakes import fake_repositories
from distribution_router.testing.invoices import GLN, company, consumer, created_event
from nordflow_schemas.events import (
    Channel,
    Flow,
    InvoiceCreated,
    InvoiceDeliveryFailed,
    InvoiceFactoringDecided,
)

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


def mixed_batch() -> list[InvoiceCreated]:
    """PEPPOL, e-mail, paper, a consumer, test mode, one not to be distributed, and one
    whose PEPPOL document breaks a fatal rule (no buyer reference: PEPPOL-EN16931-R003)."""
    broken = created_event(company(gln=True), buyer_reference=None)
    return [
        created_event(company(gln=True)),
        created_event(company(email="ap@kund.se")),
        created_event(company()),
        created_event(consumer()),
        created_event(company(gln=True), test_mode=True),
        created_event(company()).model_copy(update={"flow": Flow(distribute=False)}),
        broken,
    ]


async def test_a_batch_is_routed_as_each_invoice_would_be_on_its_own() -> None:
    events = mixed_batch()
    one_by_one, batched = fake_repositories(), fake_repositories()
    partners = fake_partners(lookup=Registered(GLN))

    alone = [await distribute_invoice(one_by_one, partners, e, NOW) for e in events]
    together = await distribute_many(batched, partners, events, NOW)

    assert batched.deliveries.rows == one_by_one.deliveries.rows  # type: ignore[attr-defined]
    assert batched.deliveries.scheduled == one_by_one.deliveries.scheduled  # type: ignore[attr-defined]
    assert together == alone
    failed = [o for o in together if o is not None]
    assert [type(o) for o in failed] == [InvoiceDeliveryFailed]
    assert failed[0].invoice_id == events[-1].invoice_id  # type: ignore[union-attr]
    statuses = [batched.deliveries.status(e.invoice_id) for e in events]  # type: ignore[attr-defined]
    assert statuses == [
        "scheduled",
        "scheduled",
        "scheduled",
        "scheduled",
        "test",
        "not_sent",
        "failed",
    ]


async def test_an_invoice_twice_in_a_batch_or_routed_before_is_routed_once() -> None:
    repos = fake_repositories()
    partners = fake_partners(lookup=Registered(GLN))
    first, second = created_event(company(gln=True)), created_event(company())
    await distribute_invoice(repos, partners, first, NOW)

    later = NOW + dt.timedelta(minutes=5)
    outcomes = await distribute_many(repos, partners, [first, second, second], later)

    assert outcomes == [None, None, None]
    rows = repos.deliveries.rows  # type: ignore[attr-defined]
    assert set(rows) == {first.invoice_id, second.invoice_id}
    assert rows[first.invoice_id].routed_at == NOW  # not routed again
    assert rows[second.invoice_id].routed_at == later


class Gate(Registered):
    """An SMP whose answers wait until ``expected`` questions are open at once: a batch
    asked one invoice at a time never gets past the first (the test's timeout fails it)."""

    def __init__(self, expected: int, *participants: tuple[str, str]) -> None:
        super().__init__(*participants)
        self.expected = expected
        self.open = 0
        self.most = 0
        self.all_open = asyncio.Event()

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        self.open += 1
        self.most = max(self.most, self.open)
        if self.open >= self.expected:
            self.all_open.set()
        await self.all_open.wait()
        self.open -= 1
        return await super().accepts(scheme, value, document_type)


async def test_the_networks_are_asked_for_the_whole_batch_at_once_within_the_bound() -> None:
    count = LOOKUPS_AT_ONCE + 4
    events = [created_event(company(gln=True)) for _ in range(count)]
    gate = Gate(LOOKUPS_AT_ONCE, GLN)
    repos = fake_repositories()

    outcomes = await asyncio.wait_for(
        distribute_many(repos, fake_partners(lookup=gate), events, NOW), timeout=30
    )

    assert outcomes == [None] * count
    assert gate.most == LOOKUPS_AT_ONCE  # never more at once than the bound
    routes = repos.deliveries.rows  # type: ignore[attr-defined]
    assert {routes[e.invoice_id].channel for e in events} == {Channel.PEPPOL}


class Down(Registered):
    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        raise ConnectionError("SMP unreachable")


async def test_a_failed_lookup_fails_the_batch_with_its_own_error_before_anything_is_written() -> (
    None
):
    repos = fake_repositories()
    events = [created_event(company()), created_event(company(gln=True))]

    with pytest.raises(ConnectionError, match="SMP unreachable"):
        await distribute_many(repos, fake_partners(lookup=Down()), events, NOW)

    assert repos.deliveries.rows == {}  # type: ignore[attr-defined]


async def test_a_batch_of_decisions_routes_the_invoices_that_waited_for_them() -> None:
    repos = fake_repositories()
    partners = fake_partners({c: FakeSender(c) for c in Channel}, Registered(GLN))
    waiting = [created_event(company(gln=True)), created_event(company())]
    not_factored = created_event(company()).model_copy(update={"flow": Flow(factor=False)})

    created = await factoring.invoices_created(repos, partners, [*waiting, not_factored], NOW)
    assert created == [None, None, None]
    assert not await repos.deliveries.exists(waiting[0].invoice_id)
    assert await repos.deliveries.exists(not_factored.invoice_id)

    decisions = [not_eligible(e) for e in waiting]
    outcomes = await factoring.factoring_decisions(repos, partners, [*decisions, decisions[0]], NOW)

    assert outcomes == [None, None, None]
    for event in waiting:
        assert repos.deliveries.status(event.invoice_id) == "scheduled"  # type: ignore[attr-defined]


def not_eligible(created: InvoiceCreated) -> InvoiceFactoringDecided:
    return InvoiceFactoringDecided(
        tenant_id=created.tenant_id,
        invoice_id=created.invoice_id,
        number=created.invoice.number,
        eligible=False,
        reason="tenant has no factoring agreement",
        decided_at=NOW,
    )


async def test_each_invoices_writes_run_in_its_own_events_scope() -> None:
    """The consumer continues each event's trace around that invoice's writes, so the send
    job scheduled there carries it: the scope of index i sees exactly invoice i recorded."""
    repos = fake_repositories()
    events = mixed_batch()
    rows = repos.deliveries.rows  # type: ignore[attr-defined]
    recorded_in: dict[int, set[str]] = {}

    @contextlib.contextmanager
    def scope(index: int) -> Iterator[None]:
        before = set(rows)
        yield
        recorded_in[index] = set(rows) - before

    await distribute_many(repos, fake_partners(lookup=Registered(GLN)), events, NOW, scope=scope)

    not_distributed = 5  # recorded as not sent before the batch's lookups, outside any scope
    assert recorded_in == {i: {e.invoice_id} for i, e in enumerate(events) if i != not_distributed}
