"""Hold (quarantine): keep an invoice back for a set time so files can be attached to it.

A tenant sets a default policy and may override it per customer (the customer's policy wins,
also when it disables holding); customers are named by `domain.channels.customer_key`.
Routing asks `hold_for` for a new invoice; when it schedules the delayed `send-invoice` job
it calls `start_hold`, and when the job runs it reads `attachments`. A hold is *open* until
it is released early (`release_hold`, which moves the pending job's `due_at` to now) or its
`held_until` passes; only an open hold takes files. A hold's end is an instant (now plus the
policy's duration), not a date, so no time zone enters it.

Every change of a hold is announced on ``delivery.hold_updated`` (`domain.holds.hold_updated`:
the whole hold with its revision, what it waits for, the files attached), written to the
outbox by the use case in the transaction of the change: placed (`start_hold`, in routing's
consumer transaction, once per invoice however often the record is redelivered), a file
added or removed, released. A hold that runs out is not announced; its ``held_until`` says
when it ends.

Race between an upload and the send: `add_attachment` locks the hold row and checks the
clock after the lock; `attachments` takes a share lock on the same row. So a file is either
committed before the send job reads the list, or refused because the hold has left.
"""

from __future__ import annotations

import datetime as dt

from nordflow_schemas.events import HoldChange, HoldReason

from ..domain.channels import SEND_INVOICE
from ..domain.holds import (
    ALLOWED_TYPES,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS_PER_INVOICE,
    MAX_HOLD,
    AttachmentInfo,
    AttachmentRejectedError,
    Hold,
    HoldClosedError,
    HoldError,
    HoldNotFoundError,
    HoldPolicy,
    check_attachment,
    check_duration,
    check_open,
    hold_updated,
    media_type,
)
from ..domain.sending import Attachment
from .ports import HoldRepository, Repositories

SEND_JOB_KIND = SEND_INVOICE  # the send job's kind; its job_key is the invoice id

__all__ = [
    "ALLOWED_TYPES",
    "MAX_ATTACHMENT_BYTES",
    "MAX_HOLD",
    "SEND_JOB_KIND",
    "AttachmentInfo",
    "AttachmentRejectedError",
    "Hold",
    "HoldClosedError",
    "HoldError",
    "HoldNotFoundError",
    "HoldPolicy",
    "check_attachment",
    "hold_for",
    "media_type",
]


# -- policies ---------------------------------------------------------------------------------


async def hold_for(
    repo: HoldRepository, *, tenant_id: str, customer_key: str, now: dt.datetime
) -> tuple[dt.datetime, HoldReason] | None:
    """The end of the hold for a new invoice of this customer and the policy that sets it,
    or None when it is not held.

    The customer's policy wins over the tenant's default, also when it disables holding.
    """
    policy = await repo.effective_policy(tenant_id, customer_key)
    until = None if policy is None else policy.hold_until(now)
    return None if policy is None or until is None else (until, policy.reason)


async def hold_until(
    repo: HoldRepository, *, tenant_id: str, customer_key: str, now: dt.datetime
) -> dt.datetime | None:
    """The end of the hold for a new invoice of this customer, or None (`hold_for`)."""
    found = await hold_for(repo, tenant_id=tenant_id, customer_key=customer_key, now=now)
    return None if found is None else found[0]


async def set_policy(
    repo: HoldRepository,
    *,
    tenant_id: str,
    customer_key: str | None,
    enabled: bool,
    duration: dt.timedelta,
) -> HoldPolicy:
    """Create or replace the tenant's default (``customer_key`` None) or a customer's policy.

    It applies to invoices that arrive afterwards; invoices already held keep their end.
    """
    if customer_key is not None and not customer_key.strip():
        raise ValueError("customer_key must not be empty")
    return await repo.save_policy(tenant_id, customer_key, enabled, check_duration(duration))


async def get_policy(
    repo: HoldRepository, *, tenant_id: str, customer_key: str | None
) -> HoldPolicy | None:
    """The tenant's default (``customer_key`` None) or one customer's policy, if set."""
    return await repo.get_policy(tenant_id, customer_key)


async def delete_policy(repo: HoldRepository, *, tenant_id: str, customer_key: str | None) -> bool:
    """Remove a policy (a customer then follows the tenant's default); False if none was set."""
    return await repo.delete_policy(tenant_id, customer_key)


async def customer_policies(repo: HoldRepository, *, tenant_id: str) -> list[HoldPolicy]:
    """Every customer policy of the tenant, by customer key."""
    return await repo.customer_policies(tenant_id)


# -- holds ------------------------------------------------------------------------------------


async def start_hold(
    repos: Repositories,
    *,
    tenant_id: str,
    invoice_id: str,
    customer_key: str,
    until: dt.datetime,
    number: str | None = None,
    reason: HoldReason | None = None,
) -> bool:
    """Record that an invoice is held until ``until`` and announce it (``placed``); call it
    in the transaction that schedules the delayed send job, with the job's ``due_at``. A
    second call (a redelivered record) is ignored and announces nothing.
    """
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    if not await repos.holds.start(
        tenant_id, invoice_id, customer_key, until, number=number, reason=reason
    ):
        return False
    hold = await get_hold(repos.holds, tenant_id=tenant_id, invoice_id=invoice_id)
    await _announce(repos, tenant_id, hold, HoldChange.PLACED, hold.held_at)
    return True


