"""`connections add` for every system it writes into, with the tenant's account mapping:
each credentials form checked by key (no value echoed), Norway's chart by `--country NO`,
any account overridden by its flag."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from ledger_closer.entrypoints.cli import main

pytestmark = pytest.mark.integration


def test_every_system_and_the_account_mapping(
    fresh_database_url: str,
    key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("ENCRYPTION_KEY", key)
    monkeypatch.setenv("TX", json.dumps({"consumer_token": "c-secret", "employee_token": "e"}))
    monkeypatch.setenv("TX_BAD", json.dumps({"consumer_token": "c-secret"}))
    monkeypatch.setenv("VN", json.dumps({"token": "t", "company_id": "1"}))
    grant = {"client_id": "n", "client_secret": "s", "refresh_token": "r", "token_url": "u"}
    monkeypatch.setenv("EA", json.dumps(grant))

    def add(connection_id: str, system: str, env: str, *extra: str) -> int:
        return main(
            [
                "connections",
                "add",
                "--tenant",
                "t-books",
                "--connection-id",
                connection_id,
                "--base-url",
                "http://erp.invalid",
                "--token-env",
                env,
                "--system",
                system,
                *extra,
            ]
        )

    assert add("tx", "tripletex", "TX", "--country", "NO") == 0
    assert capsys.readouterr().out.strip() == (
        "ledger connection tx for tenant t-books: tripletex, accounts receivable 1500, "
        "factoring 1510, bank 1920, fee 7770, liability 2380"
    )
    assert add("tx-bad", "tripletex", "TX_BAD") == 1
    refused = capsys.readouterr().err
    assert "tripletex credentials.employee_token: required" in refused
    assert "c-secret" not in refused
    assert add("vn", "visma-net", "VN", "--country", "NO", "--factoring-account", "1511") == 0
    assert add("ea", "visma-eaccounting", "EA", "--fee-account", "6065") == 0
    assert add("ea", "visma-eaccounting", "EA", "--bank-account", "19") == 2

    async def stored() -> dict[str, tuple[str, int, int, int]]:
        conn = await asyncpg.connect(
            fresh_database_url, server_settings={"search_path": "ledger_closer"}
        )
        try:
            rows = await conn.fetch("SELECT * FROM erp_connections")
        finally:
            await conn.close()
        return {
            r["connection_id"]: (
                r["system"],
                r["factoring_account"],
                r["bank_account"],
                r["fee_account"],
            )
            for r in rows
        }

    assert asyncio.run(stored()) == {
        "tx": ("tripletex", 1510, 1920, 7770),
        "vn": ("visma-net", 1511, 1920, 7770),
        "ea": ("visma-eaccounting", 1512, 1930, 6065),
    }
