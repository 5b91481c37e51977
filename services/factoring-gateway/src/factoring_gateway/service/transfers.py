"""Making batches: the window (once per agreement and business day), on-demand runs and
resubmissions. A batch's serial is allocated, and its files, invoices and state recorded,
in the one transaction that also schedules its upload job."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from nordflow_schemas.tenant import tenant_zone

from ..domain.agreements import Agreement
from ..domain.batches import (
    BatchKind,
    BatchState,
    InvoiceState,
    OfferedInvoice,
    Trigger,
    chunks,
    file_order,
    line_for,
    new_batch_id,
)
from ..domain.eligibility import open_reason
from ..domain.formats import DueDateChange, FileFormat, FileHeader, FormatRegistry, OutFile
from .agreements import FALLBACK_COUNTRY, schedule_next_window
from .ports import (
    RUN_JOB,
    SETTLEMENT_JOB,
    UPLOAD_JOB,
    Batch,
    BatchFile,
    BatchInvoice,
    Change,
    Repositories,
)


class NoSuchBatchError(LookupError):
    """No batch with that id (of that tenant)."""


class NotResubmittableError(ValueError):
    """Only a refused batch can be resubmitted."""


@dataclass
class RunOutcome:
    """What a run made: its batches (possibly none) and the invoices it withdrew."""

    batches: list[Batch] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    skipped: str | None = None

    def result(self) -> dict[str, object]:
        """The job's result."""
        return {
            "skipped": self.skipped,
            "withdrawn": len(self.withdrawn),
            "batches": [
                {
                    "batch_id": b.batch_id,
                    "serial": b.serial,
                    "kind": b.kind.value,
                    "invoices": len(b.invoices),
                    "files": [f.name for f in b.files],
                }
                for b in self.batches
            ],
        }


def _files(out: list[OutFile]) -> tuple[BatchFile, ...]:
    return tuple(
        BatchFile(
            seq=n,
            name=f.name,
            media_type=f.media_type,
            content=f.content,
            sha256=hashlib.sha256(f.content).hexdigest(),
        )
        for n, f in enumerate(out, start=1)
    )


async def _header(
    repos: Repositories, agreement: Agreement, serial: int, now: dt.datetime
) -> FileHeader:
    profile = await repos.profiles.get(agreement.tenant_id)
    zone = tenant_zone(profile, FALLBACK_COUNTRY)
    name = agreement.company_name or (profile.legal_name if profile else agreement.tenant_id)
    return FileHeader(
        client_number=agreement.client_number,
        company_name=name,
        serial=serial,
        created_at=now.astimezone(zone),
        payee=agreement.payee,
    )


async def run_transfers(
    repos: Repositories,
    formats: FormatRegistry,
    agreement_id: str,
    now: dt.datetime,
    *,
    trigger: Trigger,
    window_date: dt.date | None = None,
    only: Collection[str] | None = None,
) -> RunOutcome:
    """Batch the agreement's pending invoices (``only`` some of them) and its pending
    due-date changes, in the caller's transaction."""
    stored = await repos.agreements.get(agreement_id)
    if stored is None:
        return RunOutcome(skipped=f"no agreement {agreement_id!r}")
    agreement = stored.agreement
    if not agreement.enabled:
        return RunOutcome(skipped="agreement is disabled")
    file_format = formats.get(agreement.file_format)
    outcome = RunOutcome()
    pending = await repos.invoices.pending(agreement_id)
    if only is not None:
        pending = [o for o in pending if o.invoice_id in only]
    still_open: list[OfferedInvoice] = []
    for offered in pending:
        if reason := open_reason(offered.invoice):
            await repos.invoices.set_state([offered.invoice_id], InvoiceState.WITHDRAWN, reason)
            outcome.withdrawn.append(offered.invoice_id)
        else:
            still_open.append(offered)
    for chunk in chunks(file_order(still_open), file_format.max_invoices):
        batch = await _invoice_batch(
            repos, file_format, agreement, chunk, now, trigger, window_date
        )
        outcome.batches.append(batch)
    changes = await repos.changes.pending(agreement_id)
    if changes and only is None:
        outcome.batches.append(
            await _change_batch(repos, file_format, agreement, changes, now, trigger, window_date)
        )
    return outcome


