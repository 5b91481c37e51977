"""factoring-gateway on the real PostgreSQL against the factor sandbox over real SFTP and
HTTPS: decisions through the consumer, runs and windows as durable jobs, each file at the
factor once (also after lost answers, dropped connections and late receipts), refusals and
resubmissions, due-date changes, settlements; the repositories' guarantees."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from factoring_gateway.adapters.repositories import PgAgreementRepository, PgBatchRepository
from factoring_gateway.deps import Deps
from factoring_gateway.domain.agreements import Agreement, Transfer, TransferMethod
from factoring_gateway.domain.batches import BatchState
from factoring_gateway.domain.transfer import TransferSecret
from factoring_gateway.service.agreements import set_agreement
from factoring_gateway.service.ports import RUN_JOB, UPLOAD_JOB, WINDOW_JOB
from factoring_gateway.service.transfers import (
    request_resubmit,
    request_runs,
    request_settlements,
)
from factoring_gateway.testing import agreement, sample_invoice
from nordflow_runtime.jobs import schedule
from nordflow_runtime.testing import Emitted, ServiceHarness
from nordflow_sandboxes.factor.testing import FactorClient, RunningFactorSandbox
from nordflow_sandboxes.kit.testing import FaultSpec
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import (
    InvoiceCreated,
    InvoiceFactoringDecided,
    InvoiceTransferFailed,
    InvoiceTransferred,
    InvoiceUpdated,
    PaymentReceived,
)
from nordflow_schemas.testing import new_tenant, tenant_profile

pytestmark = pytest.mark.integration


def sftp_agreement(
    tenant: str, factor: RunningFactorSandbox, client: FactorClient, **kw: Any
) -> Agreement:
    transfer = Transfer(
        method=TransferMethod.SFTP,
        host="127.0.0.1",
        port=factor.sftp_port,
        username=client.sftp_username,
        host_key=factor.host_key,
    )
    return agreement(tenant, client_number=client.client_number, transfer=transfer, **kw)


def https_agreement(
    tenant: str, factor: RunningFactorSandbox, client: FactorClient, **kw: Any
) -> Agreement:
    transfer = Transfer(method=TransferMethod.HTTPS, base_url=factor.api_url)
    return agreement(tenant, client_number=client.client_number, transfer=transfer, **kw)


async def store(harness: ServiceHarness[Deps], a: Agreement, secret: TransferSecret) -> None:
    deps = harness.deps
    async with harness.pool.acquire() as conn, conn.transaction():
        await set_agreement(
            deps.repositories(conn),
            deps.formats,
            deps.sealer,
            a,
            secret,
            deps.clock(),
        )


async def sftp_tenant(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> tuple[str, FactorClient]:
    """A new tenant with a client account at the factor and an agreement over SFTP."""
    tenant = new_tenant()
    client = factor.create_client(client_number="1234")
    await store(
        harness,
        sftp_agreement(tenant, factor, client),
        TransferSecret(password=client.sftp_password),
    )
    return tenant, client


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def offer(harness: ServiceHarness[Deps], tenant: str, *numbers: str) -> list[str]:
    """invoice.created through the consumer (in trace TRACE_ID); the decisions' invoices."""
    ids = []
    for number in numbers:
        invoice = sample_invoice(tenant, number, issue_date=dt.date.today())
        body = InvoiceCreated(
            tenant_id=tenant, invoice_id=invoice.invoice_id, version="v1", invoice=invoice
        )
        created = dataclasses.replace(
            envelope(body, source="/mapper", subject=number),
            traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        )
        out = await harness.deliver(created)
        [decided] = out.of(InvoiceFactoringDecided)
        assert decided.eligible, decided.reason
        ids.append(invoice.invoice_id)
    return ids


async def run_now(harness: ServiceHarness[Deps], tenant: str) -> Emitted:
    """An on-demand run, then every upload (retries made due at once) until none waits."""
    async with harness.pool.acquire() as conn, conn.transaction():
        await request_runs(harness.deps.repositories(conn), tenant, None, harness.deps.clock())
    return await drain(harness)


async def drain(harness: ServiceHarness[Deps], rounds: int = 10) -> Emitted:
    emitted = Emitted()
    for _ in range(rounds):
        out = await harness.run_jobs([RUN_JOB, UPLOAD_JOB], include_future=True)
        emitted.events += out.events
        pending = [j for j in await harness.jobs(UPLOAD_JOB) if j["state"] == "pending"]
        if not pending:
            return emitted
    raise AssertionError(f"uploads still pending: {[dict(j) for j in pending]}")


