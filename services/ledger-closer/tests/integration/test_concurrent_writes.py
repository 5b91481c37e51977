"""Jobs running at once against the Fortnox sandbox: writes through different connections
overlap (`WRITE_CONCURRENCY`), writes through one connection wait for each other, also in
two replicas, so no write is taken for another's."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from ledger_closer.adapters.repository import PgConnectionRepository
from ledger_closer.deps import Deps
from ledger_closer.domain import POST_ENTRY
from ledger_closer.testing import (
    app_for,
    payment_received,
    sandbox_invoice,
    sandbox_payments,
    source,
    write_connection,
)
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.jobs import JobWorker
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.fortnox.testing import (
    FaultSpec,
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration

INVOICED = dt.date(2026, 11, 2)  # before the payments' date


@pytest.fixture
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox() as running:
        yield running


@pytest.fixture
async def harness(database_url: str, key: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service on its own schema, with connections enough for jobs at once."""
    h = await ServiceHarness.start(
        app_for(database_url, encryption_key=key), database_url, pool_size=16
    )
    yield h
    await h.close()


def replica(harness: ServiceHarness[Deps]) -> JobWorker:
    """The post-entry worker as a replica of the service runs it (its settings' options)."""
    handler, options = harness.app.job_handlers[POST_ENTRY]
    app = harness.app
    return JobWorker(harness.pool, app.name, POST_ENTRY, handler, deps=harness.deps, **options)


async def paid(
    harness: ServiceHarness[Deps],
    box: SecretBox,
    sandbox: RunningFortnoxSandbox,
    company: SandboxCompany,
    number: str,
    amounts: list[Decimal],
) -> str:
    """A tenant connected to the company, with a payment of invoice ``number`` reported per
    amount (each a post-entry job); its connection id."""
    tenant = new_tenant()
    connection_id = f"{tenant}-fx"
    await PgConnectionRepository(harness.pool).save(
        write_connection(
            tenant, connection_id, base_url=sandbox.base_url, token_sealed=box.seal(company.token)
        )
    )
    invoice_id = f"inv_{number}"
    for n, amount in enumerate(amounts):
        await harness.publish(
            payment_received(
                tenant,
                invoice_id=invoice_id,
                source_ref=source(connection_id, number),
                payment_id=f"{tenant}-p{n}",
                amount=amount,
            )
        )
    return connection_id


async def payment_stored(sandbox: RunningFortnoxSandbox, company: SandboxCompany) -> None:
    """Once the company holds a payment (its counts, from the sandbox's admin API, which is
    not rate-limited)."""

    def payments() -> int:
        with sandbox.admin() as admin:
            return int(admin.stats(company.token)["payments"])

    while await asyncio.to_thread(payments) == 0:  # noqa: ASYNC110 - another process's state
        await asyncio.sleep(0.05)


def answered_late(seconds: float, *, after_commit: bool) -> FaultSpec:
    """The company's next payment answered ``seconds`` late (stored first, or not yet)."""
    return FaultSpec(
        status=None,
        count=1,
        path_prefix="/3/invoicepayments",
        method="POST",
        delay_seconds=seconds,
        after_commit=after_commit,
    )


async def test_two_replicas_write_two_equal_payments_of_one_invoice_both(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    """Two payments of the same amount on the same day, each job in its own replica. The ERP
    stores the first and answers it late; the second job starts meanwhile. Were the two
    writes not one after the other, the second would find the first's payment (same amount,
    date and account), not yet recorded as another entry's, and adopt it as an earlier
    attempt of its own: two payments reported, one in the books."""
    company = sandbox.create_company()
    number, total = sandbox_invoice(sandbox.base_url, company.headers, invoice_date=INVOICED)
    with sandbox.admin() as admin:
        admin.inject_fault(company.token, answered_late(2.0, after_commit=True))
    half = total / 2
    await paid(harness, box, sandbox, company, number, [half, half])
    replicas = [replica(harness), replica(harness)]

    first = asyncio.create_task(replicas[0].run_one())
    async with asyncio.timeout(30):
        await payment_stored(sandbox, company)
        # Its answer is still on the way.
        second = asyncio.create_task(replicas[1].run_one())
        assert await first
        assert await second

    payments = sandbox_payments(sandbox.base_url, company.headers, number)
    assert [Decimal(str(p["Amount"])) for p in payments] == [half, half]
    entries = await harness.pool.fetch("SELECT erp_reference, adopted FROM entries")
    assert sorted(e["erp_reference"] for e in entries) == sorted(str(p["Number"]) for p in payments)
    assert not any(e["adopted"] for e in entries)
    assert {j["state"] for j in await harness.jobs()} == {"done"}


async def test_jobs_of_different_connections_write_at_once(
    sandbox: RunningFortnoxSandbox, harness: ServiceHarness[Deps], box: SecretBox
) -> None:
    """Three tenants' payments, each ERP answering 1 s late: one replica writes through
    several connections at the same time (each write holds its connection's lock)."""
    connections = []
    for _ in range(3):
        company = sandbox.create_company()
        number, total = sandbox_invoice(sandbox.base_url, company.headers, invoice_date=INVOICED)
        with sandbox.admin() as admin:
            admin.inject_fault(company.token, answered_late(1.0, after_commit=False))
        connection_id = await paid(harness, box, sandbox, company, number, [total])
        connections.append((connection_id, company, number, total))
    worker = replica(harness)
    assert worker.concurrency > 1  # WRITE_CONCURRENCY's default

    running = asyncio.create_task(worker.run())
    most = 0
    try:
        async with asyncio.timeout(60):
            while {j["state"] for j in await harness.jobs()} != {"done"}:
                # The write locks held now, of these connections (an advisory lock's key is
                # its classid's and objid's bits).
                held = await harness.pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND ((classid::bigint << 32) | objid::bigint) = ANY(SELECT "
                    "hashtextextended('ledger-closer:write:' || c, 0) FROM unnest($1::text[]) c)",
                    [c[0] for c in connections],
                )
                most = max(most, held)
                await asyncio.sleep(0.02)
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    assert most >= 2
    for _, company, number, total in connections:
        [payment] = sandbox_payments(sandbox.base_url, company.headers, number)
        assert Decimal(str(payment["Amount"])) == total
