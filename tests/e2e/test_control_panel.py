"""The control panel beside the running pipeline: what it shows of real invoices is what the
topics carried, each step once, one trace per invoice, and nothing of another tenant; the
tenant's connection as erp-poller published it, and its Sync now carried out; a held
invoice's Send now carried out by distribution-router."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from nordflow_local import journey
from nordflow_local.factoring import transfers_on_demand
from nordflow_local.provision import provision_tenant
from nordflow_local.samples import create_invoices

pytestmark = [pytest.mark.e2e]
STEPS = (
    "erp.document.fetched",
    "invoice.created",
    "invoice.transferred",
    "invoice.distributed",
    "ledger.entry.posted",
)


def token(env: dict[str, str], *args: str, service: str = "control-panel") -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / service), "tokens", "create", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_the_panel_shows_each_journey_as_the_topics_told_it(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    numbers = await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        3,
        bad=1,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )

    def finished(journeys: dict[str, journey.Journey]) -> bool:
        booked = [j for j in journeys.values() if j.count("ledger.entry.posted")]
        return len(booked) >= 3 and any(j.count("invoice.rejected") for j in journeys.values())

    async with transfers_on_demand(env, [tenant_id]):
        journeys = await journey.wait_for(
            env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id, finished, timeout=180
        )
    mine = token(env, tenant_id, "--name", "e2e")
    stranger = token(env, "t-nobody-else", "--name", "e2e")
    url = env["CONTROL_PANEL_URL"]
    headers = {"Authorization": f"Bearer {mine}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            listed = (await client.get("/api/v1/invoices", params={"limit": 200})).json()
            statuses = {i["number"]: i["status"] for i in listed["items"]}
            if sum(s in ("booked", "closed") for s in statuses.values()) >= 3 and (
                "rejected" in statuses.values()
            ):
                break
            assert asyncio.get_running_loop().time() < deadline, statuses
            await asyncio.sleep(1)
        assert set(numbers[:3]) <= set(statuses)
        # The topics and the panel, compared once both have settled: a paid invoice is
        # fetched again (a new version) after its closing, so the counts are compared as
        # the topics tell them at that moment, each step at least once.
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            journeys = await journey.read_journeys(env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id)
            shown = {}
            for j in journeys.values():
                if j.count("ledger.entry.posted"):
                    shown[j.invoice_id] = (
                        await client.get(f"/api/v1/invoices/{j.invoice_id}")
                    ).json()
            differ = [
                (j.invoice_id, topic)
                for j in journeys.values()
                if j.invoice_id in shown
                for topic in STEPS
                if [s["kind"] for s in shown[j.invoice_id]["journey"]].count(topic)
                != j.count(topic)
            ]
            if not differ:
                break
            assert asyncio.get_running_loop().time() < deadline, differ
            await asyncio.sleep(1)
        assert len(shown) >= 3
        for j in journeys.values():
            if j.invoice_id not in shown:
                continue
            found = shown[j.invoice_id]
            kinds = [s["kind"] for s in found["journey"]]
            for topic in STEPS:
                assert kinds.count(topic) >= 1, (topic, kinds)
            assert kinds.count("invoice.created") == 1
            assert kinds.count("ledger.entry.posted") == 1
            # The first version's journey is one trace (a later version starts its own).
            first = {}
            for step in found["journey"]:
                first.setdefault(step["kind"], step["trace_id"])
            assert {first[topic] for topic in STEPS} == {found["trace_id"]}
            assert found["amount"] == j.first("invoice.created")["invoice"]["totals"]["payable"]
            refused = await client.get(
                f"/api/v1/invoices/{j.invoice_id}", headers={"Authorization": f"Bearer {stranger}"}
            )
            assert refused.status_code == 404
        bad = next(j for j in journeys.values() if j.count("invoice.rejected"))
        detail = (await client.get(f"/api/v1/invoices/{bad.invoice_id}")).json()
        assert detail["status"] == "rejected"
        assert any(
            e["field"] == "buyer.company_id" and e["rule"] == "NF-ORGNR" for e in detail["errors"]
        )
        page = await client.get("/sign-in")
        assert page.status_code == 200

        # The tenant's connection as erp-poller publishes it (connection.updated), and its
        # Sync now carried out by erp-poller (operator.action_requested / _completed).
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            listed = (await client.get("/api/v1/connections")).json()
            shown = {c["connection_id"]: c for c in listed}.get(tenant.connection_id)
            if shown is not None and shown["last_success_at"] is not None:
                break
            assert asyncio.get_running_loop().time() < deadline, listed
            await asyncio.sleep(1)
        assert (shown["system"], shown["mode"], shown["removed"]) == ("fortnox", "automatic", False)
        assert shown["last_poll_at"] is not None
        assert shown["last_error"] is None
        others = await client.get(
            "/api/v1/connections", headers={"Authorization": f"Bearer {stranger}"}
        )
        assert others.json() == []
        asked = await client.post(f"/api/v1/connections/{tenant.connection_id}/sync")
        assert asked.status_code == 202, asked.text
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            action = (await client.get(f"/api/v1/actions/{asked.json()['action_id']}")).json()
            if action["outcome"] is not None:
                break
            assert asyncio.get_running_loop().time() < deadline, action
            await asyncio.sleep(1)
        assert (action["service"], action["outcome"]) == ("erp-poller", "done"), action


async def settled(client: httpx.AsyncClient, action_id: str) -> dict:
    """The operator action once its service answered."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        action = (await client.get(f"/api/v1/actions/{action_id}")).json()
        if action["outcome"] is not None:
            return action
        assert asyncio.get_running_loop().time() < deadline, action
        await asyncio.sleep(1)