def received(factor: RunningFactorSandbox, client: FactorClient) -> list[dict[str, Any]]:
    with factor.admin() as admin:
        return admin.files(client.token)


@pytest.mark.parametrize("method", ["sftp", "https"])
async def test_invoices_reach_the_factor_once_and_transfers_follow_the_receipt(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox, method: str
) -> None:
    tenant = new_tenant()
    await harness.tenant(tenant, tenant_profile("NO"))
    client = factor.create_client(client_number="1234")
    if method == "sftp":
        await store(
            harness,
            sftp_agreement(tenant, factor, client),
            TransferSecret(password=client.sftp_password),
        )
    else:
        await store(
            harness, https_agreement(tenant, factor, client), TransferSecret(token=client.token)
        )
    ids = await offer(harness, tenant, "5067", "5068")

    out = await run_now(harness, tenant)

    transferred = out.of(InvoiceTransferred)
    assert sorted(t.invoice_id for t in transferred) == sorted(ids)
    # Each invoice's journey stays one trace: its transfer continues its creation's trace.
    assert {(e.traceparent or "").split("-")[1] for e in out.events} == {TRACE_ID}
    assert {t.file_serial for t in transferred} == {1}
    assert all(t.batch_id and t.payee and t.payment_reference for t in transferred)
    [file] = received(factor, client)
    assert (file["serial"], file["status"], file["invoices"], file["via"]) == (
        1,
        "accepted",
        2,
        method,
    )
    batch = await PgBatchRepository(harness.pool).get(transferred[0].batch_id or "")
    assert batch is not None
    assert batch.state.value == "transferred"
    assert batch.files[0].receipt  # the factor's receipt is kept
    assert (await run_now(harness, tenant)).events == []  # nothing left
    assert len(received(factor, client)) == 1


