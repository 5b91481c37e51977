"""The chaos workload: tenants on every source, and documents fed over a stretch of time."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from nordflow_local import sources
from nordflow_local.panel import create_token
from nordflow_local.provision import SourceConnection, Tenant, provision_sources, provision_tenant
from nordflow_local.samples import (
    BAD_CUSTOMER,
    CUSTOMERS,
    EXTRA_PEPPOL_GLNS,
    SandboxWriter,
    register_b2c_consumers,
    register_peppol_participant,
    register_peppol_recipients,
)

FORTNOX = "fortnox"
WINNER = sources.WINNER


@dataclass(frozen=True)
class Profile:
    """How much to feed and how hard to hit: a run is bounded in count and time."""

    name: str
    fortnox_tenants: int  # each: its own sandbox company, factoring agreement, ERP write-back
    invoices_per_tenant: int  # valid Fortnox invoices per tenant, over the four channels
    bad_per_tenant: int  # invalid ones (rejected by the mapper)
    source_groups: int  # each: a Visma eAccounting, a Visma.net, a Sirvoy and a Winner tenant
    # Documents per source tenant (Sirvoy adds credits and payments); Winner: quotes, each
    # two documents (its payment calendar's parts).
    per_source: int
    feed_seconds: float  # documents are created over this stretch
    service_kills: int
    broker_restarts: int
    postgres_restarts: int
    fault_window: float  # faults start within this many seconds of the feed's start
    quiesce_timeout: float  # how long the system may take to settle after the last fault
    settlements: bool = False  # the factor settles what it accepted; ledger-closer books it


SHORT = Profile(
    name="short",
    fortnox_tenants=2,
    invoices_per_tenant=8,
    bad_per_tenant=1,
    source_groups=1,
    per_source=3,
    feed_seconds=25,
    service_kills=2,
    broker_restarts=1,
    postgres_restarts=1,
    fault_window=45,
    quiesce_timeout=150,
)
FULL = Profile(
    name="full",
    fortnox_tenants=6,
    invoices_per_tenant=40,
    bad_per_tenant=1,
    source_groups=2,
    per_source=15,
    feed_seconds=150,
    service_kills=10,
    broker_restarts=2,
    postgres_restarts=2,
    fault_window=200,
    quiesce_timeout=480,
    settlements=True,
)
PROFILES = {p.name: p for p in (SHORT, FULL)}


@dataclass(frozen=True)
class Document:
    """A document the workload created in a source sandbox, to be found on the topics."""

    tenant: str
    system: str
    document_id: str


@dataclass(frozen=True)
class WinnerQuote:
    """An accepted quote the workload pushed as Winner does: the documents it becomes (one
    per part of its payment calendar, with the part's due date), its customer and project."""

    tenant: str
    quote_number: str
    customer_email: str
    project_number: str
    parts: tuple[tuple[str, dt.date], ...]  # (document id, due date)


# Winner's customers, in turn: a second quote of the same customer finds its card.
WINNER_CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "customer_number": "K-1042",
        "name": "Kari Nordmann",
        "type": "private",
        "email": "kari.nordmann@example.no",
        "address": {"lines": ["Storgata 12"], "postal_code": "0155", "city": "Oslo"},
    },
    {
        "customer_number": "K-2077",
        "name": "Ola Hansen",
        "type": "private",
        "email": "ola.hansen@example.no",
        "address": {"lines": ["Kirkeveien 3"], "postal_code": "0368", "city": "Oslo"},
    },
)