async def test_send_now_on_a_held_invoice_is_carried_out_by_distribution_router(
    nordflow_stack, tenant_id
):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    router = token(env, tenant_id, "--name", "e2e", service="distribution-router")
    async with httpx.AsyncClient(timeout=10) as http:
        policy = await http.put(
            f"{env['DISTRIBUTION_ROUTER_URL']}/api/v1/hold-policies",
            json={"enabled": True, "duration": "P1D"},
            headers={"Authorization": f"Bearer {router}"},
        )
    assert policy.status_code == 200, policy.text
    [number] = await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        1,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )
    mine = token(env, tenant_id, "--name", "e2e")
    url = env["CONTROL_PANEL_URL"]
    headers = {"Authorization": f"Bearer {mine}"}
    async with (
        transfers_on_demand(env, [tenant_id]),
        httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client,
    ):
        deadline = asyncio.get_running_loop().time() + 180
        while True:  # held for a day, as delivery.hold_updated told the panel
            holds = (await client.get("/api/v1/delivery")).json()["holds"]
            held = {h["number"]: h for h in holds}.get(number)
            if held is not None:
                break
            assert asyncio.get_running_loop().time() < deadline, holds
            await asyncio.sleep(1)
        invoice_id = held["invoice_id"]
        asked = await client.post(f"/api/v1/holds/{invoice_id}/release")
        assert asked.status_code == 202, asked.text
        action = await settled(client, asked.json()["action_id"])
        assert (action["service"], action["action"], action["outcome"]) == (
            "distribution-router",
            "release_hold",
            "done",
        ), action
        while True:  # released, as delivery.hold_updated told the panel
            holds = (await client.get("/api/v1/delivery")).json()["holds"]
            if invoice_id not in {h["invoice_id"] for h in holds}:
                break
            assert asyncio.get_running_loop().time() < deadline, holds
            await asyncio.sleep(1)
        again = await client.post(f"/api/v1/holds/{invoice_id}/release")
        assert again.status_code == 409, again.text

        journeys = await journey.wait_for(
            env["KAFKA_BOOTSTRAP_SERVERS"],
            tenant_id,
            lambda js: invoice_id in js and js[invoice_id].count("invoice.distributed"),
            timeout=120,
        )
    assert journeys[invoice_id].count("invoice.distributed") == 1
