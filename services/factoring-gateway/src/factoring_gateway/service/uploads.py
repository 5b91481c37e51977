"""The upload job: hand a recorded batch to the provider exactly once.

Every upload attempt of a file is committed on its own connection before the provider is
called (``AttemptLog.begin``), so it outlives a crash or a rolled-back job. A file with an
earlier attempt is first looked up at the provider by its final name: received or refused
→ recorded, nothing is sent again; present without an answer yet → its receipt is awaited;
absent → sent again (SFTP: under a temporary name, then renamed; HTTPS: with the same
Idempotency-Key). The batch's ``invoice.transferred`` events (or ``invoice.transfer_failed``
on a refusal) come from the transaction that records the receipt. A batch waits until every
batch of its agreement with a lower serial is answered, so files arrive in serial order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nordflow_schemas.events import (
    EventBody,
    InvoiceTransferFailed,
    InvoiceTransferred,
)

from ..domain.agreements import Agreement
from ..domain.batches import BatchKind, BatchState, InvoiceState
from ..domain.formats import OutFile
from ..domain.transfer import FactorAnswer, FileStatus, TransientTransferError
from .agreements import open_secret
from .ports import Batch, BatchFile, FactorClient, FactorClients, Repositories, SecretSealer

Trace = tuple[str | None, str | None]


class NoBatchError(LookupError):
    """The job names a batch that does not exist: it can never succeed."""


@dataclass
class UploadOutcome:
    """The job's result and the events to emit, each with the invoice number as subject and
    the trace context of the invoice's creation (its journey continues in that trace)."""

    result: dict[str, Any]
    events: list[tuple[EventBody, str, Trace]] = field(default_factory=list)


async def upload_batch(
    repos: Repositories,
    clients: FactorClients,
    sealer: SecretSealer,
    batch_id: str,
    clock: Callable[[], dt.datetime],
    *,
    receipt_timeout: float,
) -> UploadOutcome:
    """One run of the upload job, inside its transaction (the job's row locked)."""
    batch = await repos.batches.get(batch_id)
    if batch is None:
        raise NoBatchError(f"no batch {batch_id}")
    if batch.state is not BatchState.RECORDED:
        return UploadOutcome({"state": batch.state.value})
    earlier = await repos.batches.earlier_unfinished(batch.agreement_id, batch.serial)
    if earlier is not None:
        raise TransientTransferError(
            f"batch serial {earlier.serial} of this agreement is not answered yet"
        )
    stored = await repos.agreements.get(batch.agreement_id)
    if stored is None:
        raise NoBatchError(f"batch {batch_id} names no agreement {batch.agreement_id}")
    secret = open_secret(sealer, stored.sealed_secret)
    answers: dict[int, FactorAnswer] = {}
    async with clients.connect(stored.agreement, secret) as client:
        for file in batch.files:
            if file.state != "pending":
                continue
            answer = await _hand_over(repos, client, batch, file, receipt_timeout)
            await repos.batches.file_answered(batch.batch_id, file.seq, answer)
            answers[file.seq] = answer
            if answer.status is FileStatus.REFUSED:
                break
    now = clock()
    refused = next((a for a in answers.values() if a.status is FileStatus.REFUSED), None)
    if refused is not None:
        reason = refused.reason or "the provider refused the file"
        return await _refused(repos, stored.agreement, batch, reason, now)
    return await _transferred(repos, stored.agreement, batch, now)


