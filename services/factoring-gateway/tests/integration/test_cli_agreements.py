"""`factoring-gateway agreements set` on the real PostgreSQL server, run as provisioning runs it
(in a process with its own settings, not the running service's)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from factoring_gateway.entrypoints.cli import main

pytestmark = pytest.mark.integration

AGREEMENT = {
    "provider": "Nordic Factor AB",
    "kind": "factoring",
    "recourse": True,
    "client_number": "1234",
    "file_format": "cusin-xml",
    "transfer": {
        "method": "sftp",
        "host": "factor.invalid",
        "username": "client",
        "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
    },
    "payee": {"name": "Nordic Factor AB", "scheme": "SE:BANKGIRO", "account_id": "540-2961"},
    "assignment_text": {"sv": "Fordran har överlåtits."},
    "reference": {"kind": "se_ocr"},
}


async def test_the_first_settlement_read_is_due_at_once_whatever_the_cli_process_polls(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 7 of docs/resilience.md: the command's process polls hourly (the default) while
    the service it provisions polls every 5 s; the first read used to come an hour later."""
    monkeypatch.setenv("SETTLEMENT_POLL_SECONDS", "3600")
    command = await _provisioning(fresh_database_url, tmp_path, monkeypatch)
    for _ in range(2):  # saved twice: still one series of reads
        assert await asyncio.to_thread(main, command) == 0
    conn = await asyncpg.connect(fresh_database_url)
    try:
        rows = await conn.fetch(
            "SELECT due_at, now() AS now FROM factoring_gateway.jobs "
            "WHERE kind = 'factoring-settlements' AND state = 'pending'"
        )
    finally:
        await conn.close()
    [row] = rows
    assert row["due_at"] <= row["now"]
    assert row["now"] - row["due_at"] < dt.timedelta(minutes=5)


async def test_a_save_during_a_settlement_read_leaves_one_series(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read being run holds its job's row and schedules the next read as it ends. A save
    that came meanwhile waited for the row, then deleted the pending reads it could see —
    not that next one, committed after its delete began — and added its own: two series of
    reads, each every poll interval, for as long as the agreement lasts."""
    command = await _provisioning(fresh_database_url, tmp_path, monkeypatch)
    assert await asyncio.to_thread(main, command) == 0
    reads = (
        "SELECT job_key FROM factoring_gateway.jobs "
        "WHERE kind = 'factoring-settlements' AND state = 'pending'"
    )
    conn = await asyncpg.connect(fresh_database_url)
    try:
        # The read as its worker runs it: the row locked, the next read scheduled, done.
        running = conn.transaction()
        await running.start()
        [job] = await conn.fetch(reads + " FOR UPDATE")
        await conn.execute(
            "INSERT INTO factoring_gateway.jobs (kind, job_key, tenant_id, payload, due_at) "
            "VALUES ('factoring-settlements', 'settlements:nordic:next', 't-cli', "
            "'{\"agreement_id\": \"nordic\"}', now() + interval '5 seconds')"
        )
        await conn.execute(
            "UPDATE factoring_gateway.jobs SET state = 'done' WHERE job_key = $1",
            job["job_key"],
        )
        saving = asyncio.create_task(asyncio.to_thread(main, command))
        while not await _waits_for_a_lock(fresh_database_url):
            assert not saving.done(), "the save did not wait for the read being run"
            await asyncio.sleep(0.05)
        await running.commit()
        assert await saving == 0
        pending = [r["job_key"] for r in await conn.fetch(reads)]
    finally:
        await conn.close()
    assert len(pending) == 1, pending
    assert pending != ["settlements:nordic:next"]  # the save's own read, due now


async def _waits_for_a_lock(database_url: str) -> bool:
    conn = await asyncpg.connect(database_url)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
    finally:
        await conn.close()


async def _provisioning(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """A migrated database and the `agreements set` command provisioning runs (a process
    with its own settings, its secret in the environment)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("FACTOR_PASSWORD", "s3cret")
    path = tmp_path / "agreement.json"
    path.write_text(json.dumps(AGREEMENT))
    command = ["agreements", "set", "--tenant", "t-cli", "--agreement", "nordic"]
    command += ["--file", str(path), "--password-env", "FACTOR_PASSWORD"]
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    return command
