"""A consumed batch decided at once gives what its events give one by one: the same
announcements, the same rows, the same due-date changes, whatever the mix (duplicates,
credit notes beside their originals, later versions of invoices decided in the same batch);
and it reads and writes with a few calls per batch, not per event."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from factoring_gateway.domain.batches import InvoiceState
from factoring_gateway.domain.formats import default_formats
from factoring_gateway.service import decisions
from factoring_gateway.service.ports import Repositories
from factoring_gateway.testing import agreement, fake_repositories, sample_invoice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import (
    Flow,
    InvoiceCreated,
    InvoiceFactoringDecided,
    InvoiceUpdated,
)
from nordflow_schemas.invoice import DocumentType, Invoice, InvoiceReference
from nordflow_schemas.testing import tenant_profile

# 15:00 UTC: the 15:30 window has passed in Oslo (tomorrow's judges the age), not in London.
NOW = dt.datetime(2025, 3, 10, 15, 0, tzinfo=dt.UTC)
FORMATS = default_formats()
TWO, ONE, NONE = "t-two", "t-one", "t-none"  # two agreements / one / none and no profile
NUMBERS = ("1", "2")  # few, so that events of one invoice meet
VARIANTS = ("plain", "sek", "paid", "edge-of-age", "bad-reference", "reissued")
CREDITS = ("by-id", "by-number", "stray")


@cache
def invoice_of(tenant: str, number: str, variant: str = "plain") -> Invoice:
    """The tenant's invoice ``number``: one id whatever the variant (a copy differing), but
    for ``reissued`` (the same number under another id, from another connection)."""
    if variant == "sek":
        return sample_invoice(tenant, number, currency="SEK")
    if variant == "edge-of-age":  # 30 days old today, 31 at tomorrow's window
        return sample_invoice(tenant, number, issue_date=dt.date(2025, 2, 8))
    if variant == "bad-reference":
        return sample_invoice(tenant, number, reference="50675")
    base = sample_invoice(tenant, number)
    if variant == "paid":
        return base.model_copy(update={"outstanding_amount": Decimal(0)})
    if variant == "reissued":
        return base.model_copy(update={"invoice_id": f"{base.invoice_id}-b"})
    return base


@cache
def credit_of(tenant: str, number: str, how: str) -> Invoice:
    """A credit note ``9<number>`` crediting invoice ``number`` by its id, by its number only,
    or naming nothing."""
    original = invoice_of(tenant, number)
    note = sample_invoice(
        tenant,
        f"9{number}",
        document_type=DocumentType.CREDIT_NOTE,
        credited=original if how != "stray" else None,
    )
    if how == "by-number":
        reference = InvoiceReference(number=original.number, issue_date=original.issue_date)
        note = note.model_copy(update={"preceding_invoice": reference})
    return note


@cache
def newer(tenant: str, number: str, version: str, change: str) -> Invoice:
    """A later version: paid, its due date moved, or the same invoice again."""
    base = invoice_of(tenant, number)
    if change == "paid":
        return base.model_copy(update={"outstanding_amount": Decimal(0)})
    if change == "moved":
        days = 40 if version == "v2" else 50
        return base.model_copy(update={"due_date": base.issue_date + dt.timedelta(days=days)})
    return base


def world() -> Repositories:
    """Fakes with the profiles: t-two in London's zone (today's window), t-one in Oslo's."""
    return fake_repositories(
        FakeTenantProfiles(
            {TWO: tenant_profile("SE", time_zone="Europe/London"), ONE: tenant_profile("NO")}
        )
    )


async def with_agreements(repos: Repositories) -> None:
    """t-two: SEK only, then NOK (tried in that order); t-one: one; t-none: none."""
    sek = agreement(TWO, "two-sek", currencies=frozenset({"SEK"}))
    nok = agreement(TWO, "two-nok", currencies=frozenset({"NOK"}))
    for a in (sek, nok, agreement(ONE, "one")):
        await repos.agreements.save(a, None)


def created(invoice: Invoice, *, factor: bool = True, test_mode: bool = False) -> InvoiceCreated:
    return InvoiceCreated(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.invoice_id,
        version="v1",
        invoice=invoice,
        flow=Flow(factor=factor),
        test_mode=test_mode,
    )