async def _announce(
    repos: Repositories,
    tenant_id: str,
    hold: Hold,
    change: HoldChange,
    at: dt.datetime,
    attachment: AttachmentInfo | None = None,
) -> None:
    """Write ``delivery.hold_updated`` (the whole hold after the change) to the outbox."""
    files = await repos.holds.list_attachments(tenant_id, hold.invoice_id)
    event = hold_updated(tenant_id, hold, change, files, at, attachment)
    await repos.outbox.add(event, subject=hold.number)


async def _changed(repos: Repositories, tenant_id: str, invoice_id: str) -> Hold:
    """Count a change of a locked hold; the hold as it is now."""
    await repos.holds.bump(invoice_id)
    return await get_hold(repos.holds, tenant_id=tenant_id, invoice_id=invoice_id)


async def get_hold(repo: HoldRepository, *, tenant_id: str, invoice_id: str) -> Hold:
    """One hold of the tenant (open or not); `HoldNotFoundError` otherwise."""
    hold = await repo.get(tenant_id, invoice_id)
    if hold is None:
        raise HoldNotFoundError(f"no hold for invoice {invoice_id!r}")
    return hold


async def open_holds(
    repo: HoldRepository, *, tenant_id: str, after: str | None = None, limit: int = 100
) -> list[Hold]:
    """The tenant's invoices held right now, by invoice id (``after`` pages on)."""
    return await repo.open_holds(tenant_id, after, limit)


async def release_hold(
    repos: Repositories, *, tenant_id: str, invoice_id: str, released_by: str
) -> Hold:
    """End an open hold now: record who and when, make the pending send job due now, and
    announce it (``released``).

    Call it in a transaction; `HoldNotFoundError` or `HoldClosedError` when there is no open hold.
    """
    check_open(await repos.holds.lock(tenant_id, invoice_id), invoice_id)
    await repos.holds.release(tenant_id, invoice_id, released_by)
    hold = await _changed(repos, tenant_id, invoice_id)
    await _announce(repos, tenant_id, hold, HoldChange.RELEASED, hold.released_at or hold.held_at)
    return hold


# -- attachments ------------------------------------------------------------------------------


async def add_attachment(
    repos: Repositories,
    *,
    tenant_id: str,
    invoice_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> AttachmentInfo:
    """Attach a file to an open hold and announce it (``attachment_added``); call it in a
    transaction (it locks the hold row)."""
    kind = check_attachment(filename, content_type, content)
    check_open(await repos.holds.lock(tenant_id, invoice_id), invoice_id)
    count = await repos.holds.count_attachments(invoice_id)
    if count >= MAX_ATTACHMENTS_PER_INVOICE:
        raise AttachmentRejectedError(
            "count", f"invoice {invoice_id!r} has {count} attachments; the limit is reached"
        )
    info = await repos.holds.add_attachment(tenant_id, invoice_id, filename, kind, content)
    hold = await _changed(repos, tenant_id, invoice_id)
    await _announce(repos, tenant_id, hold, HoldChange.ATTACHMENT_ADDED, info.added_at, info)
    return info


async def remove_attachment(
    repos: Repositories, *, tenant_id: str, invoice_id: str, attachment_id: int
) -> bool:
    """Take a file off an open hold and announce it (``attachment_removed``); False when the
    hold has no such file (nothing announced)."""
    lock = await repos.holds.lock(tenant_id, invoice_id)
    check_open(lock, invoice_id)
    assert lock is not None  # check_open refuses a missing hold
    files = await repos.holds.list_attachments(tenant_id, invoice_id)
    removed = next((f for f in files if f.attachment_id == attachment_id), None)
    if removed is None or not await repos.holds.remove_attachment(invoice_id, attachment_id):
        return False
    hold = await _changed(repos, tenant_id, invoice_id)
    await _announce(repos, tenant_id, hold, HoldChange.ATTACHMENT_REMOVED, lock.now, removed)
    return True


async def list_attachments(
    repo: HoldRepository, *, tenant_id: str, invoice_id: str
) -> list[AttachmentInfo]:
    """The files of one of the tenant's holds (open or not), in the order added."""
    await get_hold(repo, tenant_id=tenant_id, invoice_id=invoice_id)
    return await repo.list_attachments(tenant_id, invoice_id)


async def attachments(repo: HoldRepository, invoice_id: str) -> tuple[Attachment, ...]:
    """The files attached to an invoice during its hold, in the order added (for the send).

    Takes a share lock on the hold row, so an upload still in flight either commits first
    or is refused afterwards; call it in the send job's transaction.
    """
    return await repo.attachments_for_send(invoice_id)
