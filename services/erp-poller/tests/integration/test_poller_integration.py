"""erp-poller against the real PostgreSQL and the Fortnox sandbox served in-process.

Each test gets a fresh, migrated schema; companies, tenants and connection ids are random.
Polls are driven the way the service's scheduler does it: claim a due connection in a
transaction, poll it, record the poll with ``finish_poll``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.adapters.sources import open_source
from erp_poller.domain.connections import Connection, ConnectionConfig
from erp_poller.domain.documents import Document, content_version
from erp_poller.service import polling
from erp_poller.service.ports import Change, FetchCache, Listing, Source
from erp_poller.testing import given_profile, seller_profile
from nordflow_connectors.fortnox import lastmodified_param
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    AsyncFortnoxSandboxAdmin,
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)
from nordflow_schemas.common import ConnectionMode, SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import Envelope, decode
from nordflow_schemas.events import RELATED_TENANT, DocumentKind, ErpDocumentFetched, EventBody
from pydantic import SecretStr

pytestmark = pytest.mark.integration

OVERLAP = dt.timedelta(seconds=120)
PROFILE = seller_profile("Nordflow Test AB", organisation_number="556000-0001")


# ------------------------------------------------------------------------------ helpers


class Fortnox:
    """One sandbox company, written to straight over the Fortnox API."""

    def __init__(self, sandbox: RunningFortnoxSandbox, company: SandboxCompany) -> None:
        self.sandbox = sandbox
        self.company = company
        self.http = httpx.AsyncClient(
            base_url=sandbox.base_url, headers=company.headers, timeout=10.0
        )

    async def customer(self) -> str:
        body = {"Name": f"Kund {secrets.token_hex(3)} AB", "EmailInvoice": "ekonomi@kund.example"}
        answer = await self.http.post("/3/customers", json={"Customer": body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["Customer"]["CustomerNumber"])

    async def invoice(self, customer: str, price: int = 100) -> str:
        body = {
            "CustomerNumber": customer,
            "InvoiceRows": [{"Description": "Konsult", "DeliveredQuantity": 1, "Price": price}],
        }
        answer = await self.http.post("/3/invoices", json={"Invoice": body})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["Invoice"]["DocumentNumber"])

    async def put(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = await self.http.put(path, json=body) if body else await self.http.put(path)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def aclose(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def fortnox(sandbox: RunningFortnoxSandbox) -> AsyncIterator[Fortnox]:
    api = Fortnox(sandbox, sandbox.create_company())
    yield api
    await api.aclose()


@dataclass(frozen=True)
class Added:
    connection_id: str
    tenant_id: str
    token: str


async def add_connection(
    pool: asyncpg.Pool,
    box: SecretBox,
    fortnox: Fortnox,
    *,
    mode: ConnectionMode = ConnectionMode.AUTOMATIC,
    cutoff: dt.datetime | None = None,
) -> Added:
    added = Added(
        connection_id=f"conn-{uuid.uuid4().hex[:10]}",
        tenant_id=f"t-{uuid.uuid4().hex[:10]}",
        token=fortnox.company.token,
    )
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=added.connection_id,
            tenant_id=added.tenant_id,
            system=SourceSystem.FORTNOX,
            base_url=fortnox.sandbox.base_url,
            token_sealed=box.seal(added.token),
            mode=mode,
            cutoff_at=cutoff or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10),
        )
    )
    await given_profile(PgUnitOfWork(pool), added.tenant_id, PROFILE)
    return added


async def poll_due(
    pool: asyncpg.Pool,
    box: SecretBox,
    source: Any = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> tuple[Connection, int] | None:
    """One scheduler tick: claim a due connection, poll it, record the poll (due again now)."""
    uow = PgUnitOfWork(pool)
    async with uow.transaction() as lock:
        connection = await lock.connections.claim_due()
        if connection is None:
            return None
        profile = await lock.profiles.get(connection.tenant_id)
        assert profile is not None
        opened = open_source(connection, box, pool)
        try:
            cursor, emitted = await polling.poll_connection(
                uow,
                connection,
                profile,
                source(opened) if source else opened,
                overlap=OVERLAP,
                now=now,
            )
        finally:
            await opened.aclose()
        await lock.connections.finish_poll(
            connection.connection_id,
            cursor_at=cursor,
            next_poll_at=dt.datetime.now(dt.UTC),
            error=None,
        )
    return connection, emitted


@dataclass(frozen=True)
class Row:
    seq: int
    topic: str
    tenant_id: str
    key: bytes
    env: Envelope[EventBody]

    @property
    def body(self) -> ErpDocumentFetched:
        assert isinstance(self.env.body, ErpDocumentFetched)
        return self.env.body


async def outbox(pool: asyncpg.Pool) -> list[Row]:
    rows = await pool.fetch("SELECT * FROM outbox ORDER BY seq")
    out = []
    for row in rows:
        headers = [(name, base64.b64decode(value)) for name, value in json.loads(row["headers"])]
        out.append(
            Row(
                seq=row["seq"],
                topic=row["topic"],
                tenant_id=row["tenant_id"],
                key=bytes(row["key"]),
                env=decode(bytes(row["value"]), headers),
            )
        )
    return out


async def connection_row(pool: asyncpg.Pool, connection_id: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM connections WHERE connection_id = $1", connection_id)
    assert row is not None
    return row


# ------------------------------------------------------------------------------- polling


async def test_polls_emit_each_invoice_once_skip_the_overlap_and_emit_one_new_version(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox, sandbox: RunningFortnoxSandbox
) -> None:
    customer = await fortnox.customer()
    numbers = [await fortnox.invoice(customer, price=100 * (i + 1)) for i in range(3)]
    added = await add_connection(pool, box, fortnox)

    # first poll: one event per invoice
    before = dt.datetime.now(dt.UTC)
    polled = await poll_due(pool, box)
    assert polled is not None
    assert polled[1] == 3
    rows = await outbox(pool)
    assert len(rows) == 3
    assert {r.env.subject for r in rows} == set(numbers)
    assert len({r.env.id for r in rows}) == 3
    for row in rows:
        body = row.body
        assert row.topic == "erp.document.fetched"
        assert row.tenant_id == added.tenant_id == body.tenant_id
        assert (
            row.key.decode()
            == body.invoice_id
            == canonical_invoice_id(
                added.tenant_id, SourceSystem.FORTNOX, added.connection_id, row.env.subject or ""
            )
        )
        assert row.env.source == "/erp-poller"
        assert body.test_mode is False
        assert body.kind is DocumentKind.INVOICE
        assert body.source.connection_id == added.connection_id
        assert body.source.document_id == body.source.document_number == row.env.subject
        assert body.payload["DocumentNumber"] == row.env.subject
        assert body.payload["InvoiceRows"][0]["Description"] == "Konsult"
        assert body.version == content_version(body.payload)
        assert body.related[RELATED_TENANT] == PROFILE.model_dump(mode="json")
        assert "seller" not in body.related
        assert body.related["customer"]["CustomerNumber"] == customer
    cursor = (await connection_row(pool, added.connection_id))["cursor_at"]
    assert before <= cursor <= dt.datetime.now(dt.UTC)

    # second poll: the overlap is read again, nothing is emitted again
    polled = await poll_due(pool, box)
    assert polled is not None
    assert polled[1] == 0
    assert len(await outbox(pool)) == 3
    async with AsyncFortnoxSandboxAdmin(sandbox.base_url) as admin:
        requests = await admin.requests(added.token, 200)
    listings = [r for r in requests if r["method"] == "GET" and r["path"] == "/3/invoices"]
    assert parse_qs(listings[-1]["query"])["lastmodified"] == [lastmodified_param(cursor - OVERLAP)]
    invoice_reads = [r for r in requests if r["path"].startswith("/3/invoices/")]
    assert len(invoice_reads) == 6  # every invoice was fetched in both polls

    # a change in Fortnox: exactly one new version of that invoice
    await fortnox.put(f"/3/invoices/{numbers[1]}", {"Invoice": {"Remarks": "Ny referens"}})
    polled = await poll_due(pool, box)
    assert polled is not None
    assert polled[1] == 1
    rows = await outbox(pool)
    assert len(rows) == 4
    first, changed = next(r for r in rows if r.env.subject == numbers[1]), rows[-1]
    assert changed.env.subject == numbers[1]
    assert changed.body.invoice_id == first.body.invoice_id
    assert changed.body.version != first.body.version
    assert changed.body.payload["Remarks"] == "Ny referens"
    seen = await pool.fetchval(
        "SELECT versions_seen FROM documents WHERE connection_id = $1 AND document_id = $2",
        added.connection_id,
        numbers[1],
    )
    assert seen == 2

    # and quiet again
    polled = await poll_due(pool, box)
    assert polled is not None
    assert polled[1] == 0
    assert len(await outbox(pool)) == 4


async def test_a_credit_invoice_is_fetched_as_a_credit_note(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    original = await fortnox.invoice(await fortnox.customer())
    await add_connection(pool, box, fortnox)
    polled = await poll_due(pool, box)
    assert polled is not None
    assert polled[1] == 1

    credited = await fortnox.put(f"/3/invoices/{original}/credit")
    credit_number = str(credited["Invoice"]["CreditInvoiceReference"])
    polled = await poll_due(pool, box)

    assert polled is not None
    assert polled[1] == 2  # the credit invoice, and the original now referring to it
    kinds = {r.env.subject: r.body.kind for r in (await outbox(pool))[1:]}
    assert kinds == {credit_number: DocumentKind.CREDIT_NOTE, original: DocumentKind.INVOICE}


async def test_a_connection_in_test_mode_emits_test_mode_events(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    customer = await fortnox.customer()
    await fortnox.invoice(customer)
    await fortnox.invoice(customer)
    await add_connection(pool, box, fortnox, mode=ConnectionMode.TEST)

    polled = await poll_due(pool, box)

    assert polled is not None
    assert polled[0].mode is ConnectionMode.TEST
    rows = await outbox(pool)
    assert len(rows) == 2
    assert all(r.body.test_mode is True for r in rows)


class FailsOnSecondInvoice:
    """A source that dies in the middle of a poll (like a crash or a lost connection)."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.system = inner.system
        self.reads = 0

    def changes_since(self, since: dt.datetime) -> Listing:
        return self.inner.changes_since(since)

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        self.reads += 1
        if self.reads == 2:
            raise ConnectionError("lost the connection to Fortnox")
        return await self.inner.fetch(change, cache)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_poll_that_dies_midway_keeps_what_it_emitted_and_the_next_emits_the_rest(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    customer = await fortnox.customer()
    numbers = [await fortnox.invoice(customer) for _ in range(3)]
    added = await add_connection(pool, box, fortnox)

    with pytest.raises(ConnectionError):
        await poll_due(pool, box, source=FailsOnSecondInvoice)

    assert [r.env.subject for r in await outbox(pool)] == numbers[:1]
    assert (await connection_row(pool, added.connection_id))["cursor_at"] is None

    polled = await poll_due(pool, box)  # the lock went with the failed transaction
    assert polled is not None
    assert polled[1] == 2
    assert sorted(r.env.subject or "" for r in await outbox(pool)) == sorted(numbers)


@dataclass
class Clock:
    now: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(dt.datetime(2025, 3, 10, 10, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def clocked_sandbox(clock: Clock) -> Iterator[RunningFortnoxSandbox]:
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000, clock=clock)) as running:
        yield running


async def test_documents_last_modified_before_the_cutoff_minute_are_not_fetched(
    pool: asyncpg.Pool, box: SecretBox, clocked_sandbox: RunningFortnoxSandbox, clock: Clock
) -> None:
    api = Fortnox(clocked_sandbox, clocked_sandbox.create_company())
    try:
        clock.now = dt.datetime(2025, 3, 10, 10, 0, tzinfo=dt.UTC)
        customer = await api.customer()
        old = await api.invoice(customer)
        clock.now = dt.datetime(2025, 3, 10, 10, 30, tzinfo=dt.UTC)
        new = await api.invoice(customer)
        await add_connection(pool, box, api, cutoff=dt.datetime(2025, 3, 10, 10, 10, tzinfo=dt.UTC))

        # the poller's clock agrees with the sandbox's, so its cursor is in the same time
        polled = await poll_due(pool, box, now=clock)
        assert polled is not None
        assert [r.env.subject for r in await outbox(pool)] == [new]

        # touching the old invoice after the cut-off brings it in
        clock.now = dt.datetime(2025, 3, 10, 10, 40, tzinfo=dt.UTC)
        await api.put(f"/3/invoices/{old}", {"Invoice": {"Remarks": "ändrad"}})
        polled = await poll_due(pool, box, now=clock)
        assert polled is not None
        assert [r.env.subject for r in await outbox(pool)] == [new, old]
    finally:
        await api.aclose()


# ---------------------------------------------------------------------- claiming and leases


async def test_a_manual_connection_is_never_claimed(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    await fortnox.invoice(await fortnox.customer())
    await add_connection(pool, box, fortnox, mode=ConnectionMode.MANUAL)
    async with pool.acquire() as conn, conn.transaction():
        assert await PgConnectionRepository(conn).claim_due() is None
    assert await poll_due(pool, box) is None
    assert await outbox(pool) == []

    automatic = await add_connection(pool, box, fortnox)
    async with pool.acquire() as conn, conn.transaction():
        claimed = await PgConnectionRepository(conn).claim_due()
        assert claimed is not None
        assert claimed.connection_id == automatic.connection_id
        await PgConnectionRepository(conn).finish_poll(
            claimed.connection_id,
            cursor_at=None,
            next_poll_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            error=None,
        )
    async with pool.acquire() as conn, conn.transaction():
        assert await PgConnectionRepository(conn).claim_due() is None


async def test_a_held_connection_is_skipped_by_other_claims(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    only = await add_connection(pool, box, fortnox)
    async with pool.acquire() as first, pool.acquire() as second:
        holding = first.transaction()
        await holding.start()
        claimed = await PgConnectionRepository(first).claim_due()
        assert claimed is not None
        assert claimed.connection_id == only.connection_id
        async with second.transaction():
            # SKIP LOCKED: answers at once instead of waiting for the holder
            assert await asyncio.wait_for(PgConnectionRepository(second).claim_due(), 5) is None

        # a second due connection is handed to the other claimer meanwhile
        other = await add_connection(pool, box, fortnox)
        async with second.transaction():
            next_claim = await asyncio.wait_for(PgConnectionRepository(second).claim_due(), 5)
            assert next_claim is not None
            assert next_claim.connection_id == other.connection_id

        await holding.rollback()  # the poller died: the lock is gone at once
        async with second.transaction():
            again = await PgConnectionRepository(second).claim_due()
            assert again is not None


async def test_the_held_row_lock_does_not_block_the_polls_own_document_inserts(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    """Documents reference the claimed row (KEY SHARE); the claim's lock must allow that."""
    await fortnox.invoice(await fortnox.customer())
    await add_connection(pool, box, fortnox)
    polled = await asyncio.wait_for(poll_due(pool, box), timeout=10)
    assert polled is not None
    assert polled[1] == 1


# ------------------------------------------------------------------------- the repository


async def test_adding_an_id_of_another_tenant_raises_permission_error(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    added = await add_connection(pool, box, fortnox)
    repo = PgConnectionRepository(pool)
    intruder = {
        "connection_id": added.connection_id,
        "tenant_id": f"t-{uuid.uuid4().hex[:10]}",
        "system": SourceSystem.FORTNOX,
        "base_url": "http://evil.example",
        "token_sealed": box.seal("stolen"),
        "mode": ConnectionMode.AUTOMATIC,
        "cutoff_at": dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
    }
    with pytest.raises(PermissionError):
        await repo.add(ConnectionConfig(**intruder))
    with pytest.raises(PermissionError):  # same tenant, another source system
        await repo.add(
            ConnectionConfig(
                **{**intruder, "tenant_id": added.tenant_id, "system": SourceSystem.VISMA_NET}
            )
        )

    row = await connection_row(pool, added.connection_id)
    assert row["tenant_id"] == added.tenant_id
    assert row["base_url"] == fortnox.sandbox.base_url
    assert box.open(bytes(row["token_sealed"])).get_secret_value() == added.token


async def test_re_adding_a_connection_updates_it_and_keeps_the_cursor(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    added = await add_connection(pool, box, fortnox)
    polled = await poll_due(pool, box)
    assert polled is not None
    cursor = (await connection_row(pool, added.connection_id))["cursor_at"]
    assert cursor is not None

    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=added.connection_id,
            tenant_id=added.tenant_id,
            system=SourceSystem.FORTNOX,
            base_url=fortnox.sandbox.base_url,
            token_sealed=box.seal(added.token),
            mode=ConnectionMode.TEST,
            cutoff_at=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
            poll_interval_seconds=600,
        )
    )
    row = await connection_row(pool, added.connection_id)
    assert row["cursor_at"] == cursor
    assert row["mode"] == "test"
    assert row["cutoff_at"] == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert row["poll_interval_seconds"] == 600


async def test_the_token_is_stored_sealed_and_never_listed(
    pool: asyncpg.Pool, box: SecretBox, fortnox: Fortnox
) -> None:
    added = await add_connection(pool, box, fortnox)
    row = await connection_row(pool, added.connection_id)
    sealed = bytes(row["token_sealed"])

    assert added.token.encode() not in sealed
    assert sealed != added.token.encode()
    assert box.open(sealed).get_secret_value() == added.token
    other_box = SecretBox(SecretStr(Fernet.generate_key().decode()))
    with pytest.raises(ValueError, match="cannot be decrypted"):
        other_box.open(sealed)

    listed = await PgConnectionRepository(pool).states(added.tenant_id)
    assert [r.connection_id for r in listed] == [added.connection_id]
    assert not hasattr(listed[0], "token_sealed")
    assert added.token not in repr(listed[0])
