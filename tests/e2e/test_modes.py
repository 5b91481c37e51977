"""Connection modes through the running system: manual flows on request, test writes nothing."""

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from nordflow_local import deliveries, journey
from nordflow_local.factoring import transfers_on_demand
from nordflow_local.provision import provision_tenant
from nordflow_local.samples import SandboxWriter, create_invoices

pytestmark = [pytest.mark.e2e]


def api_token(env: dict[str, str], tenant: str) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "erp-poller"), "tokens", "create", tenant],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


async def test_manual_mode_flows_only_what_a_user_asks_for(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    tenant = provision_tenant(env, tenant_id, mode="manual")
    numbers = await create_invoices(
        tenant.fortnox_url, tenant.fortnox_token, 4, seed=3, smp_url=env.get("SANDBOX_SMP_URL")
    )
    await asyncio.sleep(8)  # well over two poll intervals: nothing may flow by itself
    assert await journey.read_journeys(bootstrap, tenant_id) == {}

    auth = {"Authorization": f"Bearer {api_token(env, tenant_id)}"}
    url = f"{env['ERP_POLLER_URL']}/api/v1/connections/{tenant.connection_id}"
    async with httpx.AsyncClient(headers=auth) as http:
        request = (await http.post(f"{url}/sync", json={"limit": 2})).json()

        def two_posted(journeys):
            return sum(1 for j in journeys.values() if j.count("ledger.entry.posted")) == 2

        async with transfers_on_demand(env, [tenant_id]):
            journeys = await journey.wait_for(bootstrap, tenant_id, two_posted, timeout=120)
        status = (await http.get(f"{url}/sync/{request['request_id']}")).json()
    assert status["emitted"] == 2
    assert sorted(j.number for j in journeys.values()) == sorted(numbers[:2])


async def test_test_mode_maps_and_validates_but_writes_nowhere(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    tenant = provision_tenant(env, tenant_id, mode="test")
    await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        4,
        bad=1,
        seed=4,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )

    def all_mapped(journeys):
        done = [
            j
            for j in journeys.values()
            if j.count("invoice.created") or j.count("invoice.rejected")
        ]
        return len(done) == 5

    journeys = await journey.wait_for(bootstrap, tenant_id, all_mapped, timeout=120)
    await asyncio.sleep(5)  # time for any (wrong) downstream effect to show
    journeys = await journey.read_journeys(bootstrap, tenant_id)
    for j in journeys.values():
        for topic in ("erp.document.fetched", "invoice.created", "invoice.rejected"):
            for body in j.events.get(topic, {}).values():
                assert body["test_mode"] is True
        assert j.count("invoice.transferred") == 0
        decided = j.first("invoice.factoring_decided")
        assert decided is None or decided["eligible"] is False
        assert j.count("invoice.distributed") == 0
        assert j.count("ledger.entry.posted") == 0
    # Through the throttled writer: the poller shares the company's 25 calls per 5 s.
    writer = SandboxWriter(tenant.fortnox_url, tenant.fortnox_token)
    try:
        payments = await writer.call("GET", "invoicepayments")
    finally:
        await writer.aclose()
    assert payments["InvoicePayments"] == []
    # Four invoices, one per channel, yet no partner received anything of this tenant's.
    at_partner = await deliveries.received(env)
    assert len(journeys) == 5
    assert all(not at_partner.get(invoice_id) for invoice_id in journeys)