def updated(invoice: Invoice, version: str) -> InvoiceUpdated:
    return InvoiceUpdated(
        tenant_id=invoice.tenant_id, invoice_id=invoice.invoice_id, version=version, invoice=invoice
    )


Event = InvoiceCreated | InvoiceUpdated
Outcome = list[InvoiceFactoringDecided | None]


async def one_by_one(repos: Repositories, batch: Sequence[Event]) -> Outcome:
    """What the runtime does after a batch failed: each event alone."""
    out: Outcome = []
    for event in batch:
        if isinstance(event, InvoiceCreated):
            out.append(await decisions.decide(repos, FORMATS, event, NOW))
        else:
            await decisions.follow_update(repos, event)
            out.append(None)
    return out


async def at_once(repos: Repositories, batch: Sequence[Event]) -> Outcome:
    """What the runtime does with a batch: each run of one topic's events at once."""
    out: Outcome = []
    start = 0
    while start < len(batch):
        end = start
        while end < len(batch) and type(batch[end]) is type(batch[start]):
            end += 1
        run = batch[start:end]
        if isinstance(run[0], InvoiceCreated):
            created_run = [e for e in run if isinstance(e, InvoiceCreated)]
            out += await decisions.decide_batch(repos, FORMATS, created_run, lambda: NOW)
        else:
            await decisions.follow_updates(repos, [e for e in run if isinstance(e, InvoiceUpdated)])
            out += [None] * len(run)
        start = end
    return out


async def transfer_pending(repos: Repositories, invoice_ids: Sequence[str]) -> None:
    """Between batches, a window took some pending invoices: the provider has their due date."""
    for invoice_id in invoice_ids:
        row = repos.invoices.rows.get(invoice_id)  # type: ignore[attr-defined]
        if row is not None and row.state is InvoiceState.PENDING:
            await repos.invoices.set_state([invoice_id], InvoiceState.TRANSFERRED, "sent")
            await repos.invoices.set_factor_due_date(invoice_id, row.invoice.due_date)


def state_of(repos: Repositories) -> tuple[list[Any], list[Any], dict[str, Any]]:
    rows = list(repos.invoices.rows.items())  # type: ignore[attr-defined]
    changes = list(repos.changes.changes.values())  # type: ignore[attr-defined]
    early = dict(repos.invoices.early)  # type: ignore[attr-defined]
    return rows, changes, early


# -- random mixes ---------------------------------------------------------------------------
tenants = st.sampled_from((TWO, ONE, NONE))
numbers = st.sampled_from(NUMBERS)
a_created = st.one_of(
    st.builds(
        lambda t, n, v, factor, test: created(invoice_of(t, n, v), factor=factor, test_mode=test),
        tenants,
        numbers,
        st.sampled_from(VARIANTS),
        st.sampled_from((True, True, True, False)),
        st.sampled_from((False, False, False, True)),
    ),
    st.builds(
        lambda t, n, how: created(credit_of(t, n, how)), tenants, numbers, st.sampled_from(CREDITS)
    ),
)
an_updated = st.builds(
    lambda t, n, v, change: updated(newer(t, n, v, change), v),
    tenants,
    numbers,
    st.sampled_from(("v1", "v2", "v3")),
    st.sampled_from(("paid", "moved", "same")),
)
a_batch = st.lists(st.one_of(a_created, a_created, an_updated), min_size=1, max_size=12)
a_transfer = st.lists(st.builds(lambda t, n: invoice_of(t, n).invoice_id, tenants, numbers))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(a_batch, a_transfer), min_size=1, max_size=4))
async def test_batches_decide_as_their_events_one_by_one(
    steps: list[tuple[list[Event], list[str]]],
) -> None:
    alone, batched = world(), world()
    await with_agreements(alone)
    await with_agreements(batched)
    for batch, transferred in steps:
        assert await at_once(batched, batch) == await one_by_one(alone, batch)
        assert state_of(batched) == state_of(alone)
        await transfer_pending(alone, transferred)
        await transfer_pending(batched, transferred)


# -- the cases by name ----------------------------------------------------------------------
async def test_a_duplicate_within_a_batch_is_decided_once() -> None:
    repos = world()
    await with_agreements(repos)
    first = created(invoice_of(ONE, "1"))
    copy = created(invoice_of(ONE, "1", "paid"))  # another copy of the same invoice
    out = await decisions.decide_batch(repos, FORMATS, [first, copy, first], lambda: NOW)
    assert out[0] is not None
    assert out[0].eligible
    assert out[1:] == [None, None]
    assert list(repos.invoices.rows) == [first.invoice_id]  # type: ignore[attr-defined]
    assert await decisions.decide_batch(repos, FORMATS, [first], lambda: NOW) == [None]


