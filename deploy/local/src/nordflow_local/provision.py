"""Provision a tenant end to end through the services' own operator commands."""

from __future__ import annotations

import json
import os
import secrets
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
class Books:
    """The accounting system a source connection's flow books into: its erp-poller (and
    ledger-closer) connection and what reading its records needs (secret)."""

    system: str
    connection_id: str
    url: str
    reader: Mapping[str, str]


@dataclass(frozen=True)
class SourceConnection:
    """A tenant connected to one more source system, and what its sample writer needs."""

    system: str
    tenant_id: str
    connection_id: str
    url: str
    writer: Mapping[str, Any]  # a token, or the eAccounting company's facts; secret
    books: Books | None = None  # where its flow books (then it neither factors nor sends)


# A flow that books into the target and neither factors nor sends: the target (or the
# source) already reaches the customer.
def _book_only(target: str) -> tuple[str, ...]:
    return ("--book-into", target, "--no-factor", "--no-distribute")


def _create(url: str, path: str, body: Mapping[str, object], what: str) -> dict[str, str]:
    response = httpx.post(f"{url}{path}", json=dict(body), timeout=10)
    if response.status_code != 201:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return {k: str(v) for k, v in response.json().items()}


def _add_connection(
    env: Mapping[str, str],
    source: SourceConnection,
    credentials: str | None,
    mode: str,
    *flow: str,
) -> None:
    """`erp-poller connections add` with the connection's flow (the credentials travel in an
    env variable, not argv; a Tripletex target has none: erp-poller never calls it)."""
    secret = [] if credentials is None else ["--token-env", "NORDFLOW_SOURCE_CREDENTIALS"]
    _run(
        {**env, "NORDFLOW_SOURCE_CREDENTIALS": credentials or ""},
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
        *secret,
        "--mode",
        mode,
        "--cutoff",
        "2000-01-01T00:00:00+00:00",
        *flow,
    )


def _add_write_connection(
    env: Mapping[str, str], tenant_id: str, books: Books, credentials: str, *options: str
) -> None:
    """`ledger-closer connections add`: what it writes into the target with."""
    _run(
        {**env, "NORDFLOW_WRITE_CREDENTIALS": credentials},
        "ledger-closer",
        "connections",
        "add",
        "--tenant",
        tenant_id,
        "--connection-id",
        books.connection_id,
        "--system",
        books.system,
        "--base-url",
        books.url,
        "--token-env",
        "NORDFLOW_WRITE_CREDENTIALS",
        *options,
    )


def _source(
    env: Mapping[str, str],
    source: SourceConnection,
    credentials: Mapping[str, str],
    mode: str,
) -> None:
    """The tenant's profile, then its source connection (credentials as JSON)."""
    set_profile(env, source.tenant_id, sources.PROFILES[source.system])
    _add_connection(env, source, json.dumps(dict(credentials)), mode)


def _hotel(
    env: Mapping[str, str], stack_env: Mapping[str, str], prefix: str, mode: str
) -> SourceConnection:
    """A hotel on Sirvoy whose flow books into its own Fortnox company (Integrati's
    Fakturasynk): invoices, payments and credits written there, nothing sent by us."""
    tenant = f"{prefix}-hotell"
    set_profile(env, tenant, sources.PROFILES[sources.SIRVOY])
    fortnox_url = stack_env["SANDBOX_FORTNOX_URL"]
    token = create_sandbox_company(fortnox_url, f"{tenant} AB")
    books = Books("fortnox", f"{tenant}-fortnox", fortnox_url, {"token": token})
    # The target first (a flow names an existing connection). erp-poller keeps it in manual
    # mode: what ledger-closer writes there is not fetched back as new documents.
    target = SourceConnection("fortnox", tenant, books.connection_id, fortnox_url, {})
    _add_write_connection(env, tenant, books, token, "--mode-of-payment", "BG")
    _add_connection(env, target, token, "manual", "--no-factor", "--no-distribute")
    url = stack_env["SANDBOX_SIRVOY_URL"]
    account = _create(url, "/sandbox/accounts", {"name": f"{tenant}"}, "sirvoy sandbox")
    hotell = SourceConnection(sources.SIRVOY, tenant, f"{tenant}-sirvoy", url, account, books)
    sirvoy = {"api_token": account["token"], "webhook_secret": account["webhook_secret"]}
    _add_connection(env, hotell, json.dumps(sirvoy), mode, *_book_only(books.connection_id))
    return hotell


