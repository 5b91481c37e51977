"""``mapper references set | show`` and ``payloads purge`` on the real PostgreSQL (the
service's schema, migrated)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from mapper.entrypoints.cli import main
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


def test_references_set_and_show_through_the_cli(
    fresh_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")  # the command never connects
    tenant = new_tenant()
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "no_kid", "--kid-algorithm", "mod11"]) == 0
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "factor_layout", "--layout", "dnb"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tenant}: no policy (country defaults)",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
    ]
    assert "factoring_number" in err


async def _chunks(url: str, tenant: str, ages_in_days: list[int]) -> list[int]:
    """Store chunks of the given ages (when none are given: none) and answer the indexes
    left of the tenant's content."""
    conn = await asyncpg.connect(url, server_settings={"search_path": "mapper"})
    try:
        for index, age in enumerate(ages_in_days):
            await conn.execute(
                "INSERT INTO payload_chunks (tenant_id, sha256, chunk_index, chunk_count, size, "
                "data, received_at) VALUES ($1, $2, $3, $4, 10, 'x', "
                "now() - make_interval(days => $5))",
                tenant,
                "a" * 64,
                index,
                len(ages_in_days),
                age,
            )
        rows = await conn.fetch(
            "SELECT chunk_index FROM payload_chunks WHERE tenant_id = $1 ORDER BY 1", tenant
        )
        return [r["chunk_index"] for r in rows]
    finally:
        await conn.close()


def test_payloads_purge_deletes_chunks_past_their_retention(
    fresh_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    tenant = new_tenant()
    assert main(["payloads", "purge"]) == 0  # migrates; nothing to purge
    assert asyncio.run(_chunks(fresh_database_url, tenant, [50, 10, 1])) == [0, 1, 2]
    assert main(["payloads", "purge"]) == 0  # PAYLOAD_RETENTION_DAYS: 45
    assert main(["payloads", "purge", "--older-than-days", "5"]) == 0
    assert asyncio.run(_chunks(fresh_database_url, tenant, [])) == [2]
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        "purged 0 payload chunk(s) not received for 45 days",
        "purged 1 payload chunk(s) not received for 45 days",
        "purged 1 payload chunk(s) not received for 5 days",
    ]
