"""Micro benchmark: factoring-gateway deciding invoice.created batches through the runtime's
batch processing (``ServiceHarness``: inbox, handler, outbox on a real PostgreSQL; no Kafka,
no relay). Prints invoices per second per batch and the SQL statements each batch sends
(counted at asyncpg: BEGIN/COMMIT, the pool's reset and the harness's outbox read
included). Asserts nothing.

    uv run --frozen python bench/factoring_decisions.py [--batches 5] [--size 200]

Uses ``DATABASE_URL`` when set, else starts PostgreSQL (and Kafka) of its own in a
temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from factoring_gateway.deps import Deps
from factoring_gateway.domain.transfer import TransferSecret
from factoring_gateway.service.agreements import set_agreement
from factoring_gateway.testing import agreement, app_for, sample_invoice
from nordflow_local.stack import Stack
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.envelope import Envelope, envelope
from nordflow_schemas.events import InvoiceCreated
from nordflow_schemas.testing import new_tenant, tenant_profile

SENT: Counter[str] = Counter()


def _counted(name: str) -> None:
    """Count every call of an asyncpg connection method that sends a statement."""
    original: Callable[..., Awaitable[Any]] = getattr(asyncpg.connection.Connection, name)

    async def counted(self: asyncpg.Connection, *args: Any, **kwargs: Any) -> Any:
        SENT["statements"] += 1
        return await original(self, *args, **kwargs)

    setattr(asyncpg.connection.Connection, name, counted)


async def _tenants(harness: ServiceHarness[Deps], count: int) -> list[str]:
    """Tenants with a profile and a factoring agreement each."""
    tenants = [new_tenant() for _ in range(count)]
    deps = harness.deps
    for tenant in tenants:
        await harness.tenant(tenant, tenant_profile("NO"))
        async with harness.pool.acquire() as conn, conn.transaction():
            await set_agreement(
                deps.repositories(conn),
                deps.formats,
                deps.sealer,
                agreement(tenant),
                TransferSecret(password=secrets.token_urlsafe(12)),
                deps.clock(),
            )
    return tenants


def _batch(tenants: list[str], first: int, size: int) -> list[Envelope[Any]]:
    today = dt.datetime.now(dt.UTC).date()
    envs: list[Envelope[Any]] = []
    for n in range(first, first + size):
        invoice = sample_invoice(tenants[n % len(tenants)], str(n), issue_date=today)
        body = InvoiceCreated(
            tenant_id=invoice.tenant_id,
            invoice_id=invoice.invoice_id,
            version="v1",
            invoice=invoice,
        )
        envs.append(envelope(body, source="/bench", subject=invoice.number))
    return envs


async def measure(database_url: str, batches: int, size: int, tenants: int) -> None:
    harness = await ServiceHarness.start(app_for(database_url), database_url)
    try:
        names = await _tenants(harness, tenants)
        rates, statements = [], []
        for b in range(batches + 1):  # the first warms up
            envs = _batch(names, 1 + b * size, size)
            SENT.clear()
            started = time.perf_counter()
            out = await harness.deliver(*envs)
            seconds = time.perf_counter() - started
            if len(out.events) != size:
                raise SystemExit(f"{len(out.events)} decisions for {size} invoices")
            if b:
                rates.append(size / seconds)
                statements.append(SENT["statements"])
        print(
            f"factoring-gateway, {batches} batches of {size} invoice.created of {tenants} "
            f"tenants: median {statistics.median(rates):,.0f} invoices/s "
            f"(each: {', '.join(f'{r:,.0f}' for r in rates)}); "
            f"{statistics.median(statements):,.0f} SQL statements per batch; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
    finally:
        await harness.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--size", type=int, default=200, help="records per batch")
    parser.add_argument("--tenants", type=int, default=24)
    args = parser.parse_args()
    for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
        _counted(name)
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(measure(url, args.batches, args.size, args.tenants))
        return
    state = Path(tempfile.mkdtemp(prefix="nordflow-bench-fg-"))
    state.chmod(0o755)  # PostgreSQL's user must reach its data directory
    stack = Stack(state)
    try:
        url = stack.infra()["DATABASE_URL"]
        asyncio.run(measure(url, args.batches, args.size, args.tenants))
    finally:
        stack.down()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
