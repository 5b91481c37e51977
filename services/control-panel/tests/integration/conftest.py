"""Fixtures: control-panel on a throwaway schema of the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from control_panel.deps import Deps
from control_panel.testing import app_for
from nordflow_runtime.testing import ServiceHarness


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service's handlers and routers on its own fresh schema."""
    h = await ServiceHarness.start(app_for(database_url), database_url)
    yield h
    await h.close()
