"""The shared rate-limit budget: two clients of one company (two services, or replicas), each
with its own PgRateBudget on the same key, together stay within the partner's window."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from nordflow_connectors.budget import PgRateBudget, budget_key, per_endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(database_url, min_size=1, max_size=6)
    assert created is not None
    yield created
    await created.close()


async def test_two_holders_of_one_key_share_one_window(pool: asyncpg.Pool) -> None:
    key = budget_key("fortnox", f"c-{uuid.uuid4().hex[:8]}")
    poller = PgRateBudget(pool, key, limit=5, window=1.0, margin=0.0)
    closer = PgRateBudget(pool, key, limit=5, window=1.0, margin=0.0)
    other = PgRateBudget(pool, budget_key("fortnox", "another"), limit=5, window=1.0, margin=0.0)

    started = time.monotonic()
    await asyncio.gather(*(b.acquire() for b in (poller, closer) for _ in range(5)))
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9  # ten calls, five per second: the second five waited

    started = time.monotonic()
    await asyncio.gather(*(other.acquire() for _ in range(5)))
    assert time.monotonic() - started < 0.9  # another company has its own budget


async def test_per_endpoint_budgets_of_one_client_are_shared_and_kept_apart(
    pool: asyncpg.Pool,
) -> None:
    # eAccounting counts per OAuth client and endpoint: erp-poller and ledger-closer using one
    # client share each endpoint's window; another endpoint has its own.
    client = f"client-{uuid.uuid4().hex[:8]}"
    poller = per_endpoint(pool, "visma-eaccounting", client, 5, 0.5)
    closer = per_endpoint(pool, "visma-eaccounting", client, 5, 0.5)
    invoices = [poller("/customerinvoices"), closer("/customerinvoices")]

    started = time.monotonic()
    await asyncio.gather(*(b.acquire() for b in invoices for _ in range(5)))
    assert time.monotonic() - started >= 1.4  # window 0.5 s plus the 1 s margin

    started = time.monotonic()
    await asyncio.gather(*(closer("/customerinvoices/{id}/payments").acquire() for _ in range(5)))
    assert time.monotonic() - started < 1.0
