"""service.schedule_closing / schedule_payment on fakes: what is scheduled, when, once, and
the closing's business date in the tenant's time zone."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from ledger_closer.domain import PlannedEntry
from ledger_closer.service import Repositories, schedule_closing, schedule_payment
from ledger_closer.testing import (
    FakeJobScheduler,
    ScheduledJob,
    fake_repositories,
    payment_received,
    source,
    transferred,
)
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import AgreementKind, Flow
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.testing import new_tenant, tenant_profile

LATE_EVENING = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def scheduled(repos: Repositories) -> list[ScheduledJob]:
    assert isinstance(repos.jobs, FakeJobScheduler)
    return list(repos.jobs.jobs.values())


async def test_invoice_closing_is_a_positive_payment_on_the_local_business_date() -> None:
    repos = fake_repositories()
    event = transferred("acme", invoice_id="inv_1", transferred_at=LATE_EVENING)

    assert await schedule_closing(repos, event, dt.timedelta(hours=24))

    [job] = scheduled(repos)
    assert (job.kind, job.key, job.tenant_id) == ("close-invoice", "closing:inv_1", "acme")
    assert job.payload["kind"] == "closing_entry"
    assert job.payload["amount"] == "1250.00"
    assert job.payload["currency"] == "SEK"
    assert job.payload["account_role"] == "factoring"
    assert job.payload["source"] == event.source.model_dump(mode="json")
    # No profile: 23:30 UTC on 23 November is already 24 November in Stockholm.
    assert job.payload["paid_on"] == "2026-11-24"
    assert job.due_at == dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)


async def test_credit_note_is_closed_by_a_refund() -> None:
    repos = fake_repositories()
    await schedule_closing(
        repos, transferred("acme", document_type=DocumentType.CREDIT_NOTE), dt.timedelta(0)
    )
    assert scheduled(repos)[0].payload["amount"] == "-1250.00"


async def test_test_mode_schedules_nothing() -> None:
    repos = fake_repositories()
    assert not await schedule_closing(repos, transferred("acme", test_mode=True), dt.timedelta(0))
    assert scheduled(repos) == []


async def test_an_invoice_is_closed_once() -> None:
    repos = fake_repositories()
    event = transferred("acme")
    assert await schedule_closing(repos, event, dt.timedelta(0))
    again = event.model_copy(update={"transfer_id": "tr_other"})
    assert not await schedule_closing(repos, again, dt.timedelta(0))
    assert len(scheduled(repos)) == 1


@pytest.mark.parametrize(
    ("profile_zone", "moment", "day"),
    [
        # Oslo and Stockholm share their offset: the Oslo date of a late UTC evening.
        ("Europe/Oslo", LATE_EVENING, "2026-11-24"),
        # New York is behind: early 24 November in UTC is still the 23rd there (Stockholm: 24th).
        ("America/New_York", dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC), "2026-11-23"),
        # Auckland is ahead: late morning of the 23rd in UTC is the 24th there (Stockholm: 23rd).
        ("Pacific/Auckland", dt.datetime(2026, 11, 23, 11, 30, tzinfo=dt.UTC), "2026-11-24"),
    ],
)
async def test_the_closing_date_is_the_day_in_the_tenants_zone(
    profile_zone: str, moment: dt.datetime, day: str
) -> None:
    tenant = new_tenant()
    profiles = FakeTenantProfiles({tenant: tenant_profile("NO", time_zone=profile_zone)})
    repos = fake_repositories(profiles)

    assert await schedule_closing(
        repos, transferred(tenant, transferred_at=moment), dt.timedelta(0)
    )

    [job] = scheduled(repos)
    assert job.payload["paid_on"] == day
    assert job.due_at == moment  # the delay runs from the instant; only the date is local


async def test_another_tenants_profile_is_not_used() -> None:
    tenant, other = new_tenant(), new_tenant()
    profiles = FakeTenantProfiles({other: tenant_profile("NO", time_zone="America/New_York")})
    repos = fake_repositories(profiles)
    moment = dt.datetime(2026, 11, 24, 3, 30, tzinfo=dt.UTC)
    await schedule_closing(repos, transferred(tenant, transferred_at=moment), dt.timedelta(0))
    assert scheduled(repos)[0].payload["paid_on"] == "2026-11-24"  # Stockholm's day


async def test_a_reported_payment_is_booked_now_on_the_bank_account() -> None:
    repos = fake_repositories()
    event = payment_received(
        "acme",
        invoice_id="inv_1",
        payment_id="p7",
        amount=Decimal("100.00"),
        paid_on=dt.date(2026, 11, 20),
        source_ref=source("c", "7"),
    )

    assert await schedule_payment(repos, event, NOW)

    [job] = scheduled(repos)
    assert (job.kind, job.key, job.tenant_id, job.due_at) == (
        "post-entry",
        "payment:inv_1:p7",
        "acme",
        NOW,
    )
    assert job.payload == {
        "invoice_id": "inv_1",
        "kind": "invoice_payment",
        "source": source("c", "7").model_dump(mode="json"),
        "amount": "100.00",
        "currency": "SEK",
        "paid_on": "2026-11-20",
        "account_role": "bank",
        "document_type": "invoice",
    }
    assert not await schedule_payment(repos, event, NOW)  # once per payment id


@pytest.mark.parametrize(("test_mode", "recorded_at_source"), [(False, True), (True, False)])
async def test_payment_already_in_the_erp_or_in_test_mode_is_not_booked(
    test_mode: bool, recorded_at_source: bool
) -> None:
    repos = fake_repositories()
    payment = payment_received("acme", test_mode=test_mode, recorded_at_source=recorded_at_source)
    assert not await schedule_payment(repos, payment, NOW)
    assert scheduled(repos) == []
    booked = payment.model_copy(update={"test_mode": False, "recorded_at_source": False})
    assert await schedule_payment(repos, booked, NOW)  # the same payment, reported by a bank


async def test_factoring_closes_the_full_amount_and_books_the_fee() -> None:
    repos = fake_repositories()
    event = transferred(
        "acme", invoice_id="inv_f", advance_amount=Decimal("1225.00"), fee_amount=Decimal("25.00")
    )
    assert await schedule_closing(repos, event, dt.timedelta(0))
    [job] = scheduled(repos)
    assert (job.kind, job.payload["amount"], job.payload["fee"]) == (
        "close-invoice",
        "1250.00",
        "25.00",
    )
    # Without a fee reported, the fee is what the advance leaves of the amount.
    repos = fake_repositories()
    await schedule_closing(
        repos, transferred("acme", advance_amount=Decimal("1200.00")), dt.timedelta(0)
    )
    assert scheduled(repos)[0].payload["fee"] == "50.00"


async def test_financing_books_the_advance_and_closes_at_the_buyers_payment() -> None:
    repos = fake_repositories()
    event = transferred(
        "acme",
        invoice_id="inv_l",
        agreement_kind=AgreementKind.FINANCING,
        advance_amount=Decimal("1000.00"),
        fee_amount=Decimal("12.50"),
    )
    assert await schedule_closing(repos, event, dt.timedelta(hours=24))
    [advance] = scheduled(repos)
    assert (advance.kind, advance.key) == ("post-entry", "advance:inv_l")
    assert (advance.payload["kind"], advance.payload["amount"]) == ("financing_advance", "1000.00")

    paid = payment_received("acme", invoice_id="inv_l", payment_id="p9", amount=Decimal("1250.00"))
    assert await schedule_payment(repos, paid, NOW)
    payment = scheduled(repos)[1]
    # The buyer's payment closes the invoice: the advance clears the liability, the fee is
    # booked, the rest reaches the bank.
    assert (payment.payload["advance"], payment.payload["fee"]) == ("1000.00", "12.50")
    assert PlannedEntry.from_payload(payment.payload).cash == Decimal("237.50")


async def test_invoice_service_closes_nothing_until_the_payment() -> None:
    repos = fake_repositories()
    event = transferred("acme", invoice_id="inv_s", agreement_kind=AgreementKind.INVOICE_SERVICE)
    assert not await schedule_closing(repos, event, dt.timedelta(0))
    assert scheduled(repos) == []
    paid = payment_received("acme", invoice_id="inv_s", fee_amount=Decimal("60.00"))
    assert await schedule_payment(repos, paid, NOW)
    assert scheduled(repos)[0].payload["fee"] == "60.00"


async def test_a_factored_invoices_payment_is_not_booked_again() -> None:
    repos = fake_repositories()
    await schedule_closing(repos, transferred("acme", invoice_id="inv_x"), dt.timedelta(0))
    paid = payment_received("acme", invoice_id="inv_x")
    assert not await schedule_payment(repos, paid, NOW)
    assert len(scheduled(repos)) == 1


async def test_a_factors_settlement_of_a_factored_invoice_is_not_booked() -> None:
    # No transfer seen here (e.g. transferred before this connection wrote): the settlement's
    # own agreement kind decides.
    repos = fake_repositories()
    settled = payment_received("acme", invoice_id="inv_y").model_copy(
        update={"agreement_id": "nordea-1", "agreement_kind": AgreementKind.FACTORING}
    )
    assert not await schedule_payment(repos, settled, NOW)
    assert scheduled(repos) == []


async def test_a_payment_whose_flow_books_it_elsewhere_is_booked_there() -> None:
    repos = fake_repositories()
    flow = Flow(book_into="h-fortnox", factor=False, distribute=False)
    paid = payment_received(
        "acme", invoice_id="inv_h", payment_id="sv-9", recorded_at_source=True, flow=flow
    )
    assert await schedule_payment(repos, paid, NOW)
    [job] = scheduled(repos)
    assert (job.key, job.payload["target"]) == ("payment:inv_h:sv-9@h-fortnox", "h-fortnox")


async def test_payments_of_one_id_on_two_invoices_are_both_booked() -> None:
    # Two Sirvoy accounts of one tenant, booked into one Fortnox company, each with its
    # payment 900001 (Sirvoy numbers them per account): two payments, not one.
    repos = fake_repositories()
    flow = Flow(book_into="h-fortnox", factor=False, distribute=False)
    for invoice_id, account in (("inv_a", "sirvoy-a"), ("inv_b", "sirvoy-b")):
        paid = payment_received(
            "acme",
            invoice_id=invoice_id,
            payment_id="900001",
            source_ref=source(account, "1"),
            recorded_at_source=True,
            flow=flow,
        )
        assert await schedule_payment(repos, paid, NOW)
    assert sorted(j.key for j in scheduled(repos)) == [
        "payment:inv_a:900001@h-fortnox",
        "payment:inv_b:900001@h-fortnox",
    ]


async def test_a_payment_scheduled_under_its_old_key_is_not_booked_again() -> None:
    # Jobs made before the key named the invoice keep `payment:<id>`: the same payment of
    # the same invoice is not scheduled a second time; another invoice's payment of that id,
    # or another tenant's, is.
    repos = fake_repositories()
    old = payment_received("acme", invoice_id="inv_1", payment_id="p7")
    await repos.jobs.schedule(
        kind="post-entry",
        key="payment:p7",
        tenant_id="acme",
        payload={"invoice_id": "inv_1"},
        due_at=NOW,
    )
    assert not await schedule_payment(repos, old, NOW)
    assert await schedule_payment(
        repos, payment_received("acme", invoice_id="inv_2", payment_id="p7"), NOW
    )
    assert await schedule_payment(
        repos, payment_received("other", invoice_id="inv_1", payment_id="p7"), NOW
    )
    assert sorted(j.key for j in scheduled(repos)) == [
        "payment:inv_1:p7",
        "payment:inv_2:p7",
        "payment:p7",
    ]