async def _invoice_batch(
    repos: Repositories,
    file_format: FileFormat,
    agreement: Agreement,
    chunk: list[OfferedInvoice],
    now: dt.datetime,
    trigger: Trigger,
    window_date: dt.date | None,
) -> Batch:
    serial = await repos.batches.next_serial(agreement.agreement_id)
    lines = [line_for(agreement, o) for o in chunk]
    files = file_format.render(await _header(repos, agreement, serial, now), lines)
    batch = Batch(
        batch_id=new_batch_id(),
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.agreement_id,
        serial=serial,
        kind=BatchKind.INVOICES,
        trigger=trigger,
        state=BatchState.RECORDED,
        created_at=now,
        window_date=window_date,
        files=_files(files),
        invoices=tuple(
            BatchInvoice(
                invoice_id=line.invoice.invoice_id,
                number=line.invoice.number,
                amount=line.amount,
                currency=line.invoice.currency,
                fee=line.fee,
                advance=line.advance,
                payment_reference=line.payment_reference,
            )
            for line in lines
        ),
    )
    await repos.batches.record(batch)
    await repos.invoices.set_state(
        [o.invoice_id for o in chunk],
        InvoiceState.BATCHED,
        f"in batch serial {serial}",
        batch_id=batch.batch_id,
    )
    for offered in chunk:
        await repos.invoices.set_factor_due_date(
            offered.invoice_id, offered.invoice.due_date or offered.invoice.issue_date
        )
    await _schedule_upload(repos, batch, now)
    return batch


async def _change_batch(
    repos: Repositories,
    file_format: FileFormat,
    agreement: Agreement,
    changes: list[Change],
    now: dt.datetime,
    trigger: Trigger,
    window_date: dt.date | None,
) -> Batch:
    serial = await repos.batches.next_serial(agreement.agreement_id)
    moved = []
    for change in changes:
        offered = await repos.invoices.get(change.invoice_id)
        assert offered is not None
        moved.append(
            DueDateChange(
                invoice=offered.invoice,
                old_due_date=change.old_due_date,
                new_due_date=change.new_due_date,
                payment_reference=offered.payment_reference,
            )
        )
    files = file_format.render_changes(await _header(repos, agreement, serial, now), moved)
    batch = Batch(
        batch_id=new_batch_id(),
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.agreement_id,
        serial=serial,
        kind=BatchKind.CHANGES,
        trigger=trigger,
        state=BatchState.RECORDED,
        created_at=now,
        window_date=window_date,
        files=_files(files),
        change_ids=tuple(c.change_id for c in changes),
    )
    await repos.batches.record(batch)
    await repos.changes.batched([c.change_id for c in changes], batch.batch_id)
    await _schedule_upload(repos, batch, now)
    return batch


async def _schedule_upload(repos: Repositories, batch: Batch, now: dt.datetime) -> None:
    await repos.jobs.schedule(
        UPLOAD_JOB, f"upload:{batch.batch_id}", batch.tenant_id, {"batch_id": batch.batch_id}, now
    )


async def run_window(
    repos: Repositories,
    formats: FormatRegistry,
    agreement_id: str,
    day: dt.date,
    now: dt.datetime,
) -> RunOutcome:
    """The window of ``day`` (its durable timer): once, whatever runs it how often or how
    late; the next window's timer is scheduled in the same transaction."""
    stored = await repos.agreements.get(agreement_id)
    if stored is None:
        return RunOutcome(skipped=f"no agreement {agreement_id!r}")
    if not await repos.batches.record_window(agreement_id, day, now):
        await schedule_next_window(repos, stored.agreement, now, after_day=day)
        return RunOutcome(skipped=f"the window of {day} already ran")
    outcome = await run_transfers(
        repos, formats, agreement_id, now, trigger=Trigger.WINDOW, window_date=day
    )
    invoices = sum(len(b.invoices) for b in outcome.batches)
    await repos.batches.window_done(agreement_id, day, len(outcome.batches), invoices)
    await schedule_next_window(repos, stored.agreement, now, after_day=day)
    return outcome


