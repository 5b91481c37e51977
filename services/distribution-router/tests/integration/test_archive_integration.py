"""service.archive on the real PostgreSQL repository: gapless, idempotent, immutable."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from distribution_router.adapters.repositories import PgArchiveRepository
from distribution_router.deps import Deps
from distribution_router.service import archive
from distribution_router.testing import app_for
from nordflow_runtime import db
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.events import Channel

pytestmark = pytest.mark.integration

SENT_AT = dt.datetime(2025, 3, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
async def pool(harness: ServiceHarness[Deps], database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """Enough connections for 20 concurrent transactions on the harness's schema."""
    p = await db.create_pool(database_url, harness.schema, min_size=1, max_size=21)
    yield p
    await p.close()


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


async def store(
    conn: asyncpg.Connection,
    tenant_id: str,
    invoice_id: str | None = None,
    *,
    content: bytes = b"<Invoice/>",
    channel: Channel = Channel.PEPPOL,
    source_document_number: str | None = "1001",
    issue_date: dt.date = dt.date(2025, 3, 10),
) -> int:
    return await archive.archive_document(
        PgArchiveRepository(conn),
        tenant_id=tenant_id,
        invoice_id=invoice_id or f"inv_{uuid.uuid4().hex}",
        source_document_number=source_document_number,
        number="1001",
        channel=channel,
        document_format="peppol-bis3",
        content=content,
        content_type="application/xml",
        sent_at=SENT_AT,
        issue_date=issue_date,
    )


async def test_twenty_concurrent_transactions_get_gapless_numbers_even_with_rollbacks(pool):
    tenant = new_tenant()

    class AbandonedError(Exception):
        pass

    async def archive_one(index: int) -> int | None:
        try:
            async with pool.acquire() as c, c.transaction():
                sequence = await store(c, tenant, content=f"<Invoice n='{index}'/>".encode())
                if index % 5 == 0:  # every fifth caller's transaction fails after archiving
                    raise AbandonedError
                return sequence
        except AbandonedError:
            return None

    results = await asyncio.gather(*(archive_one(i) for i in range(25)))
    committed = sorted(s for s in results if s is not None)
    assert len(committed) == 20
    stored = await pool.fetch(
        "SELECT sequence FROM archived_documents WHERE tenant_id = $1 ORDER BY sequence", tenant
    )
    assert [r["sequence"] for r in stored] == list(range(1, 21)) == committed
    async with pool.acquire() as c, c.transaction():
        assert await store(c, tenant) == 21


async def test_each_tenant_counts_from_one(conn):
    a, b = new_tenant(), new_tenant()
    assert [await store(conn, a), await store(conn, a)] == [1, 2]
    assert await store(conn, b) == 1


async def test_archiving_the_same_document_again_returns_its_number(conn, pool):
    tenant, invoice = new_tenant(), f"inv_{uuid.uuid4().hex}"
    first = await store(conn, tenant, invoice)
    assert await store(conn, tenant, invoice) == first
    # Concurrent duplicates wait on the tenant's counter and then find the stored document.
    other = f"inv_{uuid.uuid4().hex}"

    async def archive_other() -> int:
        async with pool.acquire() as c, c.transaction():
            return await store(c, tenant, other, content=b"<Invoice id='other'/>")

    assert set(await asyncio.gather(*(archive_other() for _ in range(5)))) == {first + 1}
    # Another channel or other bytes are another document.
    assert await store(conn, tenant, invoice, channel=Channel.EMAIL) == first + 2
    assert await store(conn, tenant, invoice, content=b"<Invoice v='2'/>") == first + 3
    assert (
        await conn.fetchval("SELECT count(*) FROM archived_documents WHERE tenant_id = $1", tenant)
        == 4
    )


async def test_stored_bytes_checksum_and_retention(conn):
    tenant = new_tenant()
    content = b"%PDF-1.7 invoice 1001"
    sequence = await store(conn, tenant, content=content, issue_date=dt.date(2024, 12, 31))
    found = await archive.document_content(
        PgArchiveRepository(conn), tenant_id=tenant, sequence=sequence
    )
    assert found is not None
    document, stored = found
    assert stored == content
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    assert document.retain_until == dt.date(2031, 12, 31)
    assert document.sent_at == SENT_AT
    assert (
        await archive.document_content(
            PgArchiveRepository(conn), tenant_id=new_tenant(), sequence=sequence
        )
        is None
    )


