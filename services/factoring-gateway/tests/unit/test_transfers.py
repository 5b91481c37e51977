"""Windows, batches, uploads and settlements on fakes: once per window, gapless serials,
each file handed over once (also after a lost answer), refusals and resubmissions, due-date
changes, settlements matched or kept for an operator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from factoring_gateway.domain.agreements import Fees
from factoring_gateway.domain.batches import BatchKind, BatchState, InvoiceState
from factoring_gateway.domain.formats import default_formats
from factoring_gateway.domain.settlements import SettlementLine, render_settlement
from factoring_gateway.domain.transfer import TransferSecret, TransientTransferError
from factoring_gateway.service import decisions, settlements, transfers, uploads
from factoring_gateway.service.agreements import set_agreement
from factoring_gateway.service.ports import SETTLEMENT_JOB, UPLOAD_JOB, WINDOW_JOB, Repositories
from factoring_gateway.testing import (
    PAYEE,
    FakeClients,
    agreement,
    fake_repositories,
    sample_invoice,
    secret_box,
)
from nordflow_schemas.events import (
    AgreementKind,
    InvoiceCreated,
    InvoiceTransferFailed,
    InvoiceTransferred,
    InvoiceUpdated,
)
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.testing import new_tenant

NOW = dt.datetime(2025, 3, 10, 14, 30, tzinfo=dt.UTC)  # 15:30 in Stockholm
FORMATS = default_formats()
BOX = secret_box()


async def setup(repos: Repositories, **changes: object) -> str:
    tenant = new_tenant()
    await set_agreement(
        repos,
        FORMATS,
        BOX,
        agreement(tenant, **changes),
        TransferSecret(password="s3cret"),
        NOW - dt.timedelta(hours=6),
    )
    return tenant


async def offer(repos: Repositories, tenant: str, number: str, **kw: object) -> str:
    invoice = sample_invoice(tenant, number, **kw)  # type: ignore[arg-type]
    event = InvoiceCreated(
        tenant_id=tenant, invoice_id=invoice.invoice_id, version="v1", invoice=invoice
    )
    await decisions.decide(repos, FORMATS, event, NOW - dt.timedelta(hours=1))
    return invoice.invoice_id


async def upload_all(repos: Repositories, clients: FakeClients) -> list[object]:
    events = []
    for job in repos.jobs.of_kind(UPLOAD_JOB):  # type: ignore[attr-defined]
        outcome = await uploads.upload_batch(
            repos, clients, BOX, job.payload["batch_id"], lambda: NOW, receipt_timeout=1
        )
        events += [e for e, _, _ in outcome.events]
    return events


async def test_the_window_runs_once_and_schedules_the_next() -> None:
    repos = fake_repositories()
    tenant = await setup(repos, fees=Fees(Decimal("10.00"), Decimal("1.5")))
    agreement_id = f"{tenant}-factor"
    [timer] = repos.jobs.of_kind(WINDOW_JOB)  # type: ignore[attr-defined]
    assert timer.key == f"window:{agreement_id}:2025-03-10"
    assert timer.due_at == NOW
    ids = [await offer(repos, tenant, n) for n in ("5067", "5068")]

    first = await transfers.run_window(repos, FORMATS, agreement_id, dt.date(2025, 3, 10), NOW)
    again = await transfers.run_window(repos, FORMATS, agreement_id, dt.date(2025, 3, 10), NOW)

    [batch] = first.batches
    assert batch.serial == 1
    assert batch.kind is BatchKind.INVOICES
    assert [i.invoice_id for i in batch.invoices] == ids
    assert again.batches == []
    assert again.skipped == "the window of 2025-03-10 already ran"
    assert [i.fee for i in batch.invoices] == [Decimal("188.13"), Decimal("188.13")]
    assert [i.advance for i in batch.invoices] == [Decimal("11686.87"), Decimal("11686.87")]
    keys = {j.key for j in repos.jobs.of_kind(WINDOW_JOB)}  # type: ignore[attr-defined]
    assert f"window:{agreement_id}:2025-03-11" in keys
    assert repos.invoices.rows[ids[0]].state is InvoiceState.BATCHED  # type: ignore[attr-defined]


async def test_upload_emits_transfers_after_the_receipt_only() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    [invoice_id] = [await offer(repos, tenant, "5067")]
    await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    clients.factor.hold_receipts = True
    with pytest.raises(TransientTransferError, match=r"without a receipt|no receipt"):
        await upload_all(repos, clients)
    clients.factor.release()
    [event] = await upload_all(repos, clients)
    assert isinstance(event, InvoiceTransferred)
    assert len(clients.factor.received) == 1  # the retry looked it up instead
    assert (event.invoice_id, event.file_serial, event.agreement_kind) == (
        invoice_id,
        1,
        AgreementKind.FACTORING,
    )
    assert event.payee == PAYEE
    assert event.payment_reference == "50674"
    assert event.fee_amount == Decimal("0.00")
    assert event.advance_amount == event.amount
    assert clients.secrets[0] == TransferSecret(password="s3cret")
    assert repos.invoices.rows[invoice_id].state is InvoiceState.TRANSFERRED  # type: ignore[attr-defined]


async def test_a_lost_answer_never_sends_the_file_twice() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    await offer(repos, tenant, "5067")
    await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    clients.factor.crash_after_upload = 1
    with pytest.raises(ConnectionResetError):
        await upload_all(repos, clients)
    events = await upload_all(repos, clients)
    assert len(events) == 1
    assert len(clients.factor.received) == 1


async def test_a_refused_file_fails_its_invoices_and_a_resubmission_takes_the_next_serial() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    invoice_id = await offer(repos, tenant, "5067")
    await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    clients.factor.refuse = "E042: unknown client number"
    [failed] = await upload_all(repos, clients)
    assert isinstance(failed, InvoiceTransferFailed)
    assert failed.reason == "E042: unknown client number"
    assert failed.file_serial == 1
    [refused] = repos.batches.batches.values()  # type: ignore[attr-defined]
    assert refused.state is BatchState.REFUSED

    clients.factor.refuse = None
    again = await transfers.resubmit(repos, FORMATS, tenant, refused.batch_id, NOW)
    assert [b.serial for b in again.batches] == [2]
    events = await upload_all(repos, clients)
    assert [type(e) for e in events] == [InvoiceTransferred]
    assert repos.invoices.rows[invoice_id].state is InvoiceState.TRANSFERRED  # type: ignore[attr-defined]
    with pytest.raises(transfers.NotResubmittableError):
        await transfers.resubmit(repos, FORMATS, tenant, again.batches[0].batch_id, NOW)


async def test_a_batch_waits_for_the_one_before_it() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    await offer(repos, tenant, "5067")
    one = await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    await offer(repos, tenant, "5068")
    two = await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    with pytest.raises(TransientTransferError, match="serial 1"):
        await uploads.upload_batch(
            repos, clients, BOX, two.batches[0].batch_id, lambda: NOW, receipt_timeout=1
        )
    await uploads.upload_batch(
        repos, clients, BOX, one.batches[0].batch_id, lambda: NOW, receipt_timeout=1
    )
    await uploads.upload_batch(
        repos, clients, BOX, two.batches[0].batch_id, lambda: NOW, receipt_timeout=1
    )
    assert [f.name.split("_")[-1] for f in clients.factor.received] == ["1.xml", "2.xml"]


async def test_a_paid_invoice_is_withdrawn_at_the_window() -> None:
    repos = fake_repositories()
    tenant = await setup(repos)
    invoice_id = await offer(repos, tenant, "5067")
    stored = repos.invoices.rows[invoice_id]  # type: ignore[attr-defined]
    paid = stored.invoice.model_copy(update={"outstanding_amount": Decimal(0)})
    await repos.invoices.update_invoices([(invoice_id, paid, "v2")])
    outcome = await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    assert outcome.batches == []
    assert outcome.withdrawn == [invoice_id]


async def test_a_window_bigger_than_a_file_makes_consecutive_serials() -> None:
    repos = fake_repositories()
    tenant = await setup(repos)
    for n in range(5):
        await offer(repos, tenant, str(6000 + n))
    fmt = FORMATS.get("cusin-xml")
    original = fmt.max_invoices
    try:
        type(fmt).max_invoices = 2  # type: ignore[misc]
        outcome = await transfers.run_transfers(
            repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
        )
    finally:
        type(fmt).max_invoices = original  # type: ignore[misc]
    assert [(b.serial, len(b.invoices)) for b in outcome.batches] == [(1, 2), (2, 2), (3, 1)]


async def test_credit_notes_follow_their_invoices_in_the_file() -> None:
    repos = fake_repositories()
    tenant = await setup(repos)
    original = sample_invoice(tenant, "5067")
    credit = sample_invoice(
        tenant, "5069", document_type=DocumentType.CREDIT_NOTE, credited=original
    )
    for invoice in (original, credit):
        await decisions.decide(
            repos,
            FORMATS,
            InvoiceCreated(
                tenant_id=tenant, invoice_id=invoice.invoice_id, version="v1", invoice=invoice
            ),
            NOW,
        )
    [batch] = (
        await transfers.run_transfers(
            repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
        )
    ).batches
    assert [i.number for i in batch.invoices] == ["5067", "5069"]
    assert batch.invoices[1].fee == Decimal("0.00")


async def test_a_due_date_moved_after_transfer_reaches_the_factor_once() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    invoice_id = await offer(repos, tenant, "5067")
    await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    await upload_all(repos, clients)
    invoice = repos.invoices.rows[invoice_id].invoice  # type: ignore[attr-defined]
    moved = invoice.model_copy(update={"due_date": dt.date(2025, 5, 2)})
    update = InvoiceUpdated(tenant_id=tenant, invoice_id=invoice_id, version="v2", invoice=moved)
    await decisions.follow_update(repos, update)
    outcome = await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    [changes] = outcome.batches
    assert changes.kind is BatchKind.CHANGES
    assert changes.serial == 2
    await upload_all(repos, clients)
    assert b"<NewDueDate>2025-05-02</NewDueDate>" in clients.factor.received[-1].content
    nothing = await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    assert nothing.batches == []


async def test_settlements_become_payments_and_unmatched_lines_stay_visible() -> None:
    repos = fake_repositories()
    clients = FakeClients()
    tenant = await setup(repos)
    invoice_id = await offer(repos, tenant, "5067")
    await transfers.run_transfers(
        repos, FORMATS, f"{tenant}-factor", NOW, trigger=transfers.Trigger.ON_DEMAND
    )
    await upload_all(repos, clients)
    day = dt.date(2025, 4, 9)
    clients.factor.settlements["SETTLEMENT_1234_20250409_1.csv"] = render_settlement(
        "1234",
        day,
        [
            SettlementLine(
                3, "50674", "5067", day, "NOK", Decimal("11875.00"), Decimal("178.13"), "Kjøper AS"
            ),
            SettlementLine(4, None, "9999", day, "NOK", Decimal("100.00"), Decimal(0), "Ukjent AS"),
        ],
    )
    [(payment, _)] = await settlements.fetch_settlements(
        repos, clients, BOX, f"{tenant}-factor", NOW
    )
    assert (payment.invoice_id, payment.amount, payment.fee_amount, payment.reference) == (
        invoice_id,
        Decimal("11875.00"),
        Decimal("178.13"),
        "50674",
    )
    assert payment.paid_on == day
    assert payment.agreement_kind is AgreementKind.FACTORING
    assert not payment.recorded_at_source
    assert await settlements.fetch_settlements(repos, clients, BOX, f"{tenant}-factor", NOW) == []
    [unmatched] = await repos.settlements.listing(tenant, state="unmatched", limit=10)
    assert unmatched.line.invoice_number == "9999"


async def test_settlements_are_read_at_once_after_a_save_then_at_the_services_interval() -> None:
    """Finding 7 of docs/resilience.md: `agreements set` ran in a process with the default
    SETTLEMENT_POLL_SECONDS (an hour) and put the first read that far away. Now a save puts
    it at once, and each read schedules the next with the running service's interval."""
    repos = fake_repositories()
    tenant = await setup(repos)
    agreement_id = f"{tenant}-factor"
    saved_at = NOW - dt.timedelta(hours=6)
    [first] = repos.jobs.of_kind(SETTLEMENT_JOB)  # type: ignore[attr-defined]
    assert first.due_at == saved_at
    assert first.payload == {"agreement_id": agreement_id}
    # Saved again with new terms: still one series of reads, due at once.
    stored = await repos.agreements.get(agreement_id)
    assert stored is not None
    again = saved_at + dt.timedelta(minutes=5)
    await set_agreement(repos, FORMATS, BOX, stored.agreement, None, again)
    [pending] = repos.jobs.of_kind(SETTLEMENT_JOB)  # type: ignore[attr-defined]
    assert pending.due_at == again
    # The read (the service's job) schedules the next with the service's own interval.
    assert (
        await settlements.fetch_settlements(
            repos, FakeClients(), BOX, agreement_id, again, interval=dt.timedelta(seconds=5)
        )
        == []
    )
    due = sorted(j.due_at for j in repos.jobs.of_kind(SETTLEMENT_JOB))  # type: ignore[attr-defined]
    assert due == [again, again + dt.timedelta(seconds=5)]