async def resubmit(
    repos: Repositories,
    formats: FormatRegistry,
    tenant_id: str,
    batch_id: str,
    now: dt.datetime,
) -> RunOutcome:
    """A refused batch's invoices (or due-date changes) again, under the next serial."""
    batch = await repos.batches.get(batch_id)
    if batch is None or batch.tenant_id != tenant_id:
        raise NoSuchBatchError(f"no batch {batch_id!r}")
    if batch.state is not BatchState.REFUSED:
        raise NotResubmittableError(f"batch {batch_id} is {batch.state.value}, not refused")
    if batch.kind is BatchKind.CHANGES:
        await repos.changes.reopen(batch_id)
        return await run_transfers(
            repos, formats, batch.agreement_id, now, trigger=Trigger.RESUBMIT
        )
    ids = [i.invoice_id for i in batch.invoices]
    refused = []
    for invoice_id in ids:
        offered = await repos.invoices.get(invoice_id)
        if offered is not None and offered.state is InvoiceState.REFUSED:
            refused.append(invoice_id)
    await repos.invoices.set_state(
        refused, InvoiceState.PENDING, f"resubmitted after batch serial {batch.serial}"
    )
    return await run_transfers(
        repos, formats, batch.agreement_id, now, trigger=Trigger.RESUBMIT, only=set(refused)
    )


class NoAgreementError(LookupError):
    """The tenant has no (such) enabled agreement to run."""


async def request_runs(
    repos: Repositories, tenant_id: str, agreement_id: str | None, now: dt.datetime
) -> list[tuple[str, str]]:
    """Schedule an on-demand run of the tenant's enabled agreements (or one of them), due
    now; the service's run worker carries it out. Returns (agreement id, job key) pairs."""
    stored = await repos.agreements.of_tenant(tenant_id)
    chosen = [
        s.agreement
        for s in stored
        if s.agreement.enabled
        and (agreement_id is None or s.agreement.agreement_id == agreement_id)
    ]
    if not chosen:
        which = f"agreement {agreement_id!r}" if agreement_id else "any enabled agreement"
        raise NoAgreementError(f"tenant {tenant_id} has no {which}")
    keys = []
    for agreement in chosen:
        key = f"run:{agreement.agreement_id}:{uuid.uuid4().hex[:12]}"
        await repos.jobs.schedule(
            RUN_JOB, key, tenant_id, {"agreement_id": agreement.agreement_id}, now
        )
        keys.append((agreement.agreement_id, key))
    return keys


async def request_resubmit(
    repos: Repositories, tenant_id: str, batch_id: str, now: dt.datetime
) -> str:
    """Schedule the resubmission of a refused batch (checked now and again when it runs)."""
    batch = await repos.batches.get(batch_id)
    if batch is None or batch.tenant_id != tenant_id:
        raise NoSuchBatchError(f"no batch {batch_id!r}")
    if batch.state is not BatchState.REFUSED:
        raise NotResubmittableError(f"batch {batch_id} is {batch.state.value}, not refused")
    key = f"resubmit:{batch_id}"
    await repos.jobs.schedule(RUN_JOB, key, tenant_id, {"resubmit": batch_id}, now)
    return key


async def request_settlements(
    repos: Repositories, tenant_id: str, agreement_id: str | None, now: dt.datetime
) -> list[tuple[str, str]]:
    """Schedule a one-off read of settlement files, due now (the periodic reads go on)."""
    stored = await repos.agreements.of_tenant(tenant_id)
    chosen = [
        s.agreement
        for s in stored
        if agreement_id is None or s.agreement.agreement_id == agreement_id
    ]
    if not chosen:
        raise NoAgreementError(f"tenant {tenant_id} has no agreement {agreement_id or ''}".strip())
    keys = []
    for agreement in chosen:
        key = f"settlements:{agreement.agreement_id}:once:{uuid.uuid4().hex[:12]}"
        await repos.jobs.schedule(
            SETTLEMENT_JOB,
            key,
            tenant_id,
            {"agreement_id": agreement.agreement_id, "once": True},
            now,
        )
        keys.append((agreement.agreement_id, key))
    return keys
