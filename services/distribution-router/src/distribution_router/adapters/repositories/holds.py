"""`hold_policies`, `holds` and `hold_attachments` in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib

import asyncpg
from nordflow_schemas.events import HoldReason

from ...domain.channels import SEND_INVOICE
from ...domain.holds import TENANT_DEFAULT, AttachmentInfo, Hold, HoldLock, HoldPolicy
from ...domain.sending import Attachment

_HOLD_COLUMNS = (
    "h.invoice_id, h.customer_key, h.held_at, h.held_until, h.released_at, h.released_by, "
    "h.number, h.reason, h.revision, "
    "(SELECT count(*) FROM hold_attachments a WHERE a.invoice_id = h.invoice_id) AS attachments"
)
_ATTACHMENT_COLUMNS = "attachment_id, invoice_id, filename, content_type, size, sha256, added_at"


def _key(customer_key: str | None) -> str:
    return customer_key if customer_key is not None else TENANT_DEFAULT


def _policy(row: asyncpg.Record) -> HoldPolicy:
    key = row["customer_key"]
    return HoldPolicy(
        customer_key=None if key == TENANT_DEFAULT else key,
        enabled=row["enabled"],
        duration=dt.timedelta(seconds=row["duration_seconds"]),
        updated_at=row["updated_at"],
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
        number=row["number"],
        reason=HoldReason(row["reason"]) if row["reason"] is not None else None,
        revision=row["revision"],
    )


def _info(row: asyncpg.Record) -> AttachmentInfo:
    return AttachmentInfo(**{k: row[k] for k in AttachmentInfo.__dataclass_fields__})


class PgHoldRepository:
    """Hold policies, held invoices and their files."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def effective_policy(self, tenant_id: str, customer_key: str) -> HoldPolicy | None:
        """The customer's policy, else the tenant's default."""
        row = await self.conn.fetchrow(
            "SELECT * FROM hold_policies WHERE tenant_id = $1 AND customer_key IN ($2, '') "
            "ORDER BY customer_key = '' LIMIT 1",
            tenant_id,
            customer_key,
        )
        return None if row is None else _policy(row)

    async def save_policy(
        self, tenant_id: str, customer_key: str | None, enabled: bool, seconds: int
    ) -> HoldPolicy:
        """Create or replace a policy."""
        row = await self.conn.fetchrow(
            "INSERT INTO hold_policies (tenant_id, customer_key, enabled, duration_seconds) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, customer_key) DO UPDATE SET "
            "enabled = EXCLUDED.enabled, duration_seconds = EXCLUDED.duration_seconds, "
            "updated_at = now() RETURNING *",
            tenant_id,
            _key(customer_key),
            enabled,
            seconds,
        )
        assert row is not None
        return _policy(row)

    async def get_policy(self, tenant_id: str, customer_key: str | None) -> HoldPolicy | None:
        """One policy, if set."""
        row = await self.conn.fetchrow(
            "SELECT * FROM hold_policies WHERE tenant_id = $1 AND customer_key = $2",
            tenant_id,
            _key(customer_key),
        )
        return None if row is None else _policy(row)

    async def delete_policy(self, tenant_id: str, customer_key: str | None) -> bool:
        """Remove a policy; False if none was set."""
        status = await self.conn.execute(
            "DELETE FROM hold_policies WHERE tenant_id = $1 AND customer_key = $2",
            tenant_id,
            _key(customer_key),
        )
        return bool(status != "DELETE 0")

    async def customer_policies(self, tenant_id: str) -> list[HoldPolicy]:
        """Every customer policy of the tenant, by customer key."""
        rows = await self.conn.fetch(
            "SELECT * FROM hold_policies WHERE tenant_id = $1 AND customer_key <> '' "
            "ORDER BY customer_key",
            tenant_id,
        )
        return [_policy(r) for r in rows]

    async def start(
        self,
        tenant_id: str,
        invoice_id: str,
        customer_key: str,
        until: dt.datetime,
        *,
        number: str | None = None,
        reason: HoldReason | None = None,
    ) -> bool:
        """Record a held invoice (revision 1); False if it was held before."""
        inserted = await self.conn.fetchval(
            "INSERT INTO holds (invoice_id, tenant_id, customer_key, held_until, number, reason) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (invoice_id) DO NOTHING RETURNING true",
            invoice_id,
            tenant_id,
            customer_key,
            until,
            number,
            reason.value if reason is not None else None,
        )
        return bool(inserted)

    async def bump(self, invoice_id: str) -> int:
        """Count a change of the hold (under its row lock); the new revision."""
        revision: int = await self.conn.fetchval(
            "UPDATE holds SET revision = revision + 1 WHERE invoice_id = $1 RETURNING revision",
            invoice_id,
        )
        return revision

    async def get(self, tenant_id: str, invoice_id: str) -> Hold | None:
        """One hold of the tenant."""
        row = await self.conn.fetchrow(
            f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.tenant_id = $1 AND h.invoice_id = $2",
            tenant_id,
            invoice_id,
        )
        return None if row is None else _hold(row)

    async def open_holds(self, tenant_id: str, after: str | None, limit: int) -> list[Hold]:
        """The tenant's invoices held right now, by invoice id."""
        rows = await self.conn.fetch(
            f"SELECT {_HOLD_COLUMNS} FROM holds h WHERE h.tenant_id = $1 "
            "AND h.released_at IS NULL AND h.held_until > clock_timestamp() "
            "AND ($2::text IS NULL OR h.invoice_id > $2) ORDER BY h.invoice_id LIMIT $3",
            tenant_id,
            after,
            limit,
        )
        return [_hold(r) for r in rows]

    async def lock(self, tenant_id: str, invoice_id: str) -> HoldLock | None:
        """Lock the hold row; what it says, with the database's clock after the lock."""
        row = await self.conn.fetchrow(
            "SELECT released_at, held_until, clock_timestamp() AS now FROM holds "
            "WHERE tenant_id = $1 AND invoice_id = $2 FOR UPDATE",
            tenant_id,
            invoice_id,
        )
        return None if row is None else HoldLock(row["released_at"], row["held_until"], row["now"])

    async def release(self, tenant_id: str, invoice_id: str, released_by: str) -> None:
        """End the hold now and make its pending send job due now."""
        await self.conn.execute(
            "UPDATE holds SET released_at = now(), released_by = $3 "
            "WHERE tenant_id = $1 AND invoice_id = $2",
            tenant_id,
            invoice_id,
            released_by,
        )
        await self.conn.execute(
            "UPDATE jobs SET due_at = now() WHERE kind = $1 AND job_key = $2 AND tenant_id = $3 "
            "AND state = 'pending' AND due_at > now()",
            SEND_INVOICE,
            invoice_id,
            tenant_id,
        )

    async def count_attachments(self, invoice_id: str) -> int:
        """How many files the invoice has."""
        count: int = await self.conn.fetchval(
            "SELECT count(*) FROM hold_attachments WHERE invoice_id = $1", invoice_id
        )
        return count

    async def add_attachment(
        self, tenant_id: str, invoice_id: str, filename: str, content_type: str, content: bytes
    ) -> AttachmentInfo:
        """Store a file."""
        row = await self.conn.fetchrow(
            "INSERT INTO hold_attachments "
            "(invoice_id, tenant_id, filename, content_type, content, size, sha256) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ATTACHMENT_COLUMNS}",
            invoice_id,
            tenant_id,
            filename,
            content_type,
            content,
            len(content),
            hashlib.sha256(content).hexdigest(),
        )
        assert row is not None
        return _info(row)

    async def remove_attachment(self, invoice_id: str, attachment_id: int) -> bool:
        """Delete a file; False when there is no such file."""
        status = await self.conn.execute(
            "DELETE FROM hold_attachments WHERE invoice_id = $1 AND attachment_id = $2",
            invoice_id,
            attachment_id,
        )
        return bool(status != "DELETE 0")

    async def list_attachments(self, tenant_id: str, invoice_id: str) -> list[AttachmentInfo]:
        """The files of a hold, in the order added."""
        rows = await self.conn.fetch(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM hold_attachments "
            "WHERE invoice_id = $1 AND tenant_id = $2 ORDER BY attachment_id",
            invoice_id,
            tenant_id,
        )
        return [_info(r) for r in rows]

    async def attachments_for_send(self, invoice_id: str) -> tuple[Attachment, ...]:
        """The files with their bytes, after a share lock on the hold row."""
        held = await self.conn.fetchval(
            "SELECT true FROM holds WHERE invoice_id = $1 FOR SHARE", invoice_id
        )
        if not held:  # never held, so nothing attached (every file references its hold)
            return ()
        rows = await self.conn.fetch(
            "SELECT filename, content_type, content FROM hold_attachments "
            "WHERE invoice_id = $1 ORDER BY attachment_id",
            invoice_id,
        )
        return tuple(Attachment(r["filename"], r["content_type"], r["content"]) for r in rows)