async def _hand_over(
    repos: Repositories,
    client: FactorClient,
    batch: Batch,
    file: BatchFile,
    timeout: float,
) -> FactorAnswer:
    """The provider's answer for one file, sending it only if it does not have it."""
    attempts = await repos.attempts.of_file(batch.batch_id, file.seq)
    open_attempts = [a for a in attempts if a.state == "started"]
    if open_attempts:
        # An earlier attempt may have reached the provider: never send before knowing.
        answer = await client.lookup(file.name)
        if answer.status is FileStatus.PENDING:
            answer = await client.wait_for_answer(file.name, timeout)
            if not answer.final:
                raise TransientTransferError(
                    f"{file.name} is at the provider without a receipt after {timeout:.0f} s"
                )
        if answer.final:
            for attempt in open_attempts:
                await repos.attempts.finish(attempt.key, answer.status.value, answer.reason)
            return answer
        for attempt in open_attempts:
            await repos.attempts.finish(attempt.key, "absent", "not at the provider: sent again")
    number = len(attempts) + 1
    key = f"{batch.batch_id}:{file.seq}:{number}"
    await repos.attempts.begin(key, batch.batch_id, file.seq, number)
    out = OutFile(file.name, file.media_type, file.content)
    answer = await client.upload(out, key=f"{batch.batch_id}:{file.seq}")
    if not answer.final:
        answer = await client.wait_for_answer(file.name, timeout)
    if not answer.final:
        # The attempt stays open: the next run looks the file up before anything else.
        raise TransientTransferError(f"no receipt for {file.name} within {timeout:.0f} s")
    await repos.attempts.finish(key, answer.status.value, answer.reason)
    return answer


async def _transferred(
    repos: Repositories, agreement: Agreement, batch: Batch, now: dt.datetime
) -> UploadOutcome:
    await repos.batches.finish(batch.batch_id, BatchState.TRANSFERRED, now, None)
    result = {"state": "transferred", "serial": batch.serial, "files": len(batch.files)}
    if batch.kind is BatchKind.CHANGES:
        await repos.changes.finish(batch.batch_id, "sent")
        return UploadOutcome(result)
    await repos.invoices.set_state(
        [i.invoice_id for i in batch.invoices],
        InvoiceState.TRANSFERRED,
        f"transferred in batch serial {batch.serial}",
        batch_id=batch.batch_id,
    )
    events: list[tuple[EventBody, str, Trace]] = []
    for line in batch.invoices:
        offered = await repos.invoices.get(line.invoice_id)
        assert offered is not None
        invoice = offered.invoice
        events.append(
            (
                InvoiceTransferred(
                    tenant_id=batch.tenant_id,
                    invoice_id=line.invoice_id,
                    source=invoice.source,
                    document_type=invoice.document_type,
                    number=invoice.number,
                    provider=agreement.provider,
                    agreement_kind=agreement.kind,
                    transfer_id=f"{batch.batch_id}:{line.invoice_id}",
                    amount=line.amount,
                    currency=line.currency,
                    transferred_at=now,
                    agreement_id=agreement.agreement_id,
                    batch_id=batch.batch_id,
                    file_serial=batch.serial,
                    advance_amount=line.advance,
                    fee_amount=line.fee,
                    payment_reference=line.payment_reference,
                    payee=agreement.payee,
                ),
                invoice.number,
                offered.trace,
            )
        )
    return UploadOutcome(result | {"invoices": len(events)}, events)


async def _refused(
    repos: Repositories, agreement: Agreement, batch: Batch, reason: str, now: dt.datetime
) -> UploadOutcome:
    await repos.batches.finish(batch.batch_id, BatchState.REFUSED, now, reason)
    result = {"state": "refused", "serial": batch.serial, "reason": reason}
    if batch.kind is BatchKind.CHANGES:
        await repos.changes.finish(batch.batch_id, "refused")
        return UploadOutcome(result)
    await repos.invoices.set_state(
        [i.invoice_id for i in batch.invoices],
        InvoiceState.REFUSED,
        f"the provider refused batch serial {batch.serial}: {reason}",
        batch_id=batch.batch_id,
    )
    events: list[tuple[EventBody, str, Trace]] = []
    for line in batch.invoices:
        offered = await repos.invoices.get(line.invoice_id)
        trace = offered.trace if offered is not None else (None, None)
        failed = InvoiceTransferFailed(
            tenant_id=batch.tenant_id,
            invoice_id=line.invoice_id,
            number=line.number,
            provider=agreement.provider,
            agreement_id=agreement.agreement_id,
            batch_id=batch.batch_id,
            file_serial=batch.serial,
            reason=reason,
            failed_at=now,
        )
        events.append((failed, line.number, trace))
    return UploadOutcome(result, events)
