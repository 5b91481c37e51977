"""nordflow-agent --once against erp-poller's ingest API served by uvicorn on loopback (the
agent is its own package, `agent/`; this is erp-poller's end of it)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.deps import Deps
from erp_poller.domain.connections import ConnectionConfig
from erp_poller.entrypoints.http import ingest
from erp_poller.testing import given_profile
from fastapi import FastAPI
from nordflow_agent import agent
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.http import http_server
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import ConnectionMode, SourceSystem

pytestmark = pytest.mark.integration

SECRET = "agent-push-secret-0123456789"
SIE = """#FLAGGA 0
#FORMAT PC8
#SIETYP 4
#FNAMN "Kök & Bad AB"
#OBJEKT 8 "K1" "Östen Ål"
#VER "F" "9001" 20250310 "Faktura"
{
#TRANS 1510 {8 "K1"} 1250.00
#TRANS 3001 {} -1000.00
#TRANS 2611 {} -250.00
}
""".encode("cp437")


@pytest.fixture
async def server_url(harness: ServiceHarness[Deps]) -> AsyncIterator[str]:
    app = FastAPI()
    app.include_router(ingest.router)
    app.state.pool = harness.pool
    app.state.deps = harness.deps
    # A socket listening before uvicorn starts: the agent's first connect waits in its backlog.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = http_server(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task
    sock.close()


async def on_premise_connection(pool: asyncpg.Pool, box: SecretBox) -> tuple[str, str]:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    connection_id = f"{tenant}-agent"
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant,
            system=SourceSystem.ON_PREMISE,
            base_url="https://agent.invalid",
            token_sealed=box.seal(SECRET),
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
    )
    await given_profile(PgUnitOfWork(pool), tenant)
    return tenant, connection_id


def good_batch() -> bytes:
    return json.dumps(
        {
            "documents": [
                {
                    "document_id": "INV-1",
                    "kind": "invoice",
                    "invoice": {
                        "issue_date": "2025-03-10",
                        "buyer": {"name": "Kund AB"},
                        "lines": [
                            {"description": "x", "quantity": 1, "unit_price": 100, "vat_rate": 25}
                        ],
                    },
                }
            ]
        }
    ).encode()


async def run_agent(folder: Path, url: str, connection_id: str, secret: str = SECRET) -> int:
    argv = ["watch", "--folder", str(folder), "--url", url, "--connection", connection_id]
    argv += ["--once", "--settle", "0.1", "--max-attempts", "2"]
    return await asyncio.to_thread(agent.run, argv, {agent.SECRET_ENV: secret})


async def test_the_agent_pushes_files_and_files_them_by_outcome(
    server_url: str, pool: asyncpg.Pool, box: SecretBox, tmp_path: Path
) -> None:
    tenant, connection_id = await on_premise_connection(pool, box)
    (tmp_path / "2025-03-10.json").write_bytes(good_batch())
    (tmp_path / "2025-03-10.se").write_bytes(SIE)
    (tmp_path / "broken.json").write_text('{"documents": [{"kind": "invoice"}]}')
    (tmp_path / "readme.txt").write_text("not an export")

    # A wrong secret: the server refuses the agent itself, and no file is moved.
    assert await run_agent(tmp_path, server_url, connection_id, secret="wrong") == 2
    assert (tmp_path / "2025-03-10.json").exists()
    assert not (tmp_path / "sent").exists()

    assert await run_agent(tmp_path, server_url, connection_id) == 0
    assert sorted(p.name for p in (tmp_path / "sent").iterdir()) == [
        "2025-03-10.json",
        "2025-03-10.se",
    ]
    failed = sorted(p.name for p in (tmp_path / "failed").iterdir())
    assert failed == ["broken.json", "broken.json.error.txt"]
    assert "HTTP 422" in (tmp_path / "failed" / "broken.json.error.txt").read_text()
    assert (tmp_path / "readme.txt").exists()
    subjects = await pool.fetch(
        "SELECT headers FROM outbox WHERE tenant_id = $1 ORDER BY seq", tenant
    )
    assert len(subjects) == 2

    # The same export dropped again (e.g. the agent crashed before moving it): same batch id,
    # the first result, nothing emitted twice.
    (tmp_path / "2025-03-10.se").write_bytes(SIE)
    assert await run_agent(tmp_path, server_url, connection_id) == 0
    assert (tmp_path / "sent" / "2025-03-10.1.se").exists()
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1", tenant) == 2
    batches = await pool.fetchval(
        "SELECT count(*) FROM received_batches WHERE connection_id = $1", connection_id
    )
    assert batches == 2


async def test_the_agent_pushes_the_customer_register_before_the_sie_export(
    server_url: str, pool: asyncpg.Pool, box: SecretBox, tmp_path: Path
) -> None:
    tenant, connection_id = await on_premise_connection(pool, box)
    customer = {
        "customer_number": "K1",
        "name": "Östen Ål",
        "type": "private",
        "email": "osten@example.se",
        "address": {"lines": ["Ålgränd 1"], "postal_code": "11122", "city": "Stockholm"},
    }
    (tmp_path / "customers.json").write_text(
        json.dumps({"customers": [customer]}), encoding="utf-8"
    )
    (tmp_path / "2025-03-10.se").write_bytes(SIE)

    assert await run_agent(tmp_path, server_url, connection_id) == 0
    assert sorted(p.name for p in (tmp_path / "sent").iterdir()) == [
        "2025-03-10.se",
        "customers.json",
    ]
    related = json.loads(
        await pool.fetchval(
            "SELECT convert_from(value, 'UTF8')::json -> 'related' ->> 'customer' "
            "FROM outbox WHERE tenant_id = $1",
            tenant,
        )
    )
    assert related["customer_number"] == "K1"
    assert related["email"] == "osten@example.se"
