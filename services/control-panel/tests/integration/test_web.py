"""The pages over HTTP on the real PostgreSQL: sign-in, sessions and form tokens, a tenant's
pages holding only its data, languages, live fragments and the security headers."""

from __future__ import annotations

import re

import httpx
import pytest
from control_panel.adapters.tokens import PgTokenRepository
from control_panel.deps import Deps
from control_panel.service.tokens import create_token
from control_panel.testing import dead_letter_record, job_failed, journey, rejected
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.events import OperatorActionRequested
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/sign-in", data={"token": token})
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert token not in cookie  # the cookie is a session id, never the token


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_pages_need_a_session_and_a_good_token(harness: ServiceHarness[Deps]) -> None:
    async with harness.http() as client:
        away = await client.get("/invoices")
        assert (away.status_code, away.headers["location"]) == (303, "/sign-in")
        page = await client.get("/sign-in")
        assert page.status_code == 200
        assert 'name="token"' in page.text
        refused = await client.post("/sign-in", data={"token": "nfcp_wrong"})
        assert refused.status_code == 401
        assert "unknown or revoked" in refused.text
        assert (await client.post("/sign-in", data={"token": ""})).status_code == 400
        static = await client.get("/static/htmx-2.0.11.min.js")
        assert static.status_code == 200
        assert static.headers["content-type"].startswith("text/javascript")
        assert (await client.get("/static/../config.py")).status_code == 404


async def test_a_tenant_sees_its_invoices_and_never_anothers(harness: ServiceHarness[Deps]) -> None:
    a, b = new_tenant(), new_tenant()
    await harness.tenant(a, tenant_profile("SE"))
    await harness.deliver(*journey(a, "1001"), *rejected(a, "1002"))
    await harness.deliver(*journey(b, "2001", customer="Hemlig AS"))
    token = await create_token(PgTokenRepository(harness.pool), a, operator=False, name="anna")
    async with harness.http() as client:
        await sign_in(client, token)
        page = await client.get("/invoices")
        assert page.status_code == 200
        assert "1001" in page.text
        assert "1002" in page.text
        assert "2001" not in page.text
        assert "Hemlig" not in page.text
        assert "Fakturor" in page.text  # the tenant's profile says Swedish
        for header in ("content-security-policy", "x-frame-options", "referrer-policy"):
            assert header in page.headers
        assert "script-src 'self'" in page.headers["content-security-policy"]
        b_invoice = journey(b, "2001")[0].body.invoice_id
        other = await client.get(f"/invoices/{b_invoice}")
        assert other.status_code == 404
        assert "Hemlig" not in other.text
        forbidden = await client.get("/invoices", params={"tenant": b})
        assert forbidden.status_code == 403
        rejected_id = rejected(a, "1002")[0].body.invoice_id
        journey_page = await client.get(f"/invoices/{rejected_id}")
        assert "Invoice.OrganisationNumber" in journey_page.text
        assert "NF-ORGNR" in journey_page.text
        assert "kundregistret i Fortnox" in journey_page.text  # the hint, in Swedish
        fragment = await client.get(f"/invoices/{rejected_id}", headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<section id="journey"')
        english = await client.get("/invoices", params={"lang": "en"})
        assert "<h1>Invoices</h1>" in english.text
        assert "nf_panel_lang=en" in english.headers["set-cookie"]
        bad = await client.get("/invoices", params={"from": "someday"})
        assert bad.status_code == 400
        assert "from: a date" in bad.text
        stats = await client.get("/statistics", params={"from": "2025-03-01", "to": "2025-03-31"})
        assert stats.status_code == 200
        assert "<svg" in stats.text
        for path in ("/connections", "/delivery", "/books", "/problems"):
            assert (await client.get(path)).status_code == 200, path


async def test_retry_needs_the_forms_token_and_sends_the_command(
    harness: ServiceHarness[Deps],
) -> None:
    a = new_tenant()
    invoice = journey(a, "1001")
    await harness.deliver(*invoice, job_failed(a, invoice[0].body.invoice_id, job_id=9))
    await harness.deliver_records([dead_letter_record(a, invoice[1])])
    token = await create_token(PgTokenRepository(harness.pool), a, operator=False, name="anna")
    async with harness.http() as client:
        await sign_in(client, token)
        problems = await client.get("/problems")
        assert "Fortnox refused the payment" in problems.text
        assert "Only an operator can replay it." in problems.text or "operatör" in problems.text
        stale = await client.post("/problems/jobs/ledger-closer/9/retry", data={"csrf": "x"})
        assert stale.status_code == 403
        assert not (await harness.emitted()).of(OperatorActionRequested)
        sent = await client.post(
            "/problems/jobs/ledger-closer/9/retry", data={"csrf": csrf_of(problems.text)}
        )
        assert sent.status_code == 303
        assert sent.headers["location"].startswith("/problems?requested=")
        [command] = (await harness.emitted()).of(OperatorActionRequested)
        assert (command.service, command.target_id) == ("ledger-closer", "9")
        follow = await client.get(sent.headers["location"])
        assert 'id="flash"' in follow.text
        out = await client.post("/sign-out", data={"csrf": csrf_of(follow.text)})
        assert out.status_code == 303
        assert (await client.get("/invoices")).status_code == 303


async def test_an_operator_sees_every_tenant_and_replays(harness: ServiceHarness[Deps]) -> None:
    a, b = new_tenant(), new_tenant()
    await harness.deliver(*journey(a, "1001"), *journey(b, "2001"))
    await harness.deliver_records([dead_letter_record(b, journey(b, "2001")[1])])
    token = await create_token(PgTokenRepository(harness.pool), None, operator=True, name="ops")
    async with harness.http() as client:
        await sign_in(client, token)
        page = await client.get("/invoices", params={"lang": "nb"})
        assert "1001" in page.text
        assert "2001" in page.text
        assert "Fakturaer" in page.text
        assert f'<option value="{b}"' in page.text
        narrowed = await client.get("/invoices", params={"tenant": b})
        assert "2001" in narrowed.text
        assert "1001" not in narrowed.text
        problems = await client.get("/problems")
        letter = re.search(r'action="(/problems/dead-letters/[^"]+/replay)"', problems.text)
        assert letter is not None
        sent = await client.post(
            letter.group(1).replace("&amp;", "&"), data={"csrf": csrf_of(problems.text)}
        )
        assert sent.status_code == 303, sent.text
        [command] = (await harness.emitted()).of(OperatorActionRequested)
        assert (command.service, command.tenant_id) == ("mapper", b)
