"""An invoice to be factored waits for factoring-gateway's decision; an assigned one reaches
its buyer paid to the factor, with the notice of assignment (on the fakes)."""

from __future__ import annotations

import datetime as dt

from distribution_router.service import factoring
from distribution_router.service.ports import Partners, Repositories
from distribution_router.service.sending import send_invoice
from distribution_router.testing import FakeSender, Registered, fake_partners, fake_store
from distribution_router.testing.fakes import fake_repositories
from distribution_router.testing.invoices import GLN, company, created_event
from nordflow_schemas.events import (
    AgreementKind,
    Channel,
    Flow,
    InvoiceCreated,
    InvoiceFactoringDecided,
    PayeeAccount,
)

NOW = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)
NOTICE = "Fordran har överlåtits till Nordisk Factoring AB."


def decision(created: InvoiceCreated, *, eligible: bool = True) -> InvoiceFactoringDecided:
    return InvoiceFactoringDecided(
        tenant_id=created.tenant_id,
        invoice_id=created.invoice_id,
        number=created.invoice.number,
        eligible=eligible,
        reason="eligible" if eligible else "tenant has no factoring agreement",
        agreement_id="nf-1" if eligible else None,
        agreement_kind=AgreementKind.FACTORING if eligible else None,
        provider="Nordisk Factoring AB" if eligible else None,
        payee=PayeeAccount(
            name="Nordisk Factoring AB",
            scheme="SE:BANKGIRO",
            account_id="5555-5556",
            company_id="5560360793",
        )
        if eligible
        else None,
        payment_reference="12345678903" if eligible else None,
        assignment_text=NOTICE if eligible else None,
        decided_at=NOW,
    )


def setup() -> tuple[Repositories, Partners, dict[Channel, FakeSender]]:
    senders = {c: FakeSender(c) for c in Channel}
    return fake_repositories(), fake_partners(senders, Registered(GLN)), senders


async def sent(repos: Repositories, partners: Partners, created: InvoiceCreated) -> None:
    outcome = await send_invoice(
        fake_store(repos),
        partners,
        tenant_id=created.tenant_id,
        invoice_id=created.invoice_id,
        clock=lambda: NOW,
    )
    assert outcome.result["status"] == "sent"


async def test_without_factoring_in_the_flow_the_invoice_is_routed_at_once() -> None:
    repos, partners, _ = setup()
    created = created_event(company(gln=True)).model_copy(update={"flow": Flow(factor=False)})
    assert await factoring.invoice_created(repos, partners, created, NOW) is None
    assert await repos.deliveries.exists(created.invoice_id)


async def test_an_invoice_waits_for_its_decision_then_goes_to_the_buyer_assigned() -> None:
    repos, partners, senders = setup()
    created = created_event(company(gln=True))

    await factoring.invoice_created(repos, partners, created, NOW)
    assert not await repos.deliveries.exists(created.invoice_id)

    await factoring.factoring_decided(repos, partners, decision(created), NOW)
    await sent(repos, partners, created)
    [outgoing] = senders[Channel.PEPPOL].received.values()
    assert outgoing.invoice.payee is not None
    assert outgoing.invoice.payee.name == "Nordisk Factoring AB"
    assert outgoing.invoice.payee.assignment_text == NOTICE
    assert outgoing.invoice.payment.account_id == "5555-5556"
    assert outgoing.invoice.payment.payment_reference == "12345678903"
    assert b"Nordisk Factoring AB" in outgoing.document  # the UBL's PayeeParty
    assert b"PayeeParty" in outgoing.document


async def test_a_decision_that_arrives_first_is_applied_when_the_invoice_comes() -> None:
    repos, partners, senders = setup()
    created = created_event(company(gln=True))

    await factoring.factoring_decided(repos, partners, decision(created), NOW)
    assert not await repos.deliveries.exists(created.invoice_id)
    await factoring.invoice_created(repos, partners, created, NOW)

    await sent(repos, partners, created)
    [outgoing] = senders[Channel.PEPPOL].received.values()
    assert outgoing.invoice.payee is not None


async def test_an_invoice_not_assigned_goes_out_unchanged_and_a_copy_changes_nothing() -> None:
    repos, partners, senders = setup()
    created = created_event(company(gln=True))
    refused = decision(created, eligible=False)

    await factoring.invoice_created(repos, partners, created, NOW)
    await factoring.factoring_decided(repos, partners, refused, NOW)
    assert await factoring.factoring_decided(repos, partners, refused, NOW) is None
    await factoring.invoice_created(repos, partners, created, NOW)

    await sent(repos, partners, created)
    [outgoing] = senders[Channel.PEPPOL].received.values()
    assert outgoing.invoice == created.invoice
