"""The archive: every sent document, immutable, numbered per tenant, kept for 7 years.

Sequence: each tenant's documents are numbered 1, 2, 3 … without gaps. The number comes from
the tenant's `archive_counters` row, locked and incremented in the caller's transaction: two
concurrent archivers of one tenant queue on that row lock, and a rolled-back transaction takes
its number back with it.

Retention (Swedish Bokföringslagen 7 kap. 2 §, DOMAIN.md §7): accounting records are kept
until the end of the seventh calendar year after the calendar year in which the fiscal year
ended. The fiscal year is the calendar year unless the tenant set another start month
(`archive_settings`); e.g. with a fiscal year from 1 July, an invoice of 2024-09-01 belongs to
the year ending 2025-06-30 and is kept through 2032-12-31. `retain_until` is fixed when the
document is archived; a later change of the fiscal year does not move it.

Immutability: nothing here updates or deletes a document except `purge_expired`, and the
table's trigger refuses any UPDATE, and any DELETE before `retain_until` has passed.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import datetime as dt
import hashlib
from dataclasses import dataclass

import asyncpg
from nordflow_schemas.events import Channel

RETENTION_YEARS = 7
CALENDAR_YEAR = 1


@dataclass(frozen=True)
class ArchivedDocument:
    """An archive entry without its bytes."""

    sequence: int
    invoice_id: str
    number: str
    source_document_number: str | None
    channel: str
    document_format: str
    content_type: str
    size: int
    sha256: str
    sent_at: dt.datetime
    issue_date: dt.date
    retain_until: dt.date
    archived_at: dt.datetime


def fiscal_year_end(issue_date: dt.date, start_month: int = CALENDAR_YEAR) -> dt.date:
    """The last day of the fiscal year (starting on the 1st of ``start_month``) of a date."""
    if not 1 <= start_month <= 12:
        raise ValueError("fiscal_year_start_month must be 1 to 12")
    if start_month == CALENDAR_YEAR:
        return dt.date(issue_date.year, 12, 31)
    end_month = start_month - 1
    end_year = issue_date.year + 1 if issue_date.month >= start_month else issue_date.year
    return dt.date(end_year, end_month, calendar.monthrange(end_year, end_month)[1])


def retain_until(issue_date: dt.date, start_month: int = CALENDAR_YEAR) -> dt.date:
    """The last day a document must be kept: 31 December of the seventh year after the
    calendar year in which its fiscal year ends.
    """
    return dt.date(fiscal_year_end(issue_date, start_month).year + RETENTION_YEARS, 12, 31)


async def fiscal_year_start_month(conn: asyncpg.Connection, tenant_id: str) -> int:
    """The month the tenant's fiscal year starts (1 = calendar year, the default)."""
    month = await conn.fetchval(
        "SELECT fiscal_year_start_month FROM archive_settings WHERE tenant_id = $1", tenant_id
    )
    return CALENDAR_YEAR if month is None else int(month)


async def set_fiscal_year_start_month(conn: asyncpg.Connection, tenant_id: str, month: int) -> None:
    """Set the tenant's fiscal year (for documents archived from now on)."""
    if not 1 <= month <= 12:
        raise ValueError("fiscal_year_start_month must be 1 to 12")
    await conn.execute(
        "INSERT INTO archive_settings (tenant_id, fiscal_year_start_month) VALUES ($1, $2) "
        "ON CONFLICT (tenant_id) DO UPDATE SET "
        "fiscal_year_start_month = EXCLUDED.fiscal_year_start_month, updated_at = now()",
        tenant_id,
        month,
    )


