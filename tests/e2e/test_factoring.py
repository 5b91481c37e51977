"""Crash tests of the hand-over to the factor, through the running stack: factoring-gateway
is killed with SIGKILL during the window's transaction, between the SFTP rename and the
factor's receipt, and between an HTTPS upload and the commit that records it. Afterwards the
factor has every eligible invoice exactly once, and no file serial is skipped or reused."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
from nordflow_local import journey
from nordflow_local.factoring import (
    agreement_json,
    api_token,
    factor_files,
    factor_invoices,
    request_run,
)
from nordflow_local.provision import Tenant, provision_tenant
from nordflow_local.samples import create_invoices

pytestmark = [pytest.mark.e2e]
SERVICE = "factoring-gateway"
SCHEMA = "factoring_gateway"


def decided(count: int):
    def check(journeys):
        return sum(1 for j in journeys.values() if j.count("invoice.factoring_decided")) >= count

    return check


def transferred(count: int):
    def check(journeys):
        return sum(1 for j in journeys.values() if j.count("invoice.transferred")) >= count

    return check


async def invoices_decided(env: dict[str, str], tenant: Tenant, count: int) -> list[str]:
    # The recipients are registered as in every e2e test: a lookup that found none would be
    # cached by distribution-router and send later tests' e-invoices another way.
    numbers = await create_invoices(
        tenant.fortnox_url,
        tenant.fortnox_token,
        count,
        seed=21,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )
    await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], tenant.tenant_id, decided(count), timeout=120
    )
    return numbers


async def admin_post(env: dict[str, str], tenant: Tenant, path: str, body: dict) -> None:
    """An admin request to the factor sandbox for the tenant's client account."""
    assert tenant.factor is not None
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            env["SANDBOX_FACTOR_URL"] + path,
            json=body,
            headers={"Authorization": f"Bearer {tenant.factor.token}"},
        )
        response.raise_for_status()


async def run_now(env: dict[str, str], token: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        await request_run(http, env, token)


async def until(what: str, check, timeout: float = 60.0, interval: float = 0.2):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def restart_after_kill(stack) -> None:
    assert stack.stop_service(SERVICE, sig=signal.SIGKILL)
    stack.start_service(SERVICE)


async def assert_once_at_the_factor(
    env: dict[str, str], tenant: Tenant, numbers: list[str]
) -> list[dict]:
    journeys = await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], tenant.tenant_id, transferred(len(numbers)), timeout=120
    )
    assert tenant.factor is not None
    files = await asyncio.to_thread(factor_files, env, tenant.factor.token)
    serials = [f["serial"] for f in files]
    assert serials == list(range(1, len(serials) + 1)), f"serials at the factor: {serials}"
    assert all(f["status"] == "accepted" for f in files), files
    counts = await asyncio.to_thread(factor_invoices, env, tenant.factor.token)
    assert {n: counts.get(n) for n in numbers} == dict.fromkeys(numbers, 1)
    for j in journeys.values():
        if j.number in numbers:
            assert j.count("invoice.transferred") == 1
    return files


async def test_killed_during_the_window_transaction(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    numbers = await invoices_decided(env, tenant, 4)
    token = await asyncio.to_thread(api_token, env, tenant_id)
    agreement_id = f"{tenant_id}-factor"
    db = await asyncpg.connect(env["DATABASE_URL"], server_settings={"search_path": SCHEMA})
    try:
        await db.execute(
            "INSERT INTO file_serials (agreement_id, last_serial) VALUES ($1, 0) "
            "ON CONFLICT DO NOTHING",
            agreement_id,
        )
        tx = db.transaction()
        await tx.start()
        await db.execute(
            "SELECT 1 FROM file_serials WHERE agreement_id = $1 FOR UPDATE", agreement_id
        )
        await run_now(env, token)

        async def blocked() -> bool:
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 "
                "AND wait_event_type = 'Lock'",
                SCHEMA,
            )
            return bool(waiting)

        await until("the window's transaction to wait on the serial", blocked)
        assert nordflow_stack.stop_service(SERVICE, sig=signal.SIGKILL)
        await tx.rollback()
        assert (
            await db.fetchval("SELECT count(*) FROM batches WHERE tenant_id = $1", tenant_id) == 0
        )
    finally:
        await db.close()
    nordflow_stack.start_service(SERVICE)
    files = await assert_once_at_the_factor(env, tenant, numbers)
    assert len(files) == 1


async def test_killed_between_the_sftp_rename_and_the_receipt(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    assert tenant.factor is not None
    numbers = await invoices_decided(env, tenant, 3)
    token = await asyncio.to_thread(api_token, env, tenant_id)
    await admin_post(
        env,
        tenant,
        "/sandbox/sftp-faults",
        {"action": "delay", "stage": "receipt", "delay_seconds": 6},
    )
    await run_now(env, token)

    async def at_the_factor() -> list[dict]:
        return await asyncio.to_thread(factor_files, env, tenant.factor.token)

    [arrived] = await until("the file to arrive at the factor", at_the_factor)
    restart_after_kill(nordflow_stack)  # the factor has it; its receipt is 6 s away
    files = await assert_once_at_the_factor(env, tenant, numbers)
    assert [f["id"] for f in files] == [arrived["id"]]


async def test_killed_between_the_https_upload_and_the_commit(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    tenant = provision_tenant(env, tenant_id)
    assert tenant.factor is not None
    # The same tenant, its agreement switched to the factor's HTTPS API.
    body = agreement_json(env, tenant.factor)
    body["transfer"] = {"method": "https", "base_url": env["SANDBOX_FACTOR_API_URL"]}
    script = str(Path(sys.executable).parent / SERVICE)
    await asyncio.to_thread(
        subprocess.run,
        [
            script,
            "agreements",
            "set",
            "--tenant",
            tenant_id,
            "--agreement",
            f"{tenant_id}-factor",
            "--file",
            "-",
            "--token-env",
            "FACTOR_TOKEN",
        ],
        input=json.dumps(body),
        env={**os.environ, **env, "FACTOR_TOKEN": tenant.factor.token},
        check=True,
        capture_output=True,
        text=True,
    )
    numbers = await invoices_decided(env, tenant, 3)
    token = await asyncio.to_thread(api_token, env, tenant_id)
    fault = {
        "status": None,
        "path_prefix": "/api/v1/files",
        "method": "POST",
        "after_commit": True,
        "delay_seconds": 8,
    }
    await admin_post(env, tenant, "/sandbox/faults", fault)
    await run_now(env, token)

    async def at_the_factor() -> list[dict]:
        return await asyncio.to_thread(factor_files, env, tenant.factor.token)

    [arrived] = await until("the upload to be stored at the factor", at_the_factor)
    restart_after_kill(nordflow_stack)  # the factor has the file; its answer is 8 s away
    files = await assert_once_at_the_factor(env, tenant, numbers)
    assert [f["id"] for f in files] == [arrived["id"]]
    assert files[0]["via"] == "https"
