"""Hold (quarantine): keep an invoice back for a set time so files can be attached to it.

A tenant sets a default policy and may override it per customer (the customer's policy wins,
also when it disables holding); customers are named by `domain.customer_key`. The send job
asks `hold_until` for a new invoice; when it schedules the delayed `send-invoice` job it calls
`start_hold`, and when the job runs it reads `attachments`. A hold is *open* until it is
released early (`release_hold`, which moves the pending job's `due_at` to now) or its
`held_until` passes; only an open hold takes files.

Race between an upload and the send: `add_attachment` locks the hold row (FOR UPDATE) and
checks the clock after the lock; `attachments` takes a share lock on the same row. So a file
is either committed before the send job reads the list, or refused because the hold has left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import asyncpg

from .channels.base import Attachment

SEND_JOB_KIND = "send-invoice"  # the send job's kind; its job_key is the invoice id
TENANT_DEFAULT = ""  # hold_policies.customer_key of the tenant's default policy

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS_PER_INVOICE = 20
MAX_HOLD = dt.timedelta(days=90)
MAX_FILENAME_LENGTH = 200

# The MIME codes PEPPOL BIS Billing 3.0 allows for an attached document (BT-125), so a file
# added here can travel on every channel, e-invoice included. Each with how its bytes begin.
ALLOWED_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "text/csv": (),  # any UTF-8 text
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
    "application/vnd.oasis.opendocument.spreadsheet": (b"PK\x03\x04",),
}


class HoldError(Exception):
    """A hold operation that cannot be done; the message names the invoice or the field."""


class HoldNotFoundError(HoldError):
    """The tenant has no hold for this invoice (or the invoice belongs to another tenant)."""


class HoldClosedError(HoldError):
    """The invoice has left its hold (released early or the hold elapsed)."""


class AttachmentRejectedError(HoldError):
    """A file that cannot be attached; ``problem`` is what is wrong with it."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem  # "too_large" | "type" | "content" | "filename" | "count"


@dataclass(frozen=True)
class HoldPolicy:
    """How long new invoices (of one customer, or the tenant's default) are held."""

    customer_key: str | None  # None: the tenant's default
    enabled: bool
    duration: dt.timedelta
    updated_at: dt.datetime


@dataclass(frozen=True)
class Hold:
    """One held invoice."""

    invoice_id: str
    customer_key: str
    held_at: dt.datetime
    held_until: dt.datetime
    released_at: dt.datetime | None
    released_by: str | None
    attachment_count: int

    def is_open(self, now: dt.datetime) -> bool:
        """Whether files can still be attached."""
        return self.released_at is None and self.held_until > now


@dataclass(frozen=True)
class AttachmentInfo:
    """An attached file without its bytes."""

    attachment_id: int
    invoice_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    added_at: dt.datetime


# -- policies ---------------------------------------------------------------------------------


def _policy(row: asyncpg.Record) -> HoldPolicy:
    key = row["customer_key"]
    return HoldPolicy(
        customer_key=None if key == TENANT_DEFAULT else key,
        enabled=row["enabled"],
        duration=dt.timedelta(seconds=row["duration_seconds"]),
        updated_at=row["updated_at"],
    )


def _check_duration(duration: dt.timedelta) -> int:
    seconds = int(duration.total_seconds())
    if seconds < 60 or duration > MAX_HOLD:
        raise ValueError(f"duration must be between 1 minute and {MAX_HOLD.days} days")
    return seconds


async def hold_until(
    conn: asyncpg.Connection, *, tenant_id: str, customer_key: str, now: dt.datetime
) -> dt.datetime | None:
    """The end of the hold for a new invoice of this customer, or None when it is not held.

    The customer's policy wins over the tenant's default, also when it disables holding.
    """
    row = await conn.fetchrow(
        "SELECT enabled, duration_seconds FROM hold_policies "
        "WHERE tenant_id = $1 AND customer_key IN ($2, '') "
        "ORDER BY customer_key = '' LIMIT 1",
        tenant_id,
        customer_key,
    )
    if row is None or not row["enabled"]:
        return None
    return now + dt.timedelta(seconds=row["duration_seconds"])