async def test_the_tenants_fiscal_year_sets_retention_for_later_documents(conn):
    tenant = new_tenant()
    before = await store(conn, tenant, issue_date=dt.date(2024, 9, 1))
    await archive.set_fiscal_year_start_month(PgArchiveRepository(conn), tenant, 7)
    after = await store(conn, tenant, issue_date=dt.date(2024, 9, 2))
    kept = {
        d.sequence: d.retain_until
        for d in await archive.find_documents(PgArchiveRepository(conn), tenant_id=tenant)
    }
    assert kept == {before: dt.date(2031, 12, 31), after: dt.date(2032, 12, 31)}


async def test_search_by_invoice_id_and_source_document_number(conn):
    tenant, invoice = new_tenant(), f"inv_{uuid.uuid4().hex}"
    pdf = await store(conn, tenant, invoice, channel=Channel.EMAIL, source_document_number="77")
    xml = await store(conn, tenant, invoice, source_document_number="77")
    other = await store(conn, tenant, source_document_number="78")
    by_invoice = await archive.find_documents(
        PgArchiveRepository(conn), tenant_id=tenant, invoice_id=invoice
    )
    assert [d.sequence for d in by_invoice] == [pdf, xml]
    by_number = await archive.find_documents(
        PgArchiveRepository(conn), tenant_id=tenant, source_document_number="78"
    )
    assert [d.sequence for d in by_number] == [other]
    page = await archive.find_documents(
        PgArchiveRepository(conn), tenant_id=tenant, after=pdf, limit=1
    )
    assert [d.sequence for d in page] == [xml]
    assert (
        await archive.find_documents(
            PgArchiveRepository(conn), tenant_id=new_tenant(), invoice_id=invoice
        )
        == []
    )


async def test_an_archived_document_cannot_be_updated_deleted_or_truncated(conn):
    tenant = new_tenant()
    sequence = await store(conn, tenant)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="immutable"):
        await conn.execute(
            "UPDATE archived_documents SET content = 'x' WHERE tenant_id = $1", tenant
        )
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="retained until"):
        await conn.execute("DELETE FROM archived_documents WHERE tenant_id = $1", tenant)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="truncated"):
        await conn.execute("TRUNCATE archived_documents")
    assert (
        await archive.get_document(PgArchiveRepository(conn), tenant_id=tenant, sequence=sequence)
        is not None
    )


async def test_purge_deletes_only_documents_past_their_retention(conn):
    tenant = new_tenant()
    old = await store(conn, tenant, issue_date=dt.date(2010, 5, 1))  # kept through 2017
    recent = await store(conn, tenant)
    assert await archive.purge_expired(PgArchiveRepository(conn)) >= 1
    remaining = [
        d.sequence
        for d in await archive.find_documents(PgArchiveRepository(conn), tenant_id=tenant)
    ]
    assert remaining == [recent]
    assert old not in remaining
    # Numbers are never reused after a purge.
    assert await store(conn, tenant, content=b"<Invoice v='3'/>") == recent + 1


async def test_the_purge_command_deletes_expired_documents(fresh_database_url):
    """`distribution-router archive purge` on the service's own schema of a database."""
    app = app_for(fresh_database_url)
    await app.migrate()
    conn = await asyncpg.connect(fresh_database_url, server_settings={"search_path": app.schema})
    try:
        tenant = new_tenant()
        await store(conn, tenant, issue_date=dt.date(2009, 1, 1))
        kept = await store(conn, tenant)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "distribution_router",
            "archive",
            "purge",
            env=os.environ
            | {"DATABASE_URL": fresh_database_url, "KAFKA_BOOTSTRAP_SERVERS": "unused:9092"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == "purged 1 archived document(s) past their retention"
        repo = PgArchiveRepository(conn)
        remaining = [d.sequence for d in await archive.find_documents(repo, tenant_id=tenant)]
        assert remaining == [kept]
    finally:
        await conn.close()
