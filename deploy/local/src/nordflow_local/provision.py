"""Provision a tenant end to end through the services' own operator commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from nordflow_schemas.invoice import Address, Party
from nordflow_schemas.tenant import AccountScheme, BankAccount, Locale, TenantProfile

from nordflow_local import sources
from nordflow_local.factoring import FactorClient, create_factor_client, set_agreement

DEMO_PROFILE = TenantProfile(
    legal_name="Nordflow Demo AB",
    country="SE",
    time_zone="Europe/Stockholm",
    locale=Locale.SV,
    accounting_currency="SEK",
    seller=Party(
        name="Nordflow Demo AB",
        company_id="556036-0793",
        vat_id="SE556036079301",
        address=Address(
            lines=("Sveavägen 1",), postal_code="11157", city="Stockholm", country_code="SE"
        ),
        email="faktura@demo.example",
    ),
    bank_accounts=(BankAccount(scheme=AccountScheme.BANKGIRO, account_id="5050-1055"),),
)


@dataclass(frozen=True)
class Tenant:
    """A provisioned tenant and its Fortnox sandbox company."""

    tenant_id: str
    connection_id: str
    fortnox_url: str
    fortnox_token: str
    factor: FactorClient | None = None


def _bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `uv sync`")
    return str(path)


def _run(
    env: Mapping[str, str], *args: str, stdin: str | None = None, timeout: float = 120.0
) -> None:
    """An operator command; killed after ``timeout`` seconds (TimeoutExpired)."""
    result = subprocess.run(
        [_bin(args[0]), *args[1:]],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed: {result.stderr.strip()[-800:]}")


def set_profile(env: Mapping[str, str], tenant_id: str, profile: TenantProfile) -> None:
    """`erp-poller tenants profile set` (the JSON on stdin): the tenant's seller, bank
    accounts, time zone and currency, published on tenant.updated."""
    _run(
        env,
        "erp-poller",
        "tenants",
        "profile",
        "set",
        tenant_id,
        "--file",
        "-",
        stdin=profile.model_dump_json(),
    )


def create_sandbox_company(fortnox_url: str, name: str, token: str | None = None) -> str:
    """A new Fortnox sandbox company; returns its API token."""
    body: dict[str, str] = {"name": name}
    if token:
        body["token"] = token
    response = httpx.post(f"{fortnox_url}/sandbox/companies", json=body, timeout=10)
    response.raise_for_status()
    return str(response.json()["token"])


def provision_tenant(
    stack_env: Mapping[str, str],
    tenant_id: str,
    *,
    token: str | None = None,
    mode: str = "automatic",
    payment_methods: str | None = None,
) -> Tenant:
    """Give a tenant its profile, then connect its Fortnox company to erp-poller and
    ledger-closer, with a factoring agreement with its own client account at the factor
    sandbox (CUSIN-style XML over SFTP, transferred in the daily window or on demand).

    Without ``token`` a new sandbox company is created. Tokens and the SFTP password go to
    the services through environment variables, never on a command line.
    """
    fortnox_url = stack_env["SANDBOX_FORTNOX_URL"]
    token = token or create_sandbox_company(fortnox_url, f"{tenant_id} AB")
    env = {**os.environ, **stack_env, "NORDFLOW_TENANT_TOKEN": token}
    connection_id = f"{tenant_id}-fortnox"
    common = ["--tenant", tenant_id, "--connection-id", connection_id]
    set_profile(env, tenant_id, DEMO_PROFILE)
    # The agreement and the write connection exist before the poller fetches anything, so
    # the first invoices are already judged under the agreement.
    factor = create_factor_client(stack_env, tenant_id)
    methods = payment_methods.split(",") if payment_methods else None
    set_agreement(stack_env, tenant_id, factor, payment_methods=methods)
    _run(
        env,
        "ledger-closer",
        "connections",
        "add",
        *common,
        "--base-url",
        fortnox_url,
        "--token-env",
        "NORDFLOW_TENANT_TOKEN",
    )
    _run(
        env,
        "erp-poller",
        "connections",
        "add",
        *common,
        "--system",
        "fortnox",
        "--base-url",
        fortnox_url,
        "--token-env",
        "NORDFLOW_TENANT_TOKEN",
        "--mode",
        mode,
        "--cutoff",
        "2000-01-01T00:00:00+00:00",
    )
    return Tenant(tenant_id, connection_id, fortnox_url, token, factor)


@dataclass(frozen=True)
class SourceConnection:
    """A tenant connected to one more source system, and what its sample writer needs."""

    system: str
    tenant_id: str
    connection_id: str
    url: str
    writer: Mapping[str, Any]  # a token, or the eAccounting company's facts; secret


def _create(url: str, path: str, body: Mapping[str, object], what: str) -> dict[str, str]:
    response = httpx.post(f"{url}{path}", json=dict(body), timeout=10)
    if response.status_code != 201:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return {k: str(v) for k, v in response.json().items()}


def _add_connection(
    env: Mapping[str, str],
    source: SourceConnection,
    credentials: Mapping[str, str],
    mode: str,
) -> None:
    """The tenant's profile, then `erp-poller connections add` (the credentials travel in
    an env variable, not argv)."""
    set_profile(env, source.tenant_id, sources.PROFILES[source.system])
    _run(
        {**env, "NORDFLOW_SOURCE_CREDENTIALS": json.dumps(dict(credentials))},
        "erp-poller",
        "connections",
        "add",
        "--tenant",
        source.tenant_id,
        "--connection-id",
        source.connection_id,
        "--system",
        source.system,
        "--base-url",
        source.url,
        "--token-env",
        "NORDFLOW_SOURCE_CREDENTIALS",
        "--mode",
        mode,
        "--cutoff",
        "2000-01-01T00:00:00+00:00",
    )


async def provision_sources(
    stack_env: Mapping[str, str], prefix: str, *, mode: str = "automatic"
) -> list[SourceConnection]:
    """Three more tenants, one per source: a builder on Visma eAccounting (`<prefix>-bygg`),
    a Norwegian company on Visma.net (`<prefix>-fjord`, in Oslo's time zone, Norwegian and
    kroner) and a hotel on Sirvoy (`<prefix>-hotell`), each with its profile and a new
    sandbox company connected to erp-poller. Sirvoy's
    booking webhooks go to erp-poller's ingest endpoint; its poll catches what one misses.
    """
    env = {**os.environ, **stack_env}
    url = stack_env["SANDBOX_VISMA_EACCOUNTING_URL"]
    tenant = f"{prefix}-bygg"
    company = await sources.visma_eaccounting_company(url, f"{tenant} AB")
    bygg = SourceConnection(sources.VISMA_EACCOUNTING, tenant, f"{tenant}-visma", url, company)
    credentials = {k: str(company[k]) for k in ("client_id", "client_secret", "refresh_token")}
    _add_connection(env, bygg, {**credentials, "token_url": company["token_url"]}, mode)

    url = stack_env["SANDBOX_VISMA_NET_URL"]
    tenant = f"{prefix}-fjord"
    net = _create(url, "/sandbox/companies", {"name": f"{tenant} AS"}, "visma-net sandbox")
    fjord = SourceConnection(sources.VISMA_NET, tenant, f"{tenant}-visma-net", url, net)
    _add_connection(env, fjord, {"token": net["token"], "company_id": net["company_id"]}, mode)

    url = stack_env["SANDBOX_SIRVOY_URL"]
    tenant = f"{prefix}-hotell"
    account = _create(url, "/sandbox/accounts", {"name": f"{tenant}"}, "sirvoy sandbox")
    hotell = SourceConnection(sources.SIRVOY, tenant, f"{tenant}-sirvoy", url, account)
    secrets = {"api_token": account["token"], "webhook_secret": account["webhook_secret"]}
    _add_connection(env, hotell, secrets, mode)
    await sources.register_sirvoy_webhook(
        url,
        account["token"],
        f"{stack_env['ERP_POLLER_URL']}/api/v1/ingest/sirvoy/{hotell.connection_id}",
    )
    return [bygg, fjord, hotell]