def _kitchen(
    env: Mapping[str, str], stack_env: Mapping[str, str], prefix: str, mode: str
) -> SourceConnection:
    """A Norwegian kitchen studio on Winner whose accepted quotes become customers, projects,
    products and orders in its Tripletex company (iizy's integration)."""
    tenant = f"{prefix}-kjokken"
    set_profile(env, tenant, sources.PROFILES[sources.WINNER])
    url = stack_env["SANDBOX_TRIPLETEX_URL"]
    company = _create(url, "/sandbox/companies", {"name": f"{tenant} AS"}, "tripletex sandbox")
    tokens = {k: company[k] for k in ("consumer_token", "employee_token")}
    books = Books("tripletex", f"{tenant}-tripletex", url, tokens)
    _add_write_connection(env, tenant, books, json.dumps(tokens), "--country", "NO")
    target = SourceConnection("tripletex", tenant, books.connection_id, url, {})
    _add_connection(env, target, None, "manual", "--no-factor", "--no-distribute")
    secret = secrets.token_urlsafe(32)
    winner = SourceConnection(
        sources.WINNER,
        tenant,
        f"{tenant}-winner",
        "https://winner.push.invalid",
        {"signing_secret": secret, "erp_poller_url": stack_env["ERP_POLLER_URL"]},
        books,
    )
    _add_connection(env, winner, secret, mode, *_book_only(books.connection_id))
    return winner


async def provision_sources(
    stack_env: Mapping[str, str], prefix: str, *, mode: str = "automatic"
) -> list[SourceConnection]:
    """Four more tenants, one per source: a builder on Visma eAccounting (`<prefix>-bygg`),
    a Norwegian company on Visma.net (`<prefix>-fjord`, in Oslo's time zone, Norwegian and
    kroner), each with its profile and a new sandbox company connected to erp-poller and the
    default flow (factor, send); a hotel on Sirvoy (`<prefix>-hotell`) whose flow books into
    its own Fortnox company; and a Norwegian kitchen studio on Winner (`<prefix>-kjokken`)
    whose flow books into its Tripletex company. Neither of the last two factors or sends.
    Sirvoy's booking webhooks go to erp-poller's ingest endpoint; its poll catches what one
    misses; Winner pushes its orders there, signed.
    """
    env = {**os.environ, **stack_env}
    url = stack_env["SANDBOX_VISMA_EACCOUNTING_URL"]
    tenant = f"{prefix}-bygg"
    company = await sources.visma_eaccounting_company(url, f"{tenant} AB")
    bygg = SourceConnection(sources.VISMA_EACCOUNTING, tenant, f"{tenant}-visma", url, company)
    credentials = {k: str(company[k]) for k in ("client_id", "client_secret", "refresh_token")}
    _source(env, bygg, {**credentials, "token_url": company["token_url"]}, mode)

    url = stack_env["SANDBOX_VISMA_NET_URL"]
    tenant = f"{prefix}-fjord"
    net = _create(url, "/sandbox/companies", {"name": f"{tenant} AS"}, "visma-net sandbox")
    fjord = SourceConnection(sources.VISMA_NET, tenant, f"{tenant}-visma-net", url, net)
    _source(env, fjord, {"token": net["token"], "company_id": net["company_id"]}, mode)

    hotell = _hotel(env, stack_env, prefix, mode)
    await sources.register_sirvoy_webhook(
        hotell.url,
        hotell.writer["token"],
        f"{stack_env['ERP_POLLER_URL']}/api/v1/ingest/sirvoy/{hotell.connection_id}",
    )
    return [bygg, fjord, hotell, _kitchen(env, stack_env, prefix, mode)]
