"""Holds, suggestion decisions, send costs and transfer batches on the real PostgreSQL: the
read model is the same in any order and with duplicates, the Delivery page lists the
invoices held now with what to add, the journey shows hold and release, the statistics
use the sends' own costs, and the Factoring page names each transfer's batch and file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest
from control_panel.adapters.tokens import PgTokenRepository
from control_panel.deps import Deps
from control_panel.domain.access import Principal
from control_panel.domain.stats import Granularity
from control_panel.service import queries
from control_panel.service.tokens import create_token
from control_panel.testing import (
    BASE_TIME,
    app_for,
    hold_events,
    journey,
    suggestion_events,
)
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.events import (
    InvoiceDistributed,
    OperatorAction,
    OperatorActionRequested,
    SuggestionDecision,
)
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration

ROWS = {
    "holds": "SELECT * FROM holds WHERE tenant_id = $1 ORDER BY invoice_id",
    "decisions": "SELECT * FROM suggestion_decisions WHERE tenant_id = $1",
    "suggestions": "SELECT * FROM suggestions WHERE tenant_id = $1",
    "steps": "SELECT event_id, kind, occurred_at, facts::text FROM steps WHERE tenant_id = $1 "
    "ORDER BY event_id",
    "invoices": "SELECT * FROM invoices WHERE tenant_id = $1",
}


async def rows(h: ServiceHarness[Deps], tenant: str) -> dict[str, list[dict[str, Any]]]:
    return {name: [dict(r) for r in await h.pool.fetch(sql, tenant)] for name, sql in ROWS.items()}


def with_clock(h: ServiceHarness[Deps], now: dt.datetime) -> None:
    h.deps = dataclasses.replace(h.deps, clock=lambda: now)


async def test_holds_and_decisions_in_any_order_and_twice_give_the_same_read_model(
    database_url: str,
) -> None:
    tenant = new_tenant()
    events = [
        *journey(tenant, "1001"),
        *hold_events(tenant, "1001"),
        *hold_events(tenant, "1003", released=False),
        *suggestion_events(tenant, "1001"),
    ]
    in_order = await ServiceHarness.start(app_for(database_url), database_url)
    shuffled = await ServiceHarness.start(app_for(database_url), database_url)
    try:
        for env in events:
            await in_order.deliver(env)
        mixed = list(events)
        random.Random(3).shuffle(mixed)
        await shuffled.deliver(*mixed[:4], *mixed[:4])  # twice in one batch
        for env in mixed[4:]:
            await shuffled.deliver(env)
        await shuffled.pool.execute("DELETE FROM inbox")  # copies after the inbox forgot them
        await shuffled.deliver(*reversed(events))
        assert await rows(shuffled, tenant) == await rows(in_order, tenant)

        holds = {r["number"]: r for r in (await rows(in_order, tenant))["holds"]}
        assert (holds["1001"]["revision"], holds["1001"]["change"]) == (3, "released")
        assert holds["1001"]["released_by"] == "api token 'ekonomi'"
        assert (holds["1003"]["revision"], holds["1003"]["released_at"]) == (2, None)
        [decision] = (await rows(in_order, tenant))["decisions"]
        assert (decision["suggestion_id"], decision["decision"]) == (5, "accepted")
    finally:
        await in_order.close()
        await shuffled.close()


async def test_only_holds_open_now_are_listed_with_what_to_add(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await harness.deliver(*journey(tenant, "1001"), *hold_events(tenant, "1001"))  # released
    await harness.deliver(*hold_events(tenant, "1003", released=False, hours=1))
    read = harness.deps.repositories(harness.pool).read
    during = BASE_TIME + dt.timedelta(minutes=30)
    [held] = await read.holds(tenant, during, 10)
    assert (held.number, held.revision, held.reason) == ("1003", 2, "tenant_policy")
    assert [f.filename for f in held.attachments] == ["villkor.pdf"]
    assert held.needed is not None
    assert held.needed.content_types == ("application/pdf", "image/png", "text/csv")
    assert await read.holds(tenant, BASE_TIME + dt.timedelta(hours=2), 10) == []  # it ran out
    assert await read.holds(new_tenant(), during, 10) == []


async def test_a_decision_known_before_its_suggestion_is_joined_to_it(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    found, decided = suggestion_events(tenant, decision=SuggestionDecision.DISMISSED)
    await harness.deliver(decided)
    await harness.deliver(found)
    read = harness.deps.repositories(harness.pool).read
    [row] = await read.suggestions(tenant, 10)
    assert (row.suggestion_id, row.decision, row.decided_by) == (
        5,
        "dismissed",
        "api token 'ekonomi'",
    )
    undecided = new_tenant()
    await harness.deliver(*suggestion_events(undecided, decision=None))
    [still_open] = await read.suggestions(undecided, 10)
    assert (still_open.decision, still_open.decided_at) == (None, None)


async def test_the_cost_is_the_sends_own_and_estimated_only_for_older_sends(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await harness.tenant(tenant, tenant_profile("SE"))
    priced = journey(tenant, "1", cost=Decimal("0.85"))
    older = journey(tenant, "2", start=BASE_TIME + dt.timedelta(minutes=30))
    in_nok = journey(tenant, "3", cost=Decimal("7.00"), start=BASE_TIME + dt.timedelta(hours=1))
    sent = in_nok[3].body
    assert isinstance(sent, InvoiceDistributed)
    nok = sent.model_copy(update={"cost_currency": "NOK"})
    in_nok[3] = dataclasses.replace(in_nok[3], body=nok)
    await harness.deliver(*priced, *older, *in_nok)
    settings = harness.deps.settings
    stats = await queries.statistics(
        harness.deps.repositories(harness.pool),
        Principal("x", tenant, operator=False),
        None,
        BASE_TIME.date(),
        BASE_TIME.date(),
        Granularity.DAY,
        settings.unit_prices(),
        "SEK",
    )
    [day] = stats.periods
    assert day.sent == {"email": 3}
    # 0.85 as the router recorded it; the older send and the one in NOK at the price list.
    assert day.cost == Decimal("0.85") + 2 * settings.unit_price_email
    assert (day.estimated, stats.total.estimated) == (2, 2)
    assert stats.total.cost == day.cost


async def test_pages_and_api_show_holds_decisions_costs_and_batches(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    await harness.tenant(tenant, tenant_profile("SE"))
    await harness.deliver(*journey(tenant, "1001", cost=Decimal("0.85")))
    await harness.deliver(*hold_events(tenant, "1001"))
    await harness.deliver(*journey(tenant, "1003"), *hold_events(tenant, "1003", released=False))
    await harness.deliver(*suggestion_events(tenant, "1001"))
    with_clock(harness, BASE_TIME + dt.timedelta(hours=1))
    invoice = journey(tenant, "1001")[0].body.invoice_id
    token = await create_token(PgTokenRepository(harness.pool), tenant, operator=False, name="a")
    async with harness.http(token=token) as api:
        delivery = (await api.get("/api/v1/delivery")).json()
        books = (await api.get("/api/v1/books")).json()
        stats = (
            await api.get("/api/v1/statistics", params={"from": "2025-03-10", "to": "2025-03-10"})
        ).json()
    assert [(h["number"], h["reason"]) for h in delivery["holds"]] == [("1003", "tenant_policy")]
    assert delivery["holds"][0]["attachments"] == [
        {"filename": "villkor.pdf", "content_type": "application/pdf", "size": 48213}
    ]
    assert delivery["holds"][0]["needed"]["max_files"] == 20
    assert [(s["suggestion_id"], s["decision"]) for s in delivery["suggestions"]] == [
        (5, "accepted")
    ]
    assert {(t["number"], t["batch_id"], t["file_serial"]) for t in books["transfers"]} == {
        ("1001", "b-1001", 7),
        ("1003", "b-1003", 7),
    }
    assert (stats["total"]["cost"], stats["total"]["estimated"]) == ("1.85", 1)

    async with harness.http() as client:
        signed = await client.post("/sign-in", data={"token": token})
        assert signed.status_code == 303
        page = await client.get("/delivery")  # the tenant's profile says Swedish
        assert page.status_code == 200
        assert 'id="holds"' in page.text
        assert "1003" in page.text
        assert "villkor.pdf" in page.text
        assert "PDF, PNG, CSV; högst 20 filer om 10 MiB vardera" in page.text
        assert "företagets regel för vilande fakturor" in page.text
        assert "POST /api/v1/holds/" in page.text  # no router URL set: the API named
        assert "godkänt" in page.text  # the suggestion's decision
        journey_page = await client.get(f"/invoices/{invoice}")
        assert "Vilande i väntan på bilagor" in journey_page.text
        assert "Bilaga tillagd" in journey_page.text
        assert "Släppt för utskick" in journey_page.text
        assert "av api token &#39;ekonomi&#39;" in journey_page.text
        assert "Förslag godkänt" in journey_page.text
        assert "batch b-1001, fil nr 7" in journey_page.text
        assert "kostnad 0,85 SEK" in journey_page.text
        english = await client.get(f"/invoices/{invoice}", params={"lang": "en"})
        assert "Held for attachments" in english.text
        assert "Released from the hold" in english.text
        norwegian = await client.get("/delivery", params={"lang": "nb"})
        assert "Holdt tilbake" in norwegian.text
        books_page = await client.get("/books", params={"lang": "sv"})
        assert "<code>b-1003</code>" in books_page.text
        statistics = await client.get(
            "/statistics", params={"from": "2025-03-10", "to": "2025-03-10"}
        )
        assert "1 av dessa" in statistics.text


async def test_suggestions_and_holds_are_decided_by_commands_to_distribution_router(
    harness: ServiceHarness[Deps],
) -> None:
    """Accept, dismiss and Send now, in the API and on the Delivery page: each checked against
    the read model (the tenant's own, still open) and sent as one command that
    distribution-router carries out; another tenant's are none of this tenant's."""
    tenant, stranger = new_tenant(), new_tenant()
    await harness.tenant(tenant, tenant_profile("SE"))
    await harness.deliver(*journey(tenant, "1003"), *hold_events(tenant, "1003", released=False))
    await harness.deliver(*suggestion_events(tenant, "1003", suggestion_id=8, decision=None))
    await harness.deliver(*suggestion_events(tenant, "1004", suggestion_id=9, decision=None))
    await harness.deliver(*suggestion_events(tenant, "1001", suggestion_id=5))  # accepted
    with_clock(harness, BASE_TIME + dt.timedelta(hours=1))
    held = journey(tenant, "1003")[0].body.invoice_id
    token = await create_token(PgTokenRepository(harness.pool), tenant, operator=False, name="a")
    theirs = await create_token(PgTokenRepository(harness.pool), stranger, operator=False, name="b")

    async with harness.http(token=theirs) as api:
        assert (await api.post("/api/v1/suggestions/8/accept")).status_code == 404
        assert (await api.post(f"/api/v1/holds/{held}/release")).status_code == 404
    async with harness.http(token=token) as api:
        accepted = await api.post("/api/v1/suggestions/8/accept")
        assert accepted.status_code == 202, accepted.text
        assert (await api.post("/api/v1/suggestions/5/dismiss")).status_code == 409  # decided
        assert (await api.post("/api/v1/suggestions/77/accept")).status_code == 404
        released = await api.post(f"/api/v1/holds/{held}/release")
        assert released.status_code == 202, released.text
        assert (await api.post("/api/v1/holds/inv_none/release")).status_code == 404
        action = (await api.get(f"/api/v1/actions/{released.json()['action_id']}")).json()
    assert (action["service"], action["action"], action["outcome"]) == (
        "distribution-router",
        "release_hold",
        None,  # until distribution-router answers
    )
    commands = (await harness.emitted()).of(OperatorActionRequested)
    assert [(c.service, c.action, c.target_id, c.tenant_id) for c in commands] == [
        ("distribution-router", OperatorAction.ACCEPT_SUGGESTION, "8", tenant),
        ("distribution-router", OperatorAction.RELEASE_HOLD, held, tenant),
    ]

    async with harness.http() as client:
        assert (await client.post("/sign-in", data={"token": token})).status_code == 303
        page = await client.get("/delivery")
        assert 'action="/delivery/suggestions/9/dismiss"' in page.text
        assert 'action="/delivery/suggestions/5/' not in page.text  # decided: no buttons
        assert f'action="/delivery/holds/{held}/release"' in page.text
        assert "Skicka nu" in page.text
        csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        stale = await client.post("/delivery/suggestions/9/dismiss", data={"csrf": "x"})
        assert stale.status_code == 403
        dismissed = await client.post(
            "/delivery/suggestions/9/dismiss", data={"csrf": csrf, "tenant": tenant}
        )
        assert dismissed.status_code == 303
        shown = await client.get(dismissed.headers["location"])
        assert "distribution-router ombads att Avböj föreslagen kanal" in shown.text
        assert "väntar på distribution-router" in shown.text
    last = (await harness.emitted()).of(OperatorActionRequested)[-1]
    assert (last.action, last.target_id, last.requested_by) == (
        OperatorAction.DISMISS_SUGGESTION,
        "9",
        f"{tenant}:a",
    )
