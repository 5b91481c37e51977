"""Invoices through all five services: every stage exactly once, also across crashes and
duplicate delivery. Everything is real: Kafka, PostgreSQL, the services as processes. The
factoring transfer runs on demand while a test waits (its daily window is hours away), and
the factor sandbox counts what it received."""

import asyncio
import random
import signal

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from nordflow_local import deliveries, journey
from nordflow_local.factoring import factor_invoices, transfers_on_demand
from nordflow_local.provision import Tenant, provision_tenant
from nordflow_local.samples import (
    CUSTOMERS,
    SandboxWriter,
    create_invoices,
    register_peppol_recipients,
)
from nordflow_runtime.kafka import topic_partitions

pytestmark = [pytest.mark.e2e]
ONCE = ("invoice.created", "invoice.transferred", "invoice.distributed", "ledger.entry.posted")
GROUPS = {
    "erp.document.fetched": ["mapper"],
    "invoice.created": ["factoring-gateway", "distribution-router"],
    "invoice.transferred": ["ledger-closer"],
}


async def wait_complete(stack, tenant_id, expected, timeout):
    """Until ``expected`` invoices are posted back, asking for transfer runs meanwhile; on
    timeout, show the services' logs."""
    env = stack.env()
    try:
        async with transfers_on_demand(env, [tenant_id]):
            return await journey.wait_for(
                env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id, complete(expected), timeout=timeout
            )
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{log_tails(stack)}") from exc


def log_tails(stack, lines: int = 15) -> str:
    """The last lines of each service's log, for a failure message."""
    tails = []
    for name in (
        "erp-poller",
        "mapper",
        "factoring-gateway",
        "distribution-router",
        "ledger-closer",
    ):
        text = stack.log_path(name).read_text(errors="replace").splitlines()[-lines:]
        tails.append(f"--- {name}\n" + "\n".join(text))
    return "\n".join(tails)


def complete(expected: int):
    """Posted back into the ERP and sent to the buyer (two independent branches). An e-mail
    whose send was cut by a crash ends as uncertain: SMTP cannot be asked, so it is not resent.
    """

    def check(journeys: dict[str, journey.Journey]) -> bool:
        done = [
            j
            for j in journeys.values()
            if j.count("ledger.entry.posted")
            and (j.count("invoice.distributed") or j.count("invoice.delivery_uncertain"))
        ]
        return len(done) >= expected

    return check


async def payments(env: dict[str, str], token: str) -> dict[str, list[dict]]:
    """Every payment in the tenant's sandbox ERP, by invoice number (within its rate limit)."""
    out: dict[str, list[dict]] = {}
    writer = SandboxWriter(env["SANDBOX_FORTNOX_URL"], token)
    try:
        page = 1
        while True:
            body = await writer.call("GET", f"invoicepayments?page={page}&limit=500")
            for p in body["InvoicePayments"]:
                out.setdefault(str(p["InvoiceNumber"]), []).append(p)
            if page >= int(body["MetaInformation"]["@TotalPages"]):
                return out
            page += 1
    finally:
        await writer.aclose()


async def assert_exactly_once(journeys, numbers, env, tenant: Tenant):
    """Every stage once in Kafka, one payment in the ERP, one document at the partner, each
    invoice once at the factor."""
    by_number = {j.number: j for j in journeys.values()}
    assert set(numbers) <= set(by_number), f"missing: {set(numbers) - set(by_number)}"
    erp = await payments(env, tenant.fortnox_token)
    assert tenant.factor is not None
    at_factor = await asyncio.to_thread(factor_invoices, env, tenant.factor.token)
    for number in numbers:
        assert at_factor.get(number) == 1, (
            f"invoice {number}: {at_factor.get(number)} x at the factor"
        )
    at_partner = await deliveries.received(env)
    for number in numbers:
        j = by_number[number]
        got = at_partner.get(j.invoice_id, [])
        if j.count("invoice.delivery_uncertain"):
            assert j.count("invoice.distributed") == 0
            assert len(got) <= 1, f"invoice {number}: uncertain, yet sent twice: {got}"
            continue
        sent = j.first("invoice.distributed")
        assert [(r.channel, r.reference) for r in got] == [
            (sent["channel"], sent["partner_reference"])
        ], f"invoice {number}: sent {sent['channel']} {sent['partner_reference']}, partner {got}"
    for number in numbers:
        j = by_number[number]
        uncertain = j.count("invoice.delivery_uncertain") == 1
        for topic in ONCE:
            if topic == "invoice.distributed" and uncertain:
                continue
            assert j.count(topic) == 1, f"invoice {number}: {j.count(topic)} x {topic}"
        assert j.count("invoice.rejected") == 0
        posted = j.first("ledger.entry.posted")
        transferred = j.first("invoice.transferred")
        assert posted["amount"] == transferred["amount"]
        assert transferred["file_serial"] >= 1
        assert transferred["payment_reference"]
        assert j.count("invoice.factoring_decided") == 1
        assert len(erp.get(number, [])) == 1, f"invoice {number}: ERP has {erp.get(number)}"
        assert str(erp[number][0]["Number"]) == posted["erp_reference"]


