"""Fixtures: factoring-gateway on a throwaway schema of the real PostgreSQL server, and the
factor sandbox on loopback ports (SFTP, HTTPS with its own CA)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from factoring_gateway.deps import Deps
from factoring_gateway.testing import app_for
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.factor.testing import RunningFactorSandbox, running_factor_sandbox


@pytest.fixture
def factor(tmp_path: Path) -> Iterator[RunningFactorSandbox]:
    """A factor on loopback: SFTP, the HTTPS API (its CA in ``factor.ca_file``), admin."""
    with running_factor_sandbox(trust_dir=tmp_path / "factor-trust") as running:
        yield running


@pytest.fixture
def key() -> str:
    """The service's ENCRYPTION_KEY."""
    return Fernet.generate_key().decode()


@pytest.fixture
async def harness(
    database_url: str, key: str, factor: RunningFactorSandbox
) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service's handlers, jobs and API on its own fresh schema, with the production
    dependencies; it trusts the factor sandbox's CA and waits briefly for receipts."""
    app = app_for(
        database_url,
        encryption_key=key,
        factor_ca_file=str(factor.ca_file),
        receipt_timeout_seconds=3.0,
        receipt_poll_seconds=0.05,
        transfer_timeout_seconds=5.0,
    )
    h = await ServiceHarness.start(app, database_url)
    yield h
    await h.close()
