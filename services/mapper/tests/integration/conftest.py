"""Fixtures: mapper on a throwaway schema of the real PostgreSQL server, and an in-process
Fortnox sandbox where documents come from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mapper.deps import Deps
from mapper.testing import app_for
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[RunningFortnoxSandbox]:
    """The Fortnox sandbox, where invoices and payments come from."""
    with running_fortnox_sandbox(FortnoxState(rate_limit=100_000)) as running:
        yield running


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service's handler on its own fresh schema, with the production repositories."""
    h = await ServiceHarness.start(app_for(database_url), database_url)
    yield h
    await h.close()
