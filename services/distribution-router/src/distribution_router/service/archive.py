"""The archive: every sent document, immutable, numbered per tenant, kept for 7 years.

Sequence: each tenant's documents are numbered 1, 2, 3 … without gaps. The number comes from
the tenant's `archive_counters` row, locked and incremented in the caller's transaction: two
concurrent archivers of one tenant queue on that row lock, and a rolled-back transaction takes
its number back with it.

Retention (`domain.archive.retain_until`): `retain_until` is fixed when the document is
archived from its issue date and the tenant's fiscal year (`archive_settings`); a later
change of the fiscal year does not move it.

Immutability: nothing here updates or deletes a document except `purge_expired`, and the
table's trigger refuses any change, and any deletion before `retain_until` has passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from nordflow_schemas.events import Channel

from ..domain.archive import (
    CALENDAR_YEAR,
    ArchivedDocument,
    NewDocument,
    check_start_month,
    fiscal_year_end,
    retain_until,
)
from .ports import ArchiveRepository

__all__ = ["ArchivedDocument", "fiscal_year_end", "retain_until"]


async def fiscal_year_start_month(repo: ArchiveRepository, tenant_id: str) -> int:
    """The month the tenant's fiscal year starts (1 = calendar year, the default)."""
    month = await repo.fiscal_year_start_month(tenant_id)
    return CALENDAR_YEAR if month is None else month


async def set_fiscal_year_start_month(repo: ArchiveRepository, tenant_id: str, month: int) -> None:
    """Set the tenant's fiscal year (for documents archived from now on)."""
    await repo.set_fiscal_year_start_month(tenant_id, check_start_month(month))


async def archive_document(
    repo: ArchiveRepository,
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
    # Lock the tenant's counter first, then look for the document (`store_once`, a statement
    # of its own): a concurrent archiver of the same document has committed by then, so it
    # is found (READ COMMITTED) and no number is spent on a duplicate.
    start_month = await repo.lock_counter(tenant_id)
    document = NewDocument(
        invoice_id=invoice_id,
        number=number,
        source_document_number=source_document_number,
        channel=channel.value,
        document_format=document_format,
        content_type=content_type,
        sha256=sha256,
        sent_at=sent_at,
        issue_date=issue_date,
        retain_until=retain_until(
            issue_date, CALENDAR_YEAR if start_month is None else start_month
        ),
    )
    return await repo.store_once(tenant_id, document, content)


async def find_documents(
    repo: ArchiveRepository,
    *,
    tenant_id: str,
    invoice_id: str | None = None,
    source_document_number: str | None = None,
    number: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[ArchivedDocument]:
    """The tenant's documents matching every filter given, by sequence after ``after``."""
    return await repo.find(
        tenant_id,
        invoice_id=invoice_id,
        source_document_number=source_document_number,
        number=number,
        after=after,
        limit=limit,
    )


async def get_document(
    repo: ArchiveRepository, *, tenant_id: str, sequence: int
) -> ArchivedDocument | None:
    """One of the tenant's documents, without its bytes."""
    return await repo.get(tenant_id, sequence)


async def document_content(
    repo: ArchiveRepository, *, tenant_id: str, sequence: int
) -> tuple[ArchivedDocument, bytes] | None:
    """One of the tenant's documents with its stored bytes."""
    return await repo.content(tenant_id, sequence)


async def purge_expired(repo: ArchiveRepository) -> int:
    """Delete the documents whose retention period is over (retain_until before today, UTC);
    the count deleted. The per-tenant counters stay, so numbers are never reused.
    """
    return await repo.purge_expired()
