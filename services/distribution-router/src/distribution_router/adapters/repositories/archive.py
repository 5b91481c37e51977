"""`archived_documents`, `archive_counters` and `archive_settings` in PostgreSQL."""

from __future__ import annotations

import asyncpg

from ...domain.archive import ArchivedDocument, NewDocument

_COLUMNS = (
    "sequence, invoice_id, number, source_document_number, channel, document_format, "
    "content_type, size, sha256, sent_at, issue_date, retain_until, archived_at"
)


def _document(row: asyncpg.Record) -> ArchivedDocument:
    return ArchivedDocument(**{k: row[k] for k in ArchivedDocument.__dataclass_fields__})


class PgArchiveRepository:
    """The archive: numbered per tenant under the counter row's lock."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self.conn = conn

    async def lock_counter(self, tenant_id: str) -> int | None:
        """Lock the tenant's counter row until the transaction ends, creating it for the
        tenant's first document; the month the tenant's fiscal year starts, if it set one."""
        locked = (
            "SELECT s.fiscal_year_start_month FROM archive_counters c "
            "LEFT JOIN archive_settings s ON s.tenant_id = c.tenant_id "
            "WHERE c.tenant_id = $1 FOR UPDATE OF c"
        )
        row = await self.conn.fetchrow(locked, tenant_id)
        if row is None:
            await self.conn.execute(
                "INSERT INTO archive_counters (tenant_id, last_sequence) VALUES ($1, 0) "
                "ON CONFLICT (tenant_id) DO NOTHING",
                tenant_id,
            )
            row = await self.conn.fetchrow(locked, tenant_id)
        month = row["fiscal_year_start_month"]
        return None if month is None else int(month)

    async def store_once(self, tenant_id: str, document: NewDocument, content: bytes) -> int:
        """The number of the same document archived before; else the tenant's next number,
        taken and the document stored under it (``archived_at`` the database's). One
        statement, run after the counter's lock, so it sees what an archiver that held the
        lock before committed."""
        d = document
        sequence = await self.conn.fetchval(
            "WITH same AS (SELECT sequence FROM archived_documents WHERE tenant_id = $1 "
            "AND invoice_id = $2 AND channel = $5 AND sha256 = $10 LIMIT 1), "
            "next AS (UPDATE archive_counters SET last_sequence = last_sequence + 1 "
            "WHERE tenant_id = $1 AND NOT EXISTS (SELECT FROM same) RETURNING last_sequence), "
            "stored AS (INSERT INTO archived_documents (tenant_id, sequence, invoice_id, "
            "source_document_number, number, channel, document_format, content_type, content, "
            "size, sha256, sent_at, issue_date, retain_until) "
            "SELECT $1, last_sequence, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 "
            "FROM next RETURNING sequence) "
            "SELECT sequence FROM same UNION ALL SELECT sequence FROM stored",
            tenant_id,
            d.invoice_id,
            d.source_document_number,
            d.number,
            d.channel,
            d.document_format,
            d.content_type,
            content,
            len(content),
            d.sha256,
            d.sent_at,
            d.issue_date,
            d.retain_until,
        )
        if sequence is None:
            raise LookupError(f"tenant {tenant_id} has no archive counter: lock it first")
        return int(sequence)

    async def fiscal_year_start_month(self, tenant_id: str) -> int | None:
        """The month the tenant's fiscal year starts, if it set one."""
        month = await self.conn.fetchval(
            "SELECT fiscal_year_start_month FROM archive_settings WHERE tenant_id = $1",
            tenant_id,
        )
        return None if month is None else int(month)

    async def set_fiscal_year_start_month(self, tenant_id: str, month: int) -> None:
        """Set the tenant's fiscal year."""
        await self.conn.execute(
            "INSERT INTO archive_settings (tenant_id, fiscal_year_start_month) VALUES ($1, $2) "
            "ON CONFLICT (tenant_id) DO UPDATE SET "
            "fiscal_year_start_month = EXCLUDED.fiscal_year_start_month, updated_at = now()",
            tenant_id,
            month,
        )

    async def find(
        self,
        tenant_id: str,
        *,
        invoice_id: str | None,
        source_document_number: str | None,
        number: str | None,
        after: int,
        limit: int,
    ) -> list[ArchivedDocument]:
        """The tenant's documents matching every filter given, by sequence after ``after``."""
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM archived_documents WHERE tenant_id = $1 "
            "AND ($2::text IS NULL OR invoice_id = $2) "
            "AND ($3::text IS NULL OR source_document_number = $3) "
            "AND ($4::text IS NULL OR number = $4) "
            "AND sequence > $5 ORDER BY sequence LIMIT $6",
            tenant_id,
            invoice_id,
            source_document_number,
            number,
            after,
            limit,
        )
        return [_document(r) for r in rows]

    async def get(self, tenant_id: str, sequence: int) -> ArchivedDocument | None:
        """One document without its bytes."""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM archived_documents WHERE tenant_id = $1 AND sequence = $2",
            tenant_id,
            sequence,
        )
        return None if row is None else _document(row)

    async def content(self, tenant_id: str, sequence: int) -> tuple[ArchivedDocument, bytes] | None:
        """One document with its bytes."""
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS}, content FROM archived_documents "
            "WHERE tenant_id = $1 AND sequence = $2",
            tenant_id,
            sequence,
        )
        return None if row is None else (_document(row), bytes(row["content"]))

    async def purge_expired(self) -> int:
        """Delete the documents whose retain_until is before today (UTC, as the table's
        trigger judges it); the count deleted."""
        status = await self.conn.execute(
            "DELETE FROM archived_documents WHERE retain_until < (now() AT TIME ZONE 'UTC')::date"
        )
        return int(status.split()[-1])
