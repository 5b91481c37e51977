"""Fixtures: Fortnox sandboxes served in-process on loopback ports, one company per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import (
    AsyncFortnoxSandboxAdmin,
    RunningFortnoxSandbox,
    SandboxCompany,
    running_fortnox_sandbox,
)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    """A sandbox with Fortnox's own limit: 25 requests per 5 s per token."""
    with running_fortnox_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def bulk_sandbox() -> Iterator[RunningFortnoxSandbox]:
    """A sandbox whose limit never bites, for tests that seed many documents over HTTP."""
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
async def admin(sandbox: RunningFortnoxSandbox) -> AsyncIterator[AsyncFortnoxSandboxAdmin]:
    async with AsyncFortnoxSandboxAdmin(sandbox.base_url) as client:
        yield client


@pytest.fixture
async def bulk_admin(
    bulk_sandbox: RunningFortnoxSandbox,
) -> AsyncIterator[AsyncFortnoxSandboxAdmin]:
    async with AsyncFortnoxSandboxAdmin(bulk_sandbox.base_url) as client:
        yield client


@pytest.fixture
def company(sandbox: RunningFortnoxSandbox) -> SandboxCompany:
    """A new empty company (random token) in the rate-limited sandbox."""
    return sandbox.create_company()


@pytest.fixture
def bulk_company(bulk_sandbox: RunningFortnoxSandbox) -> SandboxCompany:
    """A new empty company in the sandbox without an effective rate limit."""
    return bulk_sandbox.create_company()