async def wait_for_no_lag(stack, bootstrap: str, timeout: float = 60.0) -> None:
    """Until every consumer group has committed up to the end of its topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await probe.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            lagging = []
            for topic, groups in GROUPS.items():
                tps = await topic_partitions(probe, [topic])
                ends = await probe.end_offsets(tps)
                for group in groups:
                    committed = await admin.list_consumer_group_offsets(group, partitions=tps)
                    for tp in tps:
                        meta = committed.get(tp)
                        # -1 means nothing committed yet, which is no lag on an empty partition.
                        if max(meta.offset if meta else 0, 0) < ends[tp]:
                            lagging.append((group, tp))
            if not lagging:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"still lagging: {lagging[:5]}\n{log_tails(stack)}")
            await asyncio.sleep(0.5)
    finally:
        await probe.stop()
        await admin.close()


async def test_invoices_reach_every_stage_exactly_once(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    numbers = await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        12,
        bad=1,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )
    journeys = await wait_complete(nordflow_stack, tenant_id, 12, 180)
    await assert_exactly_once(journeys, numbers[:12], env, tenant)
    rejected = [j for j in journeys.values() if j.count("invoice.rejected")]
    assert len(rejected) == 1
    errors = rejected[0].first("invoice.rejected")["errors"]
    assert any(e["field"] == "buyer.company_id" and e["rule"] == "NF-ORGNR" for e in errors)
    channels = {
        j.first("invoice.distributed")["channel"]
        for j in journeys.values()
        if j.count("invoice.distributed")
    }
    assert channels == {"peppol", "email", "b2c_bank", "paper"}
    # One trace per invoice: every step after the fetch continues the fetch's trace.
    for j in journeys.values():
        if j.count("ledger.entry.posted"):
            traces = {topic: j.traces[topic] for topic in ONCE}
            assert all(len(ids) == 1 for ids in traces.values()), traces
            assert len(set().union(*traces.values())) == 1, traces
            assert traces["invoice.created"] <= j.traces["erp.document.fetched"]


@pytest.mark.parametrize(
    "victim", ["mapper", "ledger-closer", "erp-poller", "distribution-router", "factoring-gateway"]
)
async def test_a_service_killed_mid_stream_loses_and_doubles_nothing(
    nordflow_stack, tenant_id, victim
):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    numbers = await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        15,
        seed=11,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )

    def some_progress(journeys):
        return any(j.count("invoice.created") for j in journeys.values())

    async with transfers_on_demand(env, [tenant_id], every=0.5):
        await journey.wait_for(
            env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id, some_progress, timeout=120, interval=0.2
        )
    assert nordflow_stack.stop_service(victim, sig=signal.SIGKILL)
    await asyncio.sleep(1.0)
    nordflow_stack.start_service(victim)
    journeys = await wait_complete(nordflow_stack, tenant_id, 15, 240)
    await assert_exactly_once(journeys, numbers, env, tenant)


async def test_every_record_delivered_twice_changes_nothing(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    tenant = provision_tenant(env, tenant_id)
    numbers = await create_invoices(
        tenant.fortnox_url, tenant.fortnox_token, 8, seed=5, smp_url=env.get("SANDBOX_SMP_URL")
    )
    before = await wait_complete(nordflow_stack, tenant_id, 8, 180)
    await wait_for_no_lag(nordflow_stack, bootstrap)

    # Deliver every record of this tenant a second time, headers and all.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await consumer.start()
    await producer.start()
    copied = 0
    try:
        tps = await topic_partitions(consumer, list(GROUPS))
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if r.offset >= ends[TopicPartition(r.topic, r.partition)]:
                        continue
                    if dict(r.headers).get("ce_tenantid") == tenant_id.encode():
                        await producer.send(
                            r.topic, value=r.value, key=r.key, headers=list(r.headers)
                        )
                        copied += 1
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    assert copied >= 8 * 3
    await wait_for_no_lag(nordflow_stack, bootstrap)
    after = await journey.read_journeys(bootstrap, tenant_id)
    await assert_exactly_once(after, numbers, env, tenant)
    for invoice_id, j in before.items():
        for topic in ONCE:
            assert after[invoice_id].count(topic) == j.count(topic)


async def test_an_e_invoice_breaking_the_peppol_rules_is_not_sent(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    await register_peppol_recipients(env["SANDBOX_SMP_URL"])
    writer = SandboxWriter(tenant.fortnox_url, tenant.fortnox_token)
    try:
        customer = await writer.customer(CUSTOMERS[0])  # has a GLN registered in PEPPOL
        number = await writer.invoice(customer, random.Random(1), your_reference=None)
    finally:
        await writer.aclose()

    def failed(journeys):
        return any(j.count("invoice.delivery_failed") for j in journeys.values())

    journeys = await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id, failed, timeout=120
    )
    (j,) = [j for j in journeys.values() if j.number == number]
    body = j.first("invoice.delivery_failed")
    assert body["channel"] == "peppol"
    assert "PEPPOL-EN16931-R003" in {e["rule"] for e in body["errors"]}
    assert j.count("invoice.distributed") == 0
