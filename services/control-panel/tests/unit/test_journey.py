"""An invoice's journey: the summary follows from the set of steps, whatever their order."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import uuid
from decimal import Decimal

import pytest
from control_panel.domain.journey import (
    ErrorItem,
    Status,
    Step,
    peek_customer,
    status_of,
    summarize,
    trace_id_of,
)
from control_panel.entrypoints.consumers import observed
from control_panel.service.readmodel import Observed, apply_event, step_of
from control_panel.testing import (
    BASE_TIME,
    FakeJourneyRepository,
    fake_repositories,
    journey,
    rejected,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from nordflow_schemas.events import DocumentKind
from nordflow_schemas.testing import new_tenant

T0 = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)


def step(kind: str, minutes: int = 0, **facts: object) -> Step:
    return Step(
        event_id=uuid.uuid4().hex,
        tenant_id="t",
        invoice_id="inv_1",
        kind=kind,
        occurred_at=T0 + dt.timedelta(minutes=minutes),
        facts=facts,
    )


def test_the_furthest_step_is_the_status() -> None:
    fetched = step("erp.document.fetched")
    created = step("invoice.created", 1)
    sent = step("invoice.distributed", 3, channel="email")
    booked = step("ledger.entry.posted", 5, entry_kind="invoice_payment")
    closed = step("ledger.entry.posted", 6, entry_kind="closing_entry")
    assert status_of([fetched]) is Status.FETCHED
    assert status_of([fetched, created]) is Status.CREATED
    assert status_of([sent, created, fetched]) is Status.DISTRIBUTED
    assert status_of([booked, sent]) is Status.BOOKED
    assert status_of([closed, booked]) is Status.CLOSED
    assert status_of([step("invoice.delivery_failed"), sent]) is Status.DISTRIBUTED
    assert status_of([step("job.failed")]) is Status.UNKNOWN


def test_between_mapping_outcomes_the_newest_counts() -> None:
    first_rejected, then_created = step("invoice.rejected", 1), step("invoice.created", 2)
    assert status_of([then_created, first_rejected]) is Status.CREATED
    created_first, then_rejected = step("invoice.created", 1), step("invoice.rejected", 2)
    assert status_of([then_rejected, created_first]) is Status.REJECTED


def test_facts_come_from_the_newest_document_else_the_earliest_step() -> None:
    fetched = step("erp.document.fetched", 0, number="17", customer="Peeked AB")
    v1 = step("invoice.created", 1, number="17", customer="Köpare AB", amount="100.00")
    v2 = step("invoice.updated", 2, number="17", customer="Köpare AB", amount="120.50")
    summary = summarize([v2, fetched, v1])
    assert (summary.number, summary.customer, summary.amount) == (
        "17",
        "Köpare AB",
        Decimal("120.50"),
    )
    assert summarize([fetched]).customer == "Peeked AB"
    assert summary.first_seen_at == T0
    assert summary.last_event_at == T0 + dt.timedelta(minutes=2)


def test_errors_are_counted_and_the_journeys_trace_is_the_fetch() -> None:
    fetched = Step("e1", "t", "i", "erp.document.fetched", T0, trace_id="a" * 32)
    later = Step(
        "e2",
        "t",
        "i",
        "invoice.rejected",
        T0 + dt.timedelta(seconds=1),
        trace_id="b" * 32,
        errors=(ErrorItem("Invoice.DueDate", "NF-DATE", "not a date"),) * 2,
    )
    summary = summarize([later, fetched])
    assert summary.error_count == 2
    assert summary.trace_id == "a" * 32


TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(
    ("header", "trace"),
    [
        (f"00-{TRACE}-b7ad6b7169203331-01", TRACE),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_trace_ids_are_read_from_traceparent(header: str | None, trace: str | None) -> None:
    assert trace_id_of(header) == trace


def test_a_customer_is_peeked_where_sources_keep_it() -> None:
    assert peek_customer({"CustomerName": " Fortnox AB "}, {}) == "Fortnox AB"
    assert peek_customer({"Invoice": {"InvoiceCustomerName": "Visma AB"}}, {}) == "Visma AB"
    assert peek_customer({"recipient": {"businessName": "Hotell AB"}}, {}) == "Hotell AB"
    assert peek_customer({}, {"customer": {"Name": "SIE AB"}}) == "SIE AB"
    assert peek_customer({"CustomerName": 7}, {}) is None


def _steps_of(events: list) -> list[Step]:
    return [s for s in (step_of(observed(e)) for e in events) if s is not None]


def test_every_event_of_a_journey_is_a_step_with_the_journeys_facts() -> None:
    tenant = new_tenant()
    events = journey(tenant, "1001", customer="Köpare AB")
    steps = _steps_of(events)
    assert [s.kind for s in steps] == [
        "erp.document.fetched",
        "invoice.created",
        "invoice.transferred",
        "invoice.distributed",
        "payment.received",
        "ledger.entry.posted",
    ]
    summary = summarize(steps)
    assert summary.status is Status.BOOKED
    assert (summary.number, summary.customer, summary.customer_key) == ("1001", "Köpare AB", "K-7")
    assert (summary.amount, summary.currency) == (Decimal("1250.00"), "SEK")
    assert (summary.channel, summary.archive_sequence) == ("email", 17)
    assert summary.source_system == "fortnox"
    assert summary.trace_id is not None
    assert steps[3].facts["fallbacks"][0]["channel"] == "peppol"
    refused = summarize(_steps_of(rejected(tenant, "1002")))
    assert (refused.status, refused.number, refused.customer) == (
        Status.REJECTED,
        "1002",
        "Felaktig AB",
    )
    assert refused.error_count == 2


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(8)), st.lists(st.integers(0, 7), max_size=4))
def test_any_order_and_any_duplicates_give_the_same_read_model(order, again) -> None:
    """Events of one invoice on different topics arrive in any order, some twice."""
    import asyncio

    tenant = "t-fixed"
    events = journey(tenant, "1001") + rejected(tenant, "1002")
    reference = fake_repositories()
    shuffled = fake_repositories()

    async def run() -> None:
        for env in events:
            await apply_event(reference, observed(env))
        for i in [*order, *again]:
            await apply_event(shuffled, observed(events[i]))

    asyncio.run(run())
    assert isinstance(reference.journeys, FakeJourneyRepository)
    assert isinstance(shuffled.journeys, FakeJourneyRepository)
    assert shuffled.journeys.summaries == reference.journeys.summaries
    assert shuffled.journeys.documents == reference.journeys.documents


def test_an_unknown_event_body_is_no_step() -> None:
    from nordflow_schemas.testing import tenant_profile, tenant_updated

    body = tenant_updated("t", tenant_profile())
    assert step_of(Observed("e", BASE_TIME, None, body)) is None


def test_permutations_of_mapping_outcomes_agree() -> None:
    steps = [step("invoice.rejected", 1), step("invoice.created", 2), step("erp.document.fetched")]
    outcomes = {summarize(list(p)).status for p in itertools.permutations(steps)}
    assert outcomes == {Status.CREATED}


def test_a_fetched_payment_document_is_no_invoices_step() -> None:
    fetched = journey("t-pay", "1001")[0]
    payment = dataclasses.replace(
        fetched,
        body=fetched.body.model_copy(
            update={"kind": DocumentKind.PAYMENT, "invoice_id": "inv_payment_doc"}
        ),
    )
    assert step_of(observed(payment)) is None