async def test_an_invoice_created_and_updated_in_one_batch_is_decided_then_followed() -> None:
    repos = world()
    await with_agreements(repos)
    invoice = invoice_of(ONE, "1")
    batch: list[Event] = [
        created(invoice),
        updated(newer(ONE, "1", "v2", "moved"), "v2"),
        updated(newer(ONE, "1", "v3", "paid"), "v3"),
    ]
    [decided, _, _] = await at_once(repos, batch)
    assert decided is not None
    assert decided.eligible
    row = repos.invoices.rows[invoice.invoice_id]  # type: ignore[attr-defined]
    assert (row.state, row.version) == (InvoiceState.WITHDRAWN, "v3")
    assert row.invoice.outstanding_amount == 0


async def test_a_credit_note_beside_its_original_follows_it() -> None:
    repos = world()
    await with_agreements(repos)
    batch = [
        created(invoice_of(ONE, "1")),
        created(credit_of(ONE, "1", "by-id")),
        created(invoice_of(ONE, "2")),
        created(credit_of(ONE, "2", "by-number")),
    ]
    out = await decisions.decide_batch(repos, FORMATS, batch, lambda: NOW)
    assert [d.eligible if d else None for d in out] == [True, True, True, True]


async def test_a_credit_note_by_number_follows_the_newest_invoice_of_that_number() -> None:
    """Invoice 1 was decided before (paid: ineligible); invoice 1 again under another id in
    this batch is eligible, and the credit note naming only the number follows that one."""
    repos = world()
    await with_agreements(repos)
    await decisions.decide_batch(
        repos, FORMATS, [created(invoice_of(ONE, "1", "paid"))], lambda: NOW
    )
    batch = [created(invoice_of(ONE, "1", "reissued")), created(credit_of(ONE, "1", "by-number"))]
    out = await decisions.decide_batch(repos, FORMATS, batch, lambda: NOW)
    assert [d.eligible if d else None for d in out] == [True, True]


async def test_two_moves_of_a_transferred_invoices_due_date_in_one_batch_chain() -> None:
    repos = world()
    await with_agreements(repos)
    invoice = invoice_of(ONE, "1")
    await decisions.decide_batch(repos, FORMATS, [created(invoice)], lambda: NOW)
    await transfer_pending(repos, [invoice.invoice_id])
    v2, v3 = newer(ONE, "1", "v2", "moved"), newer(ONE, "1", "v3", "moved")
    await decisions.follow_updates(repos, [updated(v2, "v2"), updated(v3, "v3"), updated(v3, "v3")])
    changes = list(repos.changes.changes.values())  # type: ignore[attr-defined]
    assert [(c.old_due_date, c.new_due_date) for c in changes] == [
        (invoice.due_date, v2.due_date),
        (v2.due_date, v3.due_date),
    ]
    row = repos.invoices.rows[invoice.invoice_id]  # type: ignore[attr-defined]
    assert (row.version, row.factor_due_date) == ("v3", v3.due_date)


class Counting:
    """Counts the calls made to the repositories it wraps."""

    def __init__(self, inner: object, calls: Counter[str], name: str) -> None:
        self._inner, self._calls, self._name = inner, calls, name

    def __getattr__(self, attr: str) -> Any:
        self._calls[f"{self._name}.{attr}"] += 1
        return getattr(self._inner, attr)


