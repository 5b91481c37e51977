"""The claim check on the real PostgreSQL: a 1.6 MB Sirvoy webhook (one booking of 14 long
invoices, from the sandbox) is accepted; each document goes out as erp.document.chunked
events written before its erp.document.fetched (by outbox seq, in the same transaction),
every row well under the event budget, and the chunks put together are the content the
event would have carried."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import asyncpg
import pytest
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.domain.connections import Connection, ConnectionConfig
from erp_poller.testing import given_profile, seller_profile
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.outbox import MAX_EVENT_BYTES
from nordflow_sandboxes.sirvoy.testing import running_sirvoy_sandbox, running_webhook_receiver
from nordflow_schemas.claims import assemble, chunk_bytes
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import decode
from nordflow_schemas.events import RELATED_TENANT, ErpDocumentChunked, ErpDocumentFetched

pytestmark = pytest.mark.integration

LONG_ROW = {"description": "Konferenspaket med helpension " + "x" * 450, "quantity": 1}


async def sirvoy_connection(pool: asyncpg.Pool, box: SecretBox, secret: str) -> Connection:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=f"{tenant}-sirvoy",
            tenant_id=tenant,
            system=SourceSystem.SIRVOY,
            base_url="https://push.invalid",
            token_sealed=box.seal(secret),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
    )
    await given_profile(PgUnitOfWork(pool), tenant, seller_profile("Hotell AB"))
    connection = await PgConnectionRepository(pool).get(f"{tenant}-sirvoy")
    assert connection is not None
    return connection


async def outbox(pool: asyncpg.Pool, tenant: str) -> list[tuple[int, int, Any]]:
    """(seq, row size, event body) of the tenant's outbox rows, in order."""
    rows = await pool.fetch(
        "SELECT seq, key, value, headers FROM outbox WHERE tenant_id = $1 ORDER BY seq", tenant
    )
    out = []
    for row in rows:
        headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
        size = len(row["key"]) + len(row["value"]) + sum(len(k) + len(v) for k, v in headers)
        out.append((row["seq"], size, decode(bytes(row["value"]), headers).body))
    return out


async def test_a_large_sirvoy_webhook_goes_as_chunks_then_references(harness, pool, box):
    with running_sirvoy_sandbox() as sandbox, running_webhook_receiver() as receiver:
        account = sandbox.create_account(webhook_url=receiver.url)
        credentials = {"api_token": account.token, "webhook_secret": account.webhook_secret}
        connection = await sirvoy_connection(pool, box, json.dumps(credentials))
        with sandbox.admin() as admin:
            booking = admin.create_booking(account.token)
            for _ in range(14):
                admin.create_invoice(
                    account.token,
                    booking["bookingId"],
                    rows=[{**LONG_ROW, "unit_price": 100 + i} for i in range(200)],
                )
            assert admin.flush(account.token, timeout=30)
        hooks = receiver.wait_for(15, timeout=30)
    last = hooks[-1]
    assert len(last.body) > 1_600_000  # over the 900 KiB event budget, under the 10 MiB edge
    push = {
        "content-type": "application/json",
        "x-sirvoy-signature": last.headers["x-sirvoy-signature"],
    }

    async with harness.http() as client:
        url = f"/api/v1/ingest/sirvoy/{connection.connection_id}"
        response = await client.post(url, content=last.body, headers=push)
        assert response.status_code == 200, response.text[:500]
        assert {d["outcome"] for d in response.json()["documents"]} == {"emitted"}

        rows = await outbox(pool, connection.tenant_id)
        assert max(size for _, size, _ in rows) < 360 * 1024 < MAX_EVENT_BYTES
        fetched = [(seq, body) for seq, _, body in rows if isinstance(body, ErpDocumentFetched)]
        chunks = [(seq, body) for seq, _, body in rows if isinstance(body, ErpDocumentChunked)]
        assert len(fetched) == 14
        raw = json.loads(last.body)
        for (seq, event), invoice in zip(fetched, raw["invoices"], strict=True):
            ref = event.payload_ref
            assert ref is not None
            assert event.payload == {}
            assert set(event.related) == {RELATED_TENANT}
            own = [(s, c) for s, c in chunks if c.sha256 == ref.sha256]
            assert len(own) == ref.chunks > 1
            assert all(s < seq for s, _ in own)  # every chunk is published before the event
            content = json.loads(assemble(ref, {c.index: chunk_bytes(c) for _, c in own}))
            assert content["payload"] == invoice
            assert len(content["related"]["booking"]["invoices"]) == 14
            assert {c.tenant_id for _, c in own} == {connection.tenant_id}

        # The same webhook again: nothing new is written, neither chunks nor events.
        again = await client.post(url, content=last.body, headers=push)
        assert {d["outcome"] for d in again.json()["documents"]} == {"unchanged"}
        assert len(await outbox(pool, connection.tenant_id)) == len(rows)
