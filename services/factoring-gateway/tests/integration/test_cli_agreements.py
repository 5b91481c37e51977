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
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("SETTLEMENT_POLL_SECONDS", "3600")
    monkeypatch.setenv("FACTOR_PASSWORD", "s3cret")
    path = tmp_path / "agreement.json"
    path.write_text(json.dumps(AGREEMENT))
    command = ["agreements", "set", "--tenant", "t-cli", "--agreement", "nordic"]
    command += ["--file", str(path), "--password-env", "FACTOR_PASSWORD"]
    assert await asyncio.to_thread(main, ["migrate"]) == 0
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
