"""Hold (quarantine) rules: policies, when a hold is open, which files may be attached (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from nordflow_schemas.common import check_file_name
from nordflow_schemas.events import (
    DeliveryHoldUpdated,
    HeldAttachment,
    HoldChange,
    HoldNeeds,
    HoldReason,
)

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

    def hold_until(self, now: dt.datetime) -> dt.datetime | None:
        """When a new invoice arriving ``now`` leaves its hold; None when it is not held."""
        return now + self.duration if self.enabled else None

    @property
    def reason(self) -> HoldReason:
        """Why an invoice this policy holds is held."""
        if self.customer_key is None:
            return HoldReason.TENANT_POLICY
        return HoldReason.CUSTOMER_POLICY


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
    number: str | None = None  # None only for holds placed before holds were announced
    reason: HoldReason | None = None  # likewise
    revision: int = 1  # grows with every change (delivery.hold_updated)

    def is_open(self, now: dt.datetime) -> bool:
        """Whether files can still be attached."""
        return self.released_at is None and self.held_until > now


@dataclass(frozen=True)
class HoldLock:
    """A hold row as seen under its lock, with the database's clock at that moment."""

    released_at: dt.datetime | None
    held_until: dt.datetime
    now: dt.datetime


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


def needs() -> HoldNeeds:
    """What an open hold waits for: files of the allowed types, within the limits."""
    return HoldNeeds(
        content_types=tuple(ALLOWED_TYPES),
        max_files=MAX_ATTACHMENTS_PER_INVOICE,
        max_file_bytes=MAX_ATTACHMENT_BYTES,
    )


def held_attachment(info: AttachmentInfo) -> HeldAttachment:
    """A file as the hold's events name it (no bytes, no checksum)."""
    return HeldAttachment(filename=info.filename, content_type=info.content_type, size=info.size)


def hold_updated(
    tenant_id: str,
    hold: Hold,
    change: HoldChange,
    files: Sequence[AttachmentInfo],
    at: dt.datetime,
    attachment: AttachmentInfo | None = None,
) -> DeliveryHoldUpdated:
    """The whole hold after ``change``, as ``delivery.hold_updated`` announces it."""
    return DeliveryHoldUpdated(
        tenant_id=tenant_id,
        invoice_id=hold.invoice_id,
        number=hold.number,
        change=change,
        revision=hold.revision,
        reason=hold.reason,
        held_at=hold.held_at,
        held_until=hold.held_until,
        released_at=hold.released_at,
        released_by=hold.released_by,
        needed=needs() if hold.released_at is None else None,
        attachments=tuple(held_attachment(f) for f in files),
        attachment=held_attachment(attachment) if attachment is not None else None,
        updated_at=at,
    )


def check_open(lock: HoldLock | None, invoice_id: str) -> None:
    """Refuse a change to a hold that does not exist or has left (checked after the lock)."""
    if lock is None:
        raise HoldNotFoundError(f"no hold for invoice {invoice_id!r}")
    if lock.released_at is not None:
        raise HoldClosedError(f"invoice {invoice_id!r} was released from its hold")
    if lock.held_until <= lock.now:
        raise HoldClosedError(f"the hold of invoice {invoice_id!r} ended at {lock.held_until}")


def check_duration(duration: dt.timedelta) -> int:
    """A policy's duration in whole seconds, 1 minute to ``MAX_HOLD``; ValueError otherwise."""
    seconds = int(duration.total_seconds())
    if seconds < 60 or duration > MAX_HOLD:
        raise ValueError(f"duration must be between 1 minute and {MAX_HOLD.days} days")
    return seconds


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
    try:
        check_file_name(filename)  # C1 controls and bidirectional overrides too
    except ValueError as exc:
        raise AttachmentRejectedError("filename", f"filename {exc}") from None
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