async def test_a_lost_https_answer_is_looked_up_not_sent_again(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant = new_tenant()
    client = factor.create_client(client_number="1234")
    await store(
        harness, https_agreement(tenant, factor, client), TransferSecret(token=client.token)
    )
    await offer(harness, tenant, "5067")
    with factor.admin() as admin:  # the factor stores the file, the answer is a 503
        admin.inject_fault(
            client.token,
            FaultSpec(status=503, path_prefix="/api/v1/files", method="POST", after_commit=True),
        )
    out = await run_now(harness, tenant)
    assert len(out.of(InvoiceTransferred)) == 1
    assert len(received(factor, client)) == 1
    [upload] = await harness.jobs(UPLOAD_JOB)
    assert upload["attempts"] == 2


async def test_a_dropped_sftp_connection_and_a_late_receipt_send_each_file_once(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant, client = await sftp_tenant(harness, factor)
    await offer(harness, tenant, "5067")
    with factor.admin() as admin:
        admin.sftp_fault(client.token, action="drop_connection", stage="upload", after_bytes=100)
        admin.sftp_fault(client.token, action="delay", stage="receipt", delay_seconds=4)
    out = await run_now(harness, tenant)
    assert len(out.of(InvoiceTransferred)) == 1
    assert [f["status"] for f in received(factor, client)] == ["accepted"]
    attempts = await harness.pool.fetch("SELECT state FROM upload_attempts ORDER BY attempt")
    assert [a["state"] for a in attempts] == ["absent", "received"]


async def test_an_sftp_server_that_stops_answering_holds_no_upload(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    # The factor renames the file, then does not answer for ten minutes. Each SFTP request
    # waits at most TRANSFER_TIMEOUT_SECONDS (5 s here): the attempt ends as a transient
    # error, and the next one finds the file at the factor instead of sending it again.
    # (Before, the job waited for the answer, its transaction open, for the ten minutes.)
    tenant, client = await sftp_tenant(harness, factor)
    await offer(harness, tenant, "5067")
    with factor.admin() as admin:
        admin.sftp_fault(client.token, action="delay", stage="rename", delay_seconds=600)
    out = await run_now(harness, tenant)
    assert len(out.of(InvoiceTransferred)) == 1
    assert [f["status"] for f in received(factor, client)] == ["accepted"]
    [upload] = await harness.jobs(UPLOAD_JOB)
    assert upload["attempts"] == 2
    assert any("TimeoutError" in r.getMessage() for r in caplog.records)
    attempts = await harness.pool.fetch("SELECT state FROM upload_attempts ORDER BY attempt")
    assert [a["state"] for a in attempts] == ["received"]


async def test_a_refused_file_fails_its_invoices_and_the_corrected_batch_takes_the_next_serial(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant, client = await sftp_tenant(harness, factor)
    [invoice_id] = await offer(harness, tenant, "5067")
    with factor.admin() as admin:
        admin.refuse(client.token, "debtor 100017 is blocked", code="E042")
    out = await run_now(harness, tenant)
    [failed] = out.of(InvoiceTransferFailed)
    assert failed.reason == "E042: debtor 100017 is blocked"
    assert failed.file_serial == 1
    assert out.of(InvoiceTransferred) == []

    async with harness.pool.acquire() as conn, conn.transaction():
        await request_resubmit(
            harness.deps.repositories(conn), tenant, failed.batch_id or "", harness.deps.clock()
        )
    again = await drain(harness)
    [ok] = again.of(InvoiceTransferred)
    assert (ok.invoice_id, ok.file_serial) == (invoice_id, 2)
    assert [(f["serial"], f["status"]) for f in received(factor, client)] == [
        (1, "refused"),
        (2, "accepted"),
    ]


async def test_a_due_date_moved_after_transfer_reaches_the_factor_once(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant, client = await sftp_tenant(harness, factor)
    [invoice_id] = await offer(harness, tenant, "5067")
    await run_now(harness, tenant)
    invoice = sample_invoice(tenant, "5067", issue_date=dt.date.today())
    moved = invoice.model_copy(update={"due_date": invoice.issue_date + dt.timedelta(days=45)})
    update = InvoiceUpdated(tenant_id=tenant, invoice_id=invoice_id, version="v2", invoice=moved)
    await harness.publish(update)
    await harness.publish(update)  # another copy: the same version, nothing new
    await run_now(harness, tenant)
    files = received(factor, client)
    assert [f["serial"] for f in files] == [1, 2]
    with factor.admin() as admin:
        content = admin.client.get(
            f"/sandbox/files/{files[1]['id']}/content",
            headers={"Authorization": f"Bearer {client.token}"},
        ).content
    assert f"<NewDueDate>{moved.due_date}</NewDueDate>".encode() in content
    await run_now(harness, tenant)
    assert len(received(factor, client)) == 2


async def test_settlements_from_the_factor_become_payments(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant, client = await sftp_tenant(harness, factor)
    [invoice_id] = await offer(harness, tenant, "5067")
    await run_now(harness, tenant)
    with factor.admin() as admin:
        admin.settle(client.token, fee_percent=1.5, paid_on="2025-04-09")
        admin.settle(
            client.token,
            lines=[
                {
                    "invoice_number": "9999",
                    "currency": "NOK",
                    "amount_minor": 500,
                    "paid_on": "2025-04-09",
                }
            ],
        )
    async with harness.pool.acquire() as conn, conn.transaction():
        await request_settlements(
            harness.deps.repositories(conn), tenant, None, harness.deps.clock()
        )
    out = await harness.run_jobs(["factoring-settlements"])
    [payment] = out.of(PaymentReceived)
    assert (payment.invoice_id, payment.amount, payment.fee_amount) == (
        invoice_id,
        Decimal("11875.00"),
        Decimal("178.13"),
    )
    assert payment.source.document_id == "5067"
    unmatched = await harness.pool.fetch(
        "SELECT invoice_number FROM settlement_lines WHERE state = 'unmatched'"
    )
    assert [r["invoice_number"] for r in unmatched] == ["9999"]


async def test_the_window_job_runs_once_even_with_two_workers_racing(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox
) -> None:
    tenant, _ = await sftp_tenant(harness, factor)
    await offer(harness, tenant, "5067", "5068", "5069")
    agreement_id = f"{tenant}-factor"
    [timer] = [j for j in await harness.jobs(WINDOW_JOB) if j["tenant_id"] == tenant]
    assert timer["job_key"].startswith(f"window:{agreement_id}:")
    await harness.pool.execute("UPDATE jobs SET due_at = now() WHERE id = $1", timer["id"])
    # A second timer for the same window (as a duplicate scheduling would make) and two
    # workers at once: one window row, one batch.
    await harness.pool.execute(
        "INSERT INTO jobs (kind, job_key, tenant_id, payload, due_at) "
        "SELECT kind, job_key || ':copy', tenant_id, payload, now() FROM jobs WHERE id = $1",
        timer["id"],
    )
    await asyncio.gather(harness.run_jobs([WINDOW_JOB]), harness.run_jobs([WINDOW_JOB]))
    batches = await harness.pool.fetch("SELECT serial FROM batches WHERE tenant_id = $1", tenant)
    assert [b["serial"] for b in batches] == [1]
    [window] = await harness.pool.fetch(
        "SELECT * FROM windows WHERE agreement_id = $1", agreement_id
    )
    assert (window["batches"], window["invoices"]) == (1, 3)
    timers = [
        j
        for j in await harness.jobs(WINDOW_JOB)
        if j["state"] == "pending" and j["tenant_id"] == tenant
    ]
    assert len(timers) == 1
    assert timers[0]["due_at"] > dt.datetime.now(dt.UTC)


async def test_serials_stay_gapless_under_concurrent_allocation_and_rollbacks(
    harness: ServiceHarness[Deps],
) -> None:
    agreement_id = f"agr-{uuid.uuid4().hex[:8]}"

    async def allocate(commit: bool) -> int:
        async with harness.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            serial = await PgBatchRepository(conn).next_serial(agreement_id)
            await asyncio.sleep(0.05)
            await (tx.commit() if commit else tx.rollback())
            return serial

    results = await asyncio.gather(*(allocate(commit=n % 3 != 0) for n in range(9)))
    kept = await harness.pool.fetchval(
        "SELECT last_serial FROM file_serials WHERE agreement_id = $1", agreement_id
    )
    assert kept == 6  # every committed allocation, none lost to a rollback
    assert len(results) == 9


async def test_an_invoice_is_in_at_most_one_live_batch(harness: ServiceHarness[Deps]) -> None:
    await harness.pool.execute(
        "INSERT INTO batches (batch_id, tenant_id, agreement_id, serial, kind, trigger, state, "
        "created_at) VALUES ('b1', 't', 'a', 1, 'invoices', 'window', 'recorded', now()), "
        "('b2', 't', 'a', 2, 'invoices', 'window', 'recorded', now())"
    )
    insert = (
        "INSERT INTO batch_invoices (batch_id, invoice_id, line, number, amount, currency, fee) "
        "VALUES ($1, 'inv-1', 1, '1', 1, 'SEK', 0)"
    )
    await harness.pool.execute(insert, "b1")
    with pytest.raises(asyncpg.UniqueViolationError):
        await harness.pool.execute(insert, "b2")
    await PgBatchRepository(harness.pool).finish(
        "b1", BatchState.REFUSED, dt.datetime.now(dt.UTC), "x"
    )
    await harness.pool.execute(insert, "b2")  # a refused batch frees its invoices


async def test_agreements_round_trip_and_the_secret_is_sealed(
    harness: ServiceHarness[Deps], factor: RunningFactorSandbox, key: str
) -> None:
    tenant = new_tenant()
    client = factor.create_client()
    a = sftp_agreement(tenant, factor, client, payment_methods=frozenset({"FACT"}))
    await store(harness, a, TransferSecret(password="very-secret-password"))
    stored = await PgAgreementRepository(harness.pool).get(a.agreement_id)
    assert stored is not None
    assert stored.agreement == a
    raw = await harness.pool.fetchval(
        "SELECT terms::text || encode(sealed_secret, 'escape') FROM agreements "
        "WHERE agreement_id = $1",
        a.agreement_id,
    )
    assert "very-secret-password" not in raw
    # Replaced without a secret: the stored one is kept.
    await store(harness, dataclasses.replace(a, provider="Renamed AB"), TransferSecret())
    again = await PgAgreementRepository(harness.pool).get(a.agreement_id)
    assert again is not None
    assert again.sealed_secret == stored.sealed_secret
    assert again.agreement.provider == "Renamed AB"
    # Read for every batch of decisions, built once per content of the row: each change is
    # seen at the next read.
    repo = PgAgreementRepository(harness.pool)
    [first] = (await repo.of_tenants([tenant]))[tenant]
    [second] = (await repo.of_tenants([tenant]))[tenant]
    assert second.agreement is first.agreement
    await store(harness, dataclasses.replace(a, enabled=False), TransferSecret())
    [changed] = (await repo.of_tenants([tenant]))[tenant]
    assert (changed.agreement.provider, changed.agreement.enabled) == (a.provider, False)


async def test_a_timer_scheduled_twice_is_one_job(harness: ServiceHarness[Deps]) -> None:
    due = dt.datetime.now(dt.UTC)
    async with harness.pool.acquire() as conn:
        assert await schedule(
            conn, kind=WINDOW_JOB, key="window:x:2025-03-10", tenant_id="t", payload={}, due_at=due
        )
        assert not await schedule(
            conn, kind=WINDOW_JOB, key="window:x:2025-03-10", tenant_id="t", payload={}, due_at=due
        )
