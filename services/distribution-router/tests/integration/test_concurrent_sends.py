"""Send jobs run several at a time (at most N of one tenant), documents are rendered and
validated in renderer processes, no database lock is held while a partner works, and still
every invoice reaches its partner exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from distribution_router.app import create_app
from distribution_router.deps import renderer_processes
from distribution_router.domain.sending import Outgoing, Receipt
from distribution_router.testing import FakeSender, Registered, send_worker, start_harness
from distribution_router.testing.invoices import GLN, company, created_event
from nordflow_runtime.jobs import JobWorker
from nordflow_schemas.events import Channel, Flow, InvoiceDistributed

pytestmark = pytest.mark.integration


class SlowSender(FakeSender):
    """A partner that takes a while to answer, and counts how many calls overlap."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.at_once = 0
        self.most_at_once = 0
        self.per_tenant: dict[str, int] = {}
        self.most_per_tenant = 0

    async def send(self, outgoing: Outgoing) -> Receipt:
        self.at_once += 1
        tenant = outgoing.tenant_id
        self.per_tenant[tenant] = self.per_tenant.get(tenant, 0) + 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        self.most_per_tenant = max(self.most_per_tenant, self.per_tenant[tenant])
        try:
            await asyncio.sleep(0.05)
            return await super().send(outgoing)
        finally:
            self.at_once -= 1
            self.per_tenant[tenant] -= 1


async def test_sends_overlap_per_tenant_bounded_each_exactly_once(database_url: str) -> None:
    peppol = SlowSender(Channel.PEPPOL)
    harness = await start_harness(
        database_url,
        senders={Channel.PEPPOL: peppol},
        lookup=Registered(GLN),
        processes=renderer_processes(2),
        pool_size=2 * 6 + 2,  # each running send holds up to two connections
    )
    try:
        tenants = ["t-conc-a", "t-conc-b", "t-conc-c"]
        events = [
            created_event(company(gln=True), tenant=tenants[i % 3]).model_copy(
                update={"flow": Flow(factor=False)}
            )
            for i in range(24)
        ]
        for event in events:
            await harness.publish(event)  # routed: rendered and validated in the processes
        handler, options = harness.app.job_handlers["send-invoice"]
        options: dict[str, Any] = {**options, "concurrency": 6, "per_tenant": 2}
        worker = JobWorker(
            harness.pool, harness.app.name, "send-invoice", handler, deps=harness.deps, **options
        )
        running = asyncio.create_task(worker.run())
        try:
            # Until every send is committed, not just taken by the partner: a job cancelled
            # between the two rolls back, and its invoice.distributed with it.
            for _ in range(300):
                sent = await harness.pool.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status = 'sent'"
                )
                if sent == len(events):
                    break
                await asyncio.sleep(0.1)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        states = await harness.pool.fetch("SELECT status, count(*) FROM deliveries GROUP BY 1")
        jobs = await harness.pool.fetch("SELECT state, last_error FROM jobs LIMIT 3")
        assert len(peppol.received) == len(events), (states, jobs)
        assert peppol.calls == len(events)  # once each
        assert 1 < peppol.most_at_once <= 6
        assert peppol.most_per_tenant <= 2
        distributed = (await harness.emitted()).of(InvoiceDistributed)
        assert sorted(d.invoice_id for d in distributed) == sorted(e.invoice_id for e in events)
    finally:
        await harness.close()


class HeldSender(FakeSender):
    """A partner that answers only when told to."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self.called = asyncio.Event()
        self.answer = asyncio.Event()

    async def send(self, outgoing: Outgoing) -> Receipt:
        self.called.set()
        await self.answer.wait()
        return await super().send(outgoing)


async def test_no_database_lock_is_held_while_the_partner_works(database_url: str) -> None:
    peppol = HeldSender(Channel.PEPPOL)
    harness = await start_harness(
        database_url, senders={Channel.PEPPOL: peppol}, lookup=Registered(GLN)
    )
    try:
        event = created_event(company(gln=True)).model_copy(update={"flow": Flow(factor=False)})
        await harness.publish(event)
        running = asyncio.create_task(send_worker(harness).run_one())
        await asyncio.wait_for(peppol.called.wait(), 30)
        # While the partner works, the delivery's and the job's rows are free: an operator's
        # change or another replica's claim never waits for a partner.
        async with harness.pool.acquire() as conn, conn.transaction():
            assert (
                await conn.fetchval(
                    "SELECT status FROM deliveries WHERE invoice_id = $1 FOR UPDATE NOWAIT",
                    event.invoice_id,
                )
                == "scheduled"
            )
            job = await conn.fetchrow(
                "SELECT state, due_at > now() AS leased FROM jobs WHERE job_key = $1 "
                "FOR UPDATE NOWAIT",
                event.invoice_id,
            )
            assert (job["state"], job["leased"]) == ("running", True)
            assert (
                await conn.fetchval(
                    "SELECT state FROM delivery_attempts WHERE invoice_id = $1", event.invoice_id
                )
                == "sending"  # committed before the call
            )
        assert not await send_worker(harness).run_one()  # the lease keeps other runs away
        peppol.answer.set()
        assert await asyncio.wait_for(running, 30)
        row = await harness.pool.fetchrow(
            "SELECT d.status, j.state, j.lease FROM deliveries d JOIN jobs j "
            "ON j.job_key = d.invoice_id WHERE d.invoice_id = $1",
            event.invoice_id,
        )
        assert (row["status"], row["state"], row["lease"]) == ("sent", "done", None)
        assert peppol.calls == 1
        [distributed] = (await harness.emitted()).of(InvoiceDistributed)
        assert distributed.invoice_id == event.invoice_id
    finally:
        await harness.close()


def test_the_service_renders_in_processes_by_default() -> None:
    settings: dict[str, Any] = {
        "kafka_bootstrap_servers": "unused:9092",
        "database_url": "postgresql://unused",
    }
    app = create_app(__import__("distribution_router.config").config.Settings(**settings))
    _, options = app.job_handlers["send-invoice"]
    assert options["concurrency"] > 1
    assert app.settings.render_processes > 0  # type: ignore[attr-defined]