async def archive_document(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    invoice_id: str,
    source_document_number: str | None,
    number: str,
    channel: Channel,
    document_format: str,
    content: bytes,
    content_type: str,
    sent_at: dt.datetime,
    issue_date: dt.date,
) -> int:
    """Store a sent document in the caller's transaction; its per-tenant sequence number.

    The same invoice, channel and content archived again returns the existing number. The
    tenant's counter row stays locked until the caller commits or rolls back.
    """
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must be timezone-aware")
    sha256 = hashlib.sha256(content).hexdigest()
    # Lock the tenant's counter first, then look for the document: a concurrent archiver of
    # the same document has committed by then, so it is found (READ COMMITTED) and no number
    # is spent on a duplicate.
    await conn.execute(
        "INSERT INTO archive_counters (tenant_id, last_sequence) VALUES ($1, 0) "
        "ON CONFLICT (tenant_id) DO NOTHING",
        tenant_id,
    )
    await conn.execute("SELECT 1 FROM archive_counters WHERE tenant_id = $1 FOR UPDATE", tenant_id)
    existing = await conn.fetchval(
        "SELECT sequence FROM archived_documents "
        "WHERE tenant_id = $1 AND invoice_id = $2 AND channel = $3 AND sha256 = $4",
        tenant_id,
        invoice_id,
        channel.value,
        sha256,
    )
    if existing is not None:
        return int(existing)
    sequence = await conn.fetchval(
        "UPDATE archive_counters SET last_sequence = last_sequence + 1 "
        "WHERE tenant_id = $1 RETURNING last_sequence",
        tenant_id,
    )
    keep_until = retain_until(issue_date, await fiscal_year_start_month(conn, tenant_id))
    await conn.execute(
        "INSERT INTO archived_documents (tenant_id, sequence, invoice_id, "
        "source_document_number, number, channel, document_format, content_type, content, "
        "size, sha256, sent_at, issue_date, retain_until) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        tenant_id,
        sequence,
        invoice_id,
        source_document_number,
        number,
        channel.value,
        document_format,
        content_type,
        content,
        len(content),
        sha256,
        sent_at,
        issue_date,
        keep_until,
    )
    return int(sequence)


_COLUMNS = (
    "sequence, invoice_id, number, source_document_number, channel, document_format, "
    "content_type, size, sha256, sent_at, issue_date, retain_until, archived_at"
)


def _document(row: asyncpg.Record) -> ArchivedDocument:
    return ArchivedDocument(**{k: row[k] for k in ArchivedDocument.__dataclass_fields__})


async def find_documents(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    invoice_id: str | None = None,
    source_document_number: str | None = None,
    number: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[ArchivedDocument]:
    """The tenant's documents matching every filter given, by sequence after ``after``."""
    rows = await conn.fetch(
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


async def get_document(
    conn: asyncpg.Connection, *, tenant_id: str, sequence: int
) -> ArchivedDocument | None:
    """One of the tenant's documents, without its bytes."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM archived_documents WHERE tenant_id = $1 AND sequence = $2",
        tenant_id,
        sequence,
    )
    return None if row is None else _document(row)


async def document_content(
    conn: asyncpg.Connection, *, tenant_id: str, sequence: int
) -> tuple[ArchivedDocument, bytes] | None:
    """One of the tenant's documents with its stored bytes."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, content FROM archived_documents "
        "WHERE tenant_id = $1 AND sequence = $2",
        tenant_id,
        sequence,
    )
    return None if row is None else (_document(row), bytes(row["content"]))


async def purge_expired(conn: asyncpg.Connection) -> int:
    """Delete the documents whose retention period is over (retain_until before today, UTC);
    the count deleted. The per-tenant counters stay, so numbers are never reused.
    """
    status = await conn.execute(
        "DELETE FROM archived_documents WHERE retain_until < (now() AT TIME ZONE 'UTC')::date"
    )
    return int(status.split()[-1])


async def _purge(database_url: str) -> int:
    from nordflow_runtime import db

    pool = await db.create_pool(
        database_url, db.schema_name("distribution-router"), min_size=1, max_size=1
    )
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await purge_expired(conn)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m distribution_router.archive purge``: delete expired archive entries."""
    from nordflow_runtime.cli import settings_or_exit

    from .config import Settings

    parser = argparse.ArgumentParser(prog="python -m distribution_router.archive")
    parser.add_argument("command", choices=["purge"], help="delete entries past retain_until")
    parser.parse_args(argv)
    settings = settings_or_exit("distribution-router", Settings)
    count = asyncio.run(_purge(settings.database_url.get_secret_value()))
    print(f"purged {count} archived document(s) past their retention")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