async def test_a_batch_reads_and_writes_with_one_call_each_whatever_its_size() -> None:
    repos = world()
    await with_agreements(repos)
    calls: Counter[str] = Counter()
    counted = dataclasses.replace(
        repos,
        agreements=Counting(repos.agreements, calls, "agreements"),  # type: ignore[arg-type]
        invoices=Counting(repos.invoices, calls, "invoices"),  # type: ignore[arg-type]
        profiles=Counting(repos.profiles, calls, "profiles"),  # type: ignore[arg-type]
    )
    batch = [
        created(sample_invoice(tenant, str(n))) for n in range(40) for tenant in (TWO, ONE, NONE)
    ]
    out = await decisions.decide_batch(counted, FORMATS, batch, lambda: NOW)
    assert sum(d is not None for d in out) == 120
    assert calls == {
        "invoices.lock": 1,  # the batch's invoices, in one statement
        "invoices.take_early_versions": 1,
        "invoices.get_many": 1,
        "agreements.of_tenants": 1,
        "profiles.of_tenants": 1,
        "invoices.record": 1,
    }
    calls.clear()
    later = [updated(newer(t, n, "v2", "paid"), "v2") for t in (TWO, ONE) for n in NUMBERS]
    await decisions.follow_updates(counted, later)
    assert calls == {
        "invoices.lock": 1,
        "invoices.get_many": 1,
        "invoices.update_invoices": 1,
        "invoices.set_state": 1,  # the paid ones withdrawn together
    }
    calls.clear()
    early = [updated(newer(t, n, "v2", "paid"), "v2") for t in (TWO, ONE) for n in ("71", "72")]
    await decisions.follow_updates(counted, [*early, *later])
    assert calls == {
        "invoices.lock": 1,
        "invoices.get_many": 1,
        "invoices.keep_early_versions": 1,  # not created yet: kept together
    }


# -- an update before its invoice's creation (two topics: no order between them) -----------
async def test_an_update_before_the_creation_in_an_earlier_batch_is_decided_on() -> None:
    repos = world()
    await with_agreements(repos)
    invoice = invoice_of(ONE, "1")
    moved = newer(ONE, "1", "v2", "moved")
    await decisions.follow_updates(repos, [updated(moved, "v2")])
    assert repos.invoices.rows == {}  # type: ignore[attr-defined]

    [decided] = await decisions.decide_batch(repos, FORMATS, [created(invoice)], lambda: NOW)

    assert decided is not None
    assert decided.eligible
    row = repos.invoices.rows[invoice.invoice_id]  # type: ignore[attr-defined]
    assert (row.state, row.version, row.invoice) == (InvoiceState.PENDING, "v2", moved)
    assert repos.invoices.early == {}  # type: ignore[attr-defined]
    # The creation again (a copy the inbox did not see): decided once.
    assert await decisions.decide_batch(repos, FORMATS, [created(invoice)], lambda: NOW) == [None]
    assert repos.invoices.rows[invoice.invoice_id] == row  # type: ignore[attr-defined]


async def test_a_paid_version_before_the_creation_in_one_batch_is_not_eligible() -> None:
    """Two later versions, the last paid, ahead of the creation in one consumed batch: the
    invoice is decided on the paid one, never offered (in order, it would be pending, then
    withdrawn)."""
    repos = world()
    await with_agreements(repos)
    invoice = invoice_of(ONE, "1")
    batch: list[Event] = [
        updated(newer(ONE, "1", "v2", "moved"), "v2"),
        updated(newer(ONE, "1", "v3", "paid"), "v3"),
        created(invoice),
        created(invoice),  # a copy in the same batch
    ]

    out = await at_once(repos, batch)

    [decided] = [d for d in out if d is not None]
    assert not decided.eligible
    assert decided.reason == "invoice is not open (paid or cancelled: nothing outstanding)"
    assert decided.payee is None
    row = repos.invoices.rows[invoice.invoice_id]  # type: ignore[attr-defined]
    assert (row.state, row.version) == (InvoiceState.INELIGIBLE, "v3")
    assert row.invoice.outstanding_amount == 0
    assert repos.invoices.early == {}  # type: ignore[attr-defined]
    # The same records again, one by one, on a fresh world: the same outcome.
    alone = world()
    await with_agreements(alone)
    assert await one_by_one(alone, batch) == out
    assert state_of(alone) == state_of(repos)


async def test_an_update_before_the_creation_of_a_flow_without_factoring_is_noted() -> None:
    repos = world()
    await with_agreements(repos)
    invoice = invoice_of(ONE, "1")
    paid = newer(ONE, "1", "v2", "paid")
    out = await at_once(repos, [updated(paid, "v2"), created(invoice, factor=False)])
    assert out == [None, None]
    row = repos.invoices.rows[invoice.invoice_id]  # type: ignore[attr-defined]
    assert (row.state, row.version, row.invoice) == (InvoiceState.NOT_OFFERED, "v2", paid)
    assert repos.invoices.early == {}  # type: ignore[attr-defined]
