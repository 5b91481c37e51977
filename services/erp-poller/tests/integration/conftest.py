"""Fixtures: erp-poller on a throwaway schema of the real PostgreSQL server (`ServiceHarness`:
the service's own migrations and dependencies), and the partners' sandboxes in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from erp_poller.deps import Deps
from erp_poller.testing import app_for
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox
from nordflow_sandboxes.sirvoy.testing import RunningSirvoySandbox, running_sirvoy_sandbox
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox, running_visma_net_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    """The Fortnox sandbox; its rate limit is out of the way (the connector tests cover it)."""
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture(scope="session")
def eaccounting_sandbox() -> Iterator[RunningVismaEAccountingSandbox]:
    """The Visma eAccounting sandbox (OAuth with rotating refresh tokens)."""
    with running_visma_eaccounting_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def visma_net_sandbox() -> Iterator[RunningVismaNetSandbox]:
    """The Visma.net sandbox."""
    with running_visma_net_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def sirvoy_sandbox() -> Iterator[RunningSirvoySandbox]:
    """The Sirvoy sandbox (its read API; no webhooks are registered)."""
    with running_sirvoy_sandbox() as running:
        yield running


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """erp-poller's migrations on a fresh schema, its production dependencies on it; local
    sandboxes are allowed as connections' addresses."""
    h = await ServiceHarness.start(app_for(database_url), database_url)
    yield h
    await h.close()


@pytest.fixture
def pool(harness: ServiceHarness[Deps]) -> asyncpg.Pool:
    return harness.pool


@pytest.fixture
def deps(harness: ServiceHarness[Deps]) -> Deps:
    return harness.deps


@pytest.fixture
def box(deps: Deps) -> SecretBox:
    return deps.box