async def set_policy(
    conn: asyncpg.Connection,
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
    row = await conn.fetchrow(
        "INSERT INTO hold_policies (tenant_id, customer_key, enabled, duration_seconds) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, customer_key) DO UPDATE SET "
        "enabled = EXCLUDED.enabled, duration_seconds = EXCLUDED.duration_seconds, "
        "updated_at = now() RETURNING *",
        tenant_id,
        customer_key if customer_key is not None else TENANT_DEFAULT,
        enabled,
        _check_duration(duration),
    )
    assert row is not None
    return _policy(row)


async def get_policy(
    conn: asyncpg.Connection, *, tenant_id: str, customer_key: str | None
) -> HoldPolicy | None:
    """The tenant's default (``customer_key`` None) or one customer's policy, if set."""
    row = await conn.fetchrow(
        "SELECT * FROM hold_policies WHERE tenant_id = $1 AND customer_key = $2",
        tenant_id,
        customer_key if customer_key is not None else TENANT_DEFAULT,
    )
    return None if row is None else _policy(row)


async def delete_policy(
    conn: asyncpg.Connection, *, tenant_id: str, customer_key: str | None
) -> bool:
    """Remove a policy (a customer then follows the tenant's default); False if none was set."""
    status = await conn.execute(
        "DELETE FROM hold_policies WHERE tenant_id = $1 AND customer_key = $2",
        tenant_id,
        customer_key if customer_key is not None else TENANT_DEFAULT,
    )
    return bool(status != "DELETE 0")


async def customer_policies(conn: asyncpg.Connection, *, tenant_id: str) -> list[HoldPolicy]:
    """Every customer policy of the tenant, by customer key."""
    rows = await conn.fetch(
        "SELECT * FROM hold_policies WHERE tenant_id = $1 AND customer_key <> '' "
        "ORDER BY customer_key",
        tenant_id,
    )
    return [_policy(r) for r in rows]


# -- holds ------------------------------------------------------------------------------------

_HOLD_COLUMNS = (
    "h.invoice_id, h.customer_key, h.held_at, h.held_until, h.released_at, h.released_by, "
    "(SELECT count(*) FROM hold_attachments a WHERE a.invoice_id = h.invoice_id) AS attachments"
)


def _hold(row: asyncpg.Record) -> Hold:
    return Hold(
        invoice_id=row["invoice_id"],
        customer_key=row["customer_key"],
        held_at=row["held_at"],
        held_until=row["held_until"],
        released_at=row["released_at"],
        released_by=row["released_by"],
        attachment_count=row["attachments"],
    )


async def start_hold(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    invoice_id: str,
    customer_key: str,
    until: dt.datetime,
) -> bool:
    """Record that an invoice is held until ``until`` (call it in the transaction that
    schedules the delayed send job, with the job's ``due_at``). A second call is ignored.
    """
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    inserted = await conn.fetchval(
        "INSERT INTO holds (invoice_id, tenant_id, customer_key, held_until) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
        invoice_id,
        tenant_id,
        customer_key,
        until,
    )
    return bool(inserted)


async def get_hold(conn: asyncpg.Connection, *, tenant_id: str, invoice_id: str) -> Hold:
    """One hold of the tenant (open or not); `HoldNotFoundError` otherwise."""
    row = await conn.fetchrow(
        f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.tenant_id = $1 AND h.invoice_id = $2",
        tenant_id,
        invoice_id,
    )
    if row is None:
        raise HoldNotFoundError(f"no hold for invoice {invoice_id!r}")
    return _hold(row)


async def open_holds(
    conn: asyncpg.Connection, *, tenant_id: str, after: str | None = None, limit: int = 100
) -> list[Hold]:
    """The tenant's invoices held right now, by invoice id (``after`` pages on)."""
    rows = await conn.fetch(
        f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.tenant_id = $1 "
        "AND h.released_at IS NULL AND h.held_until > clock_timestamp() "
        "AND ($2::text IS NULL OR h.invoice_id > $2) ORDER BY h.invoice_id LIMIT $3",
        tenant_id,
        after,
        limit,
    )
    return [_hold(r) for r in rows]


async def _lock_open_hold(conn: asyncpg.Connection, tenant_id: str, invoice_id: str) -> None:
    """Lock the hold row and check, after the lock, that it is still open."""
    row = await conn.fetchrow(
        "SELECT released_at, held_until, clock_timestamp() AS now FROM holds "
        "WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE",
        tenant_id,
        invoice_id,
    )
    if row is None:
        raise HoldNotFoundError(f"no hold for invoice {invoice_id!r}")
    if row["released_at"] is not None:
        raise HoldClosedError(f"invoice {invoice_id!r} was released from its hold")
    if row["held_until"] <= row["now"]:
        raise HoldClosedError(f"the hold of invoice {invoice_id!r} ended at {row['held_until']}")


async def release_hold(
    conn: asyncpg.Connection, *, tenant_id: str, invoice_id: str, released_by: str
) -> Hold:
    """End an open hold now: record who and when, and make the pending send job due now.

    Call it in a transaction; `HoldNotFoundError` or `HoldClosedError` when there is no open hold.
    """
    await _lock_open_hold(conn, tenant_id, invoice_id)
    await conn.execute(
        "UPDATE holds SET released_at = now(), released_by = $3 "
        "WHERE tenant_id = $1 AND invoice_id = $2",
        tenant_id,
        invoice_id,
        released_by,
    )
    await conn.execute(
        "UPDATE jobs SET due_at = now() WHERE kind = $1 AND job_key = $2 AND tenant_id = $3 "
        "AND state = 'pending' AND due_at > now()",
        SEND_JOB_KIND,
        invoice_id,
        tenant_id,
    )
    return await get_hold(conn, tenant_id=tenant_id, invoice_id=invoice_id)


# -- attachments ------------------------------------------------------------------------------


def media_type(content_type: str) -> str:
    """``application/PDF; name=x`` → ``application/pdf``."""
    return content_type.split(";", 1)[0].strip().lower()


def check_attachment(filename: str, content_type: str, content: bytes) -> str:
    """Refuse a file that cannot travel with an invoice; return its media type."""
    if not filename or len(filename) > MAX_FILENAME_LENGTH:
        raise AttachmentRejectedError(
            "filename", f"filename must be 1 to {MAX_FILENAME_LENGTH} characters"
        )
    if any(c in filename for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in filename):
        raise AttachmentRejectedError(
            "filename", "filename must not contain '/', '\\' or control characters"
        )
    kind = media_type(content_type)
    if kind not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise AttachmentRejectedError(
            "type", f"content type {kind or '(none)'!r} is not allowed; allowed: {allowed}"
        )
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise AttachmentRejectedError(
            "too_large",
            f"file is {len(content)} bytes; the limit is {MAX_ATTACHMENT_BYTES} bytes",
        )
    if not content:
        raise AttachmentRejectedError("content", "file is empty")
    signatures = ALLOWED_TYPES[kind]
    if signatures and not content.startswith(signatures):
        raise AttachmentRejectedError("content", f"file content is not {kind}")
    if not signatures:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise AttachmentRejectedError("content", f"file content is not UTF-8 {kind}") from None
        if "\x00" in text:
            raise AttachmentRejectedError("content", f"file content is not {kind}")
    return kind


def _info(row: asyncpg.Record) -> AttachmentInfo:
    return AttachmentInfo(
        attachment_id=row["attachment_id"],
        invoice_id=row["invoice_id"],
        filename=row["filename"],
        content_type=row["content_type"],
        size=row["size"],
        sha256=row["sha256"],
        added_at=row["added_at"],
    )


async def add_attachment(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    invoice_id: str,
    filename: str,
    content_type: str,
    content: bytes,
) -> AttachmentInfo:
    """Attach a file to an open hold (call it in a transaction; it locks the hold row)."""
    kind = check_attachment(filename, content_type, content)
    await _lock_open_hold(conn, tenant_id, invoice_id)
    count = await conn.fetchval(
        "SELECT count(*) FROM hold_attachments WHERE invoice_id = $1", invoice_id
    )
    if count >= MAX_ATTACHMENTS_PER_INVOICE:
        raise AttachmentRejectedError(
            "count", f"invoice {invoice_id!r} has {count} attachments; the limit is reached"
        )
    row = await conn.fetchrow(
        "INSERT INTO hold_attachments "
        "(invoice_id, tenant_id, filename, content_type, content, size, sha256) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "RETURNING attachment_id, invoice_id, filename, content_type, size, sha256, added_at",
        invoice_id,
        tenant_id,
        filename,
        kind,
        content,
        len(content),
        hashlib.sha256(content).hexdigest(),
    )
    assert row is not None
    return _info(row)


async def remove_attachment(
    conn: asyncpg.Connection, *, tenant_id: str, invoice_id: str, attachment_id: int
) -> bool:
    """Take a file off an open hold; False when the hold has no such file."""
    await _lock_open_hold(conn, tenant_id, invoice_id)
    status = await conn.execute(
        "DELETE FROM hold_attachments WHERE invoice_id = $1 AND attachment_id = $2",
        invoice_id,
        attachment_id,
    )
    return bool(status != "DELETE 0")


async def list_attachments(
    conn: asyncpg.Connection, *, tenant_id: str, invoice_id: str
) -> list[AttachmentInfo]:
    """The files of one of the tenant's holds (open or not), in the order added."""
    await get_hold(conn, tenant_id=tenant_id, invoice_id=invoice_id)
    rows = await conn.fetch(
        "SELECT attachment_id, invoice_id, filename, content_type, size, sha256, added_at "
        "FROM hold_attachments WHERE invoice_id = $1 AND tenant_id = $2 ORDER BY attachment_id",
        invoice_id,
        tenant_id,
    )
    return [_info(r) for r in rows]


async def attachments(conn: asyncpg.Connection, invoice_id: str) -> tuple[Attachment, ...]:
    """The files attached to an invoice during its hold, in the order added (for the send).

    Takes a share lock on the hold row, so an upload still in flight either commits first
    or is refused afterwards; call it in the send job's transaction.
    """
    await conn.execute("SELECT 1 FROM holds WHERE invoice_id = $1 FOR SHARE", invoice_id)
    rows = await conn.fetch(
        "SELECT filename, content_type, content FROM hold_attachments "
        "WHERE invoice_id = $1 ORDER BY attachment_id",
        invoice_id,
    )
    return tuple(Attachment(r["filename"], r["content_type"], r["content"]) for r in rows)
