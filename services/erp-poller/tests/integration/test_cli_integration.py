"""`erp-poller`'s command line on the real PostgreSQL (a fresh database): the shared tree plus
``connections`` and ``tenants profile``, with their old names and flags."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from erp_poller.entrypoints.cli import main
from erp_poller.testing import seller_profile

pytestmark = pytest.mark.integration

PROFILE = seller_profile("Kommandorad AB", bankgiro="5050-1055")


@pytest.fixture
def env(fresh_database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("ENCRYPTION_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("NORDFLOW_TEST_TOKEN", "fortnox-access-token")
    return fresh_database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def published(database_url: str) -> list[str]:
    async def read() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT topic FROM erp_poller.outbox ORDER BY seq")
        finally:
            await conn.close()
        return [r["topic"] for r in rows]

    return asyncio.run(read())


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("run", "migrate", "dlq", "jobs", "tokens", "connections", "tenants"):
        assert command in out
    code, out, _ = run(capsys, "connections", "--help")
    for command in ("add", "list", "mode", "sync", "backfill", "backfills", "remove"):
        assert command in out
    code, out, _ = run(capsys, "tenants", "profile", "--help")
    assert "set" in out
    assert "show" in out


def test_a_tenant_is_set_up_and_operated_from_the_command_line(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, connection = "t-cli", "t-cli-fortnox"
    code, _, err = run(capsys, "tenants", "profile", "show", tenant)
    assert code == 1
    assert "has no profile" in err

    add = ["connections", "add", "--tenant", tenant, "--connection-id", connection]
    add += ["--system", "fortnox", "--base-url", "http://127.0.0.1:9/3"]
    add += ["--token-env", "NORDFLOW_TEST_TOKEN", "--mode", "manual", "--cutoff", "2000-01-01"]
    code, _, err = run(capsys, *add, "--seller", '{"name": "Gammal AB"}')
    assert code == 2  # the seller is the profile's now
    assert "--seller" in err
    code, out, err = run(capsys, *add)
    assert code == 0, err
    assert out.strip() == (
        f"connection {connection} for tenant {tenant}: manual, flow: factor, distribute"
    )
    assert "has no profile yet" in err
    code, out, _ = run(capsys, "connections", "list", "--tenant", tenant)
    assert f"{connection}  tenant={tenant}  fortnox  manual" in out
    assert "(the tenant has no profile)" in out

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PROFILE.model_dump(mode="json"), "seller": {}}))
    code, _, err = run(capsys, "tenants", "profile", "set", tenant, "--file", str(bad))
    assert code == 2
    assert "seller.name" in err
    good = tmp_path / "profile.json"
    good.write_text(PROFILE.model_dump_json())
    code, out, _ = run(capsys, "tenants", "profile", "set", tenant, "--file", str(good))
    assert code == 0
    assert "revision 1, published on tenant.updated" in out
    monkeypatch.setattr("sys.stdin", io.StringIO(PROFILE.model_dump_json()))
    code, out, _ = run(capsys, "tenants", "profile", "set", tenant, "--file", "-")
    assert out.strip() == f"profile of {tenant} unchanged (revision 1)"
    code, out, _ = run(capsys, "tenants", "profile", "show", tenant)
    shown = json.loads(out)
    assert (shown["tenant_id"], shown["revision"]) == (tenant, 1)
    assert shown["profile"] == PROFILE.model_dump(mode="json")
    assert published(env) == ["connection.updated", "tenant.updated"]
    code, out, _ = run(capsys, "connections", "list")
    assert "(the tenant has no profile)" not in out

    mode = ["connections", "mode", "--tenant", tenant, "--connection-id", connection]
    code, out, _ = run(capsys, *mode, "--mode", "automatic")
    assert (code, out.strip()) == (0, f"connection {connection}: automatic")
    code, _, err = run(capsys, "connections", "mode", "--tenant", "t-other",
                       "--connection-id", connection, "--mode", "test")  # fmt: skip
    assert code == 1
    assert "has no connection" in err

    sync = ["connections", "sync", "--tenant", tenant, "--connection-id", connection]
    code, _, err = run(capsys, *sync)
    assert (code, err.strip()) == (2, "erp-poller: give --limit N or --document NUMBER")
    code, out, _ = run(capsys, *sync, "--document", "17", "--document", "18")
    assert code == 0
    assert out.startswith("sync request 1 queued")

    code, out, _ = run(capsys, "connections", "backfill", connection, "--since", "2025-01-01")
    assert code == 0
    assert "since 2025-01-01T00:00:00+00:00" in out
    code, out, _ = run(capsys, "connections", "backfills", connection, "--tenant", tenant)
    assert "running or queued" in out
    code, _, err = run(capsys, "connections", "backfills", connection, "--tenant", "t-other")
    assert code == 1
    assert f"no connection {connection!r}" in err

    # A flow: the hotel's Sirvoy is booked into its Fortnox and neither factored nor sent; a
    # Tripletex connection (only booked into) takes no credentials.
    hotel = ["connections", "add", "--tenant", tenant, "--system", "sirvoy"]
    hotel += ["--base-url", "http://127.0.0.1:9", "--token-env", "SIRVOY_CREDENTIALS"]
    monkeypatch.setenv("SIRVOY_CREDENTIALS", '{"api_token": "a", "webhook_secret": "b"}')
    code, _, err = run(capsys, *hotel, "--connection-id", "t-cli-sv", "--book-into", "nowhere")
    assert code == 1
    assert err.strip() == "erp-poller: flow.book_into: the tenant has no connection 'nowhere'"
    code, out, err = run(capsys, *hotel, "--connection-id", "t-cli-sv", "--book-into",
                         connection, "--no-factor", "--no-distribute")  # fmt: skip
    assert code == 0, err
    assert out.strip().endswith(f"flow: book into {connection}")
    tripletex = ["connections", "add", "--tenant", tenant, "--system", "tripletex"]
    tripletex += ["--connection-id", "t-cli-tx", "--base-url", "https://tripletex.no/v2"]
    code, _, err = run(capsys, *tripletex, "--token-env", "NORDFLOW_TEST_TOKEN")
    assert code == 2
    assert "tripletex takes no credentials" in err
    code, out, err = run(capsys, *tripletex, "--no-factor", "--no-distribute")
    assert code == 0, err
    assert out.strip().endswith("flow: record only")
    code, out, _ = run(capsys, "connections", "list", "--tenant", tenant)
    assert f"t-cli-sv  tenant={tenant}  sirvoy  test  flow: book into {connection}" in out

    # Removed (published as removed on connection.updated), once nothing books into it.
    remove = ["connections", "remove", "--tenant", tenant, "--connection-id"]
    code, _, err = run(capsys, *remove, connection)
    assert code == 1
    assert "booked into by t-cli-sv" in err
    code, _, err = run(capsys, "connections", "remove", "--tenant", "t-other",
                       "--connection-id", "t-cli-sv")  # fmt: skip
    assert (code, err.strip()) == (1, "erp-poller: tenant t-other has no connection 't-cli-sv'")
    code, out, _ = run(capsys, *remove, "t-cli-sv")
    assert (code, out.strip()) == (0, f"connection t-cli-sv of tenant {tenant} removed")
    code, out, _ = run(capsys, "connections", "list", "--tenant", tenant)
    assert "t-cli-sv" not in out
    code, out, _ = run(capsys, *remove, connection)
    assert code == 0
    # added, mode, sirvoy added, tripletex added, two removals
    assert published(env).count("connection.updated") == 6

    code, out, _ = run(capsys, "tokens", "create", tenant, "--name", "cli")
    assert code == 0
    assert out.strip().startswith("nf_")


@pytest.mark.usefixtures("env")
def test_tokens_are_created_listed_and_revoked_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(
        capsys,
        "tokens",
        "create",
        "acme",
        "--name",
        "dash",
        "--scope",
        "read",
        "--expires-days",
        "30",
    )
    assert code == 0
    token = out.strip()
    assert token.startswith("nf_")
    code, out, _ = run(capsys, "tokens", "list", "acme")
    assert code == 0
    [line] = [entry for entry in out.splitlines() if "name=dash" in entry]
    token_id = line.split()[0]
    assert "scope=read" in line
    assert line.endswith("active")
    assert token not in out  # never listed
    code, out, _ = run(capsys, "tokens", "revoke", token_id)
    assert (code, out.strip()) == (0, f"revoked {token_id}")
    code, out, _ = run(capsys, "tokens", "list")
    assert next(e for e in out.splitlines() if e.startswith(token_id)).endswith("revoked")
    code, _, err = run(capsys, "tokens", "revoke", token_id)
    assert code == 1
    assert "no active token" in err
    code, _, err = run(capsys, "tokens", "create", "Not A Tenant")
    assert code == 2
    code, _, err = run(capsys, "tokens", "create", "--operator")
    assert code == 2  # only the control panel issues operators' tokens