@dataclass
class Workload:
    """Tenants provisioned through the services' own commands, documents made in the sandboxes."""

    env: Mapping[str, str]
    prefix: str
    profile: Profile
    seed: int
    say: Callable[[str], None] = print
    fortnox: list[Tenant] = field(default_factory=list)
    connected: list[SourceConnection] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    winner: list[WinnerQuote] = field(default_factory=list)
    partner_faults_queued: int = 0
    settled: int = 0  # settlement lines the factor wrote
    panel_token: str = ""  # an operator's token of the control panel's API

    @property
    def tenants(self) -> list[str]:
        """Every tenant of this run."""
        return [t.tenant_id for t in self.fortnox] + [c.tenant_id for c in self.connected]

    async def provision(self) -> None:
        """Recipients in the SMP and the bank, then every tenant (needs the stack healthy)."""
        env = self.env
        await register_peppol_recipients(env["SANDBOX_SMP_URL"])
        for gln in EXTRA_PEPPOL_GLNS:
            await register_peppol_participant(env["SANDBOX_SMP_URL"], f"0088:{gln}")
        await register_b2c_consumers(env["SANDBOX_B2C_BANK_URL"])
        # A few at a time: each tenant is several command-line runs of the services.
        gate = asyncio.Semaphore(3)

        async def fortnox(i: int) -> Tenant:
            async with gate:
                return await asyncio.to_thread(provision_tenant, env, f"{self.prefix}-f{i}")

        async def group(g: int) -> list[SourceConnection]:
            async with gate:
                return await provision_sources(env, f"{self.prefix}-s{g}")

        tenants, groups = await asyncio.gather(
            asyncio.gather(*(fortnox(i) for i in range(self.profile.fortnox_tenants))),
            asyncio.gather(*(group(g) for g in range(self.profile.source_groups))),
        )
        self.fortnox = list(tenants)
        self.connected = [c for connected in groups for c in connected]
        token = await asyncio.to_thread(create_token, env, "--operator", "--name", "chaos")
        if not token:
            raise RuntimeError("control-panel tokens create --operator --name chaos failed")
        self.panel_token = token

    async def partner_faults(self) -> list[str]:
        """Queue failures at the partners the services write to, the nastiest first: the
        write happens but the client sees a 5xx (it must look up, never write twice), then
        refusals before anything is done (429, 5xx). Returns what was queued."""
        queued: list[str] = []
        self.partner_faults_queued = 0
        async with httpx.AsyncClient(timeout=10) as http:

            async def fault(name: str, url: str, token: str, **body: object) -> None:
                response = await http.post(
                    f"{url}/sandbox/faults",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                response.raise_for_status()
                self.partner_faults_queued += int(str(body.get("count", 1)))
                queued.append(
                    f"{name} {body.get('method', '')} {body['path_prefix']} "
                    f"{body['status']}{' after commit' if body.get('after_commit') else ''}"
                )

            for t in self.fortnox:
                payments = "/3/invoicepayments"
                await fault(
                    t.tenant_id,
                    t.fortnox_url,
                    t.fortnox_token,
                    status=503,
                    count=1,
                    path_prefix=payments,
                    method="POST",
                    after_commit=True,
                )
                await fault(
                    t.tenant_id,
                    t.fortnox_url,
                    t.fortnox_token,
                    status=429,
                    count=2,
                    path_prefix=payments,
                    method="POST",
                    retry_after_seconds=1,
                )
                await fault(
                    t.tenant_id,
                    t.fortnox_url,
                    t.fortnox_token,
                    status=500,
                    count=1,
                    path_prefix="/3/invoices",
                    method="GET",
                )
            for partner, path in (
                ("PEPPOL_AP", "/api/v1/documents"),
                ("PRINT_POST", "/api/v1/letters"),
                ("B2C_BANK", "/api/v1/einvoices"),
            ):
                url, token = (
                    self.env[f"SANDBOX_{partner}_URL"],
                    self.env[f"SANDBOX_{partner}_TOKEN"],
                )
                await fault(
                    partner.lower(),
                    url,
                    token,
                    status=503,
                    count=1,
                    path_prefix=path,
                    method="POST",
                    after_commit=True,
                )
                await fault(
                    partner.lower(),
                    url,
                    token,
                    status=500,
                    count=1,
                    path_prefix=path,
                    method="POST",
                )
        return queued

    async def factor_settles(self) -> int:
        """The factor settles every invoice it accepted and has not settled yet (paid in
        full, its fee withheld): a settlement file that factoring-gateway reads back as
        `payment.received` for ledger-closer to book. Returns the lines written (also kept
        in ``settled``)."""
        written = 0
        async with httpx.AsyncClient(timeout=30) as http:
            for t in self.fortnox:
                if t.factor is None:
                    continue
                response = await http.post(
                    f"{self.env['SANDBOX_FACTOR_URL']}/sandbox/settlements",
                    json={},
                    headers={"Authorization": f"Bearer {t.factor.token}"},
                )
                if response.status_code < 300:
                    written += int(response.json().get("lines", 0))
                else:
                    self.say(f"  ! settlement for {t.tenant_id}: HTTP {response.status_code}")
        self.settled += written
        # Read back now rather than at the service's next periodic read (SETTLEMENT_POLL_SECONDS,
        # 5 s in the local stack): the run's settle phase then starts from a known point.
        for t in self.fortnox:
            await asyncio.to_thread(
                subprocess.run,
                [
                    str(Path(sys.executable).parent / "factoring-gateway"),
                    "settlements",
                    "fetch",
                    "--tenant",
                    t.tenant_id,
                ],
                env={**os.environ, **self.env},
                capture_output=True,
                timeout=120,
                check=False,
            )
        return written

    async def partner_faults_left(self, *, clear: bool = True) -> int:
        """How many of the queued partner faults no request has met yet; those are dropped
        (with ``clear``), so a shared sandbox account leaves none to whoever comes next."""
        targets = [(t.fortnox_url, t.fortnox_token) for t in self.fortnox]
        targets += [
            (self.env[f"SANDBOX_{p}_URL"], self.env[f"SANDBOX_{p}_TOKEN"])
            for p in ("PEPPOL_AP", "PRINT_POST", "B2C_BANK")
        ]
        left = 0
        async with httpx.AsyncClient(timeout=10) as http:
            for url, token in targets:
                response = await http.get(
                    f"{url}/sandbox/faults", headers={"Authorization": f"Bearer {token}"}
                )
                response.raise_for_status()
                body = response.json()
                faults = body.get("faults", body) if isinstance(body, dict) else body
                left += sum(int(f.get("remaining", f.get("count", 1))) for f in faults)
                if clear and faults:
                    await http.delete(
                        f"{url}/sandbox/faults", headers={"Authorization": f"Bearer {token}"}
                    )
        return left

    async def feed(self) -> None:
        """Create every document, spread over ``feed_seconds``, all tenants at once."""
        rng = random.Random(self.seed)  # noqa: S311 - sample data, not crypto
        jobs = [self._fortnox(t, rng.randrange(10**6)) for t in self.fortnox]
        jobs += [self._source(c, rng.randrange(10**6)) for c in self.connected]
        await asyncio.gather(*jobs)

    def _pace(self, count: int) -> float:
        return self.profile.feed_seconds / max(1, count)

    async def _fortnox(self, tenant: Tenant, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
        p = self.profile
        writer = SandboxWriter(tenant.fortnox_url, tenant.fortnox_token)
        try:
            customers = [await writer.customer(c) for c in CUSTOMERS]
            bad = await writer.customer(BAD_CUSTOMER)
            total = p.invoices_per_tenant + p.bad_per_tenant
            # The invalid ones are spread among the valid ones.
            bad_at = set(rng.sample(range(total), p.bad_per_tenant))
            for i in range(total):
                customer = bad if i in bad_at else customers[i % len(customers)]
                number = await writer.invoice(customer, rng)
                self.documents.append(Document(tenant.tenant_id, FORTNOX, number))
                await asyncio.sleep(self._pace(total) * rng.uniform(0.5, 1.5))
        finally:
            await writer.aclose()

    async def _source(self, c: SourceConnection, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - sample data, not crypto
        remaining = self.profile.per_source
        # Each chunk of Sirvoy bookings also brings a credit invoice and a payment; Winner's
        # quotes are pushed one at a time.
        chunk = 1 if c.system == sources.WINNER else 3
        pause = self._pace(max(1, remaining // chunk))
        while remaining > 0:
            n = min(chunk, remaining)
            remaining -= n
            if c.system == sources.VISMA_EACCOUNTING:
                bad = 1 if remaining == 0 else 0
                ids = await sources.create_visma_eaccounting_invoices(
                    c.url, dict(c.writer), n, bad=bad, seed=rng.randrange(10**6)
                )
            elif c.system == sources.VISMA_NET:
                ids = await sources.create_visma_net_invoices(
                    c.url, c.writer["token"], c.writer["company_id"], n, seed=rng.randrange(10**6)
                )
            elif c.system == sources.WINNER:
                ids = await self._winner(c, n)
            else:
                ids = await sources.create_sirvoy_invoices(
                    c.url, c.writer["token"], n, seed=rng.randrange(10**6)
                )
            self.documents += [Document(c.tenant_id, c.system, i) for i in ids]
            await asyncio.sleep(pause * rng.uniform(0.5, 1.5))

    async def _winner(self, c: SourceConnection, n: int) -> list[str]:
        """Push ``n`` accepted quotes, signed, as Winner does (each becomes an order per part
        of its payment calendar, 20 % due today); the documents they become."""
        today = dt.datetime.now(ZoneInfo(sources.PROFILES[sources.WINNER].time_zone)).date()
        ids: list[str] = []
        for _ in range(n):
            k = len([q for q in self.winner if q.tenant == c.tenant_id])
            order = sources.winner_order(f"Q{k + 1:04d}", today)
            order["customer"] = dict(WINNER_CUSTOMERS[k % len(WINNER_CUSTOMERS)])
            parts = await sources.push_winner_order(
                c.writer["erp_poller_url"], c.connection_id, c.writer["signing_secret"], order
            )
            due = [dt.date.fromisoformat(p["due_date"]) for p in order["payment_calendar"]]
            self.winner.append(
                WinnerQuote(
                    c.tenant_id,
                    order["quote_number"],
                    order["customer"]["email"],
                    order["project"]["number"],
                    tuple(zip(parts, due, strict=True)),
                )
            )
            ids += parts
        return ids
