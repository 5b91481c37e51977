"""service.decide_transfer on fake repositories: decisions, transfers, idempotency, time zones."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from factoring_gateway.domain import Agreement
from factoring_gateway.service import Repositories, decide_transfer, set_agreement
from factoring_gateway.testing import fake_repositories
from nordflow_runtime.testing import FakeTenantProfiles
from nordflow_schemas.events import AgreementKind, InvoiceTransferred
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.testing import created, new_tenant, simple_invoice, tenant_profile

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


async def with_agreement(repos: Repositories, **changes: object) -> str:
    """A new tenant with a stored agreement (defaults changed by ``changes``)."""
    tenant = new_tenant()
    base = Agreement(tenant_id=tenant, provider="Nordic Factor AB", kind=AgreementKind.FACTORING)
    await set_agreement(repos.agreements, dataclasses.replace(base, **changes))
    return tenant


def decision(repos: Repositories, invoice_id: str) -> tuple[bool, str]:
    return repos.transfers.decisions[invoice_id]  # type: ignore[attr-defined, no-any-return]


async def test_an_eligible_invoice_is_transferred_once() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos, kind=AgreementKind.FINANCING)
    event = created(simple_invoice(tenant, payable=Decimal("1437.50")))

    transferred = await decide_transfer(repos, event, NOW)

    assert isinstance(transferred, InvoiceTransferred)
    assert transferred.tenant_id == tenant
    assert transferred.invoice_id == event.invoice_id
    assert transferred.provider == "Nordic Factor AB"
    assert transferred.agreement_kind is AgreementKind.FINANCING
    assert transferred.amount == Decimal("1437.50")
    assert transferred.currency == "SEK"
    assert transferred.number == event.invoice.number
    assert transferred.document_type is DocumentType.INVOICE
    assert transferred.source == event.invoice.source
    assert transferred.transferred_at == NOW
    assert transferred.test_mode is False
    row = repos.transfers.transfers[event.invoice_id]  # type: ignore[attr-defined]
    assert row["transfer_id"] == transferred.transfer_id
    assert row["transfer_id"].startswith("tr_")
    assert (row["amount"], row["currency"], row["provider"], row["tenant_id"]) == (
        Decimal("1437.50"),
        "SEK",
        "Nordic Factor AB",
        tenant,
    )
    assert decision(repos, event.invoice_id) == (True, "eligible")


async def test_the_same_event_twice_transfers_once() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos)
    event = created(simple_invoice(tenant))

    first = await decide_transfer(repos, event, NOW)
    second = await decide_transfer(repos, event, NOW + dt.timedelta(seconds=5))

    assert first is not None
    assert second is None
    assert len(repos.transfers.transfers) == 1  # type: ignore[attr-defined]


async def test_test_mode_records_the_decision_and_transfers_nothing() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos)
    event = created(simple_invoice(tenant), test_mode=True)

    assert await decide_transfer(repos, event, NOW) is None
    assert decision(repos, event.invoice_id) == (False, "test mode: would be transferred")
    assert repos.transfers.transfers == {}  # type: ignore[attr-defined]


async def test_test_mode_keeps_the_real_reason_of_an_ineligible_invoice() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos)
    event = created(simple_invoice(tenant, currency="USD"), test_mode=True)

    assert await decide_transfer(repos, event, NOW) is None
    assert decision(repos, event.invoice_id) == (
        False,
        "currency USD is not covered by the agreement",
    )


async def test_without_an_agreement_the_refusal_is_recorded() -> None:
    repos = fake_repositories()
    event = created(simple_invoice())

    assert await decide_transfer(repos, event, NOW) is None
    assert decision(repos, event.invoice_id) == (False, "tenant has no factoring agreement")
    assert repos.transfers.transfers == {}  # type: ignore[attr-defined]


async def test_another_tenants_agreement_does_not_apply() -> None:
    repos = fake_repositories()
    await with_agreement(repos)
    event = created(simple_invoice(new_tenant()))
    assert await decide_transfer(repos, event, NOW) is None
    assert repos.transfers.transfers == {}  # type: ignore[attr-defined]


async def test_replacing_an_agreement_disables_it() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos)
    await set_agreement(
        repos.agreements,
        Agreement(tenant_id=tenant, provider="Other", kind=AgreementKind.FACTORING, enabled=False),
    )
    event = created(simple_invoice(tenant))
    assert await decide_transfer(repos, event, NOW) is None
    assert decision(repos, event.invoice_id) == (False, "agreement is disabled")


async def test_without_a_profile_the_age_is_counted_in_the_sellers_country_days() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos, max_age_days=30)
    late_evening = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)  # 11 March 00:30 in Sweden
    event = created(simple_invoice(tenant, issue_date=dt.date(2025, 2, 8)))  # 30 UTC days, 31 SE

    assert await decide_transfer(repos, event, late_evening) is None
    assert decision(repos, event.invoice_id) == (False, "invoice date is more than 30 days back")


async def test_the_age_is_counted_in_the_tenants_own_time_zone() -> None:
    """A Norwegian tenant's day is an Oslo day; a tenant in Reykjavik (UTC) keeps its own."""
    oslo, reykjavik = new_tenant(), new_tenant()
    profiles = FakeTenantProfiles(
        {
            oslo: tenant_profile("NO"),
            reykjavik: tenant_profile("NO", time_zone="Atlantic/Reykjavik"),
        }
    )
    repos = fake_repositories(profiles)
    for tenant in (oslo, reykjavik):
        await set_agreement(
            repos.agreements,
            Agreement(tenant_id=tenant, provider="Factor AS", kind=AgreementKind.FACTORING),
        )
    assert profiles.profiles[oslo].time_zone == "Europe/Oslo"
    late_evening = dt.datetime(2025, 3, 10, 23, 30, tzinfo=dt.UTC)  # 11 March in Oslo
    old = dt.date(2025, 2, 8)
    in_oslo = created(simple_invoice(oslo, issue_date=old, country="NO", currency="NOK"))
    in_reykjavik = created(simple_invoice(reykjavik, issue_date=old, country="NO", currency="NOK"))

    assert await decide_transfer(repos, in_oslo, late_evening) is None
    assert decision(repos, in_oslo.invoice_id) == (False, "invoice date is more than 30 days back")
    assert await decide_transfer(repos, in_reykjavik, late_evening) is not None


async def test_a_credit_note_is_transferred_with_its_positive_payable() -> None:
    repos = fake_repositories()
    tenant = await with_agreement(repos)
    event = created(
        simple_invoice(tenant, document_type=DocumentType.CREDIT_NOTE, payable=Decimal("500"))
    )

    transferred = await decide_transfer(repos, event, NOW)

    assert transferred is not None
    assert transferred.document_type is DocumentType.CREDIT_NOTE
    assert transferred.amount == Decimal("500")
