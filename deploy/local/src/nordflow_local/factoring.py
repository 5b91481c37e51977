"""The factor side of the local stack: a client account at the factor sandbox per tenant,
the tenant's agreement with it (CUSIN-style XML over SFTP), on-demand transfer runs and what
the factor received (demo, e2e tests, bench)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# The factor's bankgiro the buyers of assigned invoices pay (a valid Luhn number).
FACTOR_NAME = "Nordic Factor AB"
FACTOR_BANKGIRO = "540-2961"
ASSIGNMENT_TEXT = {
    "sv": (
        f"Denna fordran har överlåtits till {FACTOR_NAME}. Betalning med befriande verkan "
        f"kan endast ske till bankgiro {FACTOR_BANKGIRO}."
    ),
    "nb": (
        f"Fordringen er overdratt til {FACTOR_NAME}. Betaling med frigjørende virkning kan "
        f"bare skje til bankgiro {FACTOR_BANKGIRO}."
    ),
    "en": (
        f"This invoice has been assigned to {FACTOR_NAME}. Payment can only be made, with "
        f"discharging effect, to bankgiro {FACTOR_BANKGIRO}."
    ),
}


@dataclass(frozen=True)
class FactorClient:
    """A tenant's client account at the factor sandbox."""

    account_id: str
    token: str
    client_number: str
    sftp_username: str
    sftp_password: str


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `uv sync`")
    return str(path)


def client_number_of(tenant_id: str) -> str:
    """A stable 6-digit client number for a tenant."""
    return str(100_000 + int(hashlib.sha256(tenant_id.encode()).hexdigest(), 16) % 900_000)


def create_factor_client(env: Mapping[str, str], tenant_id: str) -> FactorClient:
    """A new client account of the tenant at the factor sandbox (its own SFTP tree)."""
    response = httpx.post(
        f"{env['SANDBOX_FACTOR_URL']}/sandbox/accounts",
        json={"name": f"{tenant_id} AB", "client_number": client_number_of(tenant_id)},
        timeout=10,
    )
    response.raise_for_status()
    data = response.json()
    return FactorClient(
        data["account_id"],
        data["token"],
        data["client_number"],
        data["sftp_username"],
        data["sftp_password"],
    )


def agreement_json(
    env: Mapping[str, str],
    client: FactorClient,
    *,
    payment_methods: list[str] | None = None,
) -> dict[str, Any]:
    """A factoring agreement with the factor sandbox: CUSIN-style XML by SFTP, Fortnox's OCR
    (length and check digit), 1.5 % + 5 SEK a file, without recourse."""
    host_key = Path(env["SANDBOX_FACTOR_SFTP_HOST_KEY_FILE"]).read_text().strip()
    agreement: dict[str, Any] = {
        "provider": FACTOR_NAME,
        "kind": "factoring",
        "recourse": False,
        "client_number": client.client_number,
        "file_format": "cusin-xml",
        "transfer": {
            "method": "sftp",
            "host": env["SANDBOX_FACTOR_SFTP_HOST"],
            "port": int(env["SANDBOX_FACTOR_SFTP_PORT"]),
            "username": client.sftp_username,
            "host_key": host_key,
        },
        "payee": {"name": FACTOR_NAME, "scheme": "SE:BANKGIRO", "account_id": FACTOR_BANKGIRO},
        "assignment_text": ASSIGNMENT_TEXT,
        "reference": {"kind": "se_ocr", "ocr_control": "hard_with_length"},
        "fees": {"per_invoice": "5.00", "percent": "1.5"},
    }
    if payment_methods:
        agreement["payment_methods"] = payment_methods
    return agreement


def set_agreement(
    env: Mapping[str, str],
    tenant_id: str,
    client: FactorClient,
    *,
    agreement_id: str | None = None,
    payment_methods: list[str] | None = None,
    timeout: float = 120.0,
) -> str:
    """``factoring-gateway agreements set`` with the agreement on stdin and the SFTP
    password in an environment variable (never on the command line); the agreement id.
    A command that takes longer than ``timeout`` seconds is killed (TimeoutExpired)."""
    agreement_id = agreement_id or f"{tenant_id}-factor"
    body = json.dumps(agreement_json(env, client, payment_methods=payment_methods))
    result = subprocess.run(
        [
            _bin("factoring-gateway"),
            "agreements",
            "set",
            "--tenant",
            tenant_id,
            "--agreement",
            agreement_id,
            "--file",
            "-",
            "--password-env",
            "NORDFLOW_FACTOR_PASSWORD",
        ],
        input=body,
        env={**os.environ, **env, "NORDFLOW_FACTOR_PASSWORD": client.sftp_password},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"factoring-gateway agreements set failed: {result.stderr[-800:]}")
    return agreement_id


def api_token(env: Mapping[str, str], tenant_id: str) -> str:
    """A token of factoring-gateway's tenant API."""
    result = subprocess.run(
        [_bin("factoring-gateway"), "tokens", "create", tenant_id, "--name", "local"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


async def request_run(http: httpx.AsyncClient, env: Mapping[str, str], token: str) -> None:
    """``POST /api/v1/transfers/runs``: the tenant's pending invoices go to the factor now."""
    response = await http.post(
        f"{env['FACTORING_GATEWAY_URL']}/api/v1/transfers/runs",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()


@contextlib.asynccontextmanager
async def transfers_on_demand(
    env: Mapping[str, str], tenant_ids: list[str], every: float = 2.0
) -> AsyncIterator[None]:
    """While the block runs, ask for a transfer run of each tenant every ``every`` seconds
    (instead of waiting for the daily window); a run with nothing pending makes nothing."""
    tokens = await asyncio.gather(*(asyncio.to_thread(api_token, env, t) for t in tenant_ids))

    async def pump() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                for token in tokens:
                    with contextlib.suppress(httpx.HTTPError):
                        await request_run(http, env, token)
                await asyncio.sleep(every)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def factor_files(env: Mapping[str, str], token: str | None = None) -> list[dict[str, Any]]:
    """What the factor sandbox received (of one client when its token is given)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{env['SANDBOX_FACTOR_URL']}/sandbox/files", headers=headers, timeout=10)
    response.raise_for_status()
    files: list[dict[str, Any]] = response.json()["files"]
    return files


def factor_invoices(env: Mapping[str, str], token: str) -> dict[str, int]:
    """How often the factor received each invoice number (accepted files only)."""
    counts: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}"}
    for file in factor_files(env, token):
        if file["status"] != "accepted":
            continue
        content = httpx.get(
            f"{env['SANDBOX_FACTOR_URL']}/sandbox/files/{file['id']}/content",
            headers=headers,
            timeout=10,
        ).content
        for number in _bill_numbers(content):
            counts[number] = counts.get(number, 0) + 1
    return counts


def _bill_numbers(content: bytes) -> list[str]:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(content)  # noqa: S314 - our own sandbox's copy of our file
    return [bill.text or "" for bill in root.iter("BillNo") if bill.text]
