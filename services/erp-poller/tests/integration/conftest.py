"""Fixtures: a migrated erp_poller schema on the real PostgreSQL, and an in-process sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from cryptography.fernet import Fernet
from erp_poller.app import create_app
from erp_poller.config import Settings
from nordflow_runtime import db
from nordflow_runtime.crypto import SecretBox
from nordflow_sandboxes.fortnox import FortnoxState
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox, running_fortnox_sandbox
from nordflow_sandboxes.sirvoy.testing import RunningSirvoySandbox, running_sirvoy_sandbox
from nordflow_sandboxes.visma_eaccounting.testing import (
    RunningVismaEAccountingSandbox,
    running_visma_eaccounting_sandbox,
)
from nordflow_sandboxes.visma_net.testing import RunningVismaNetSandbox, running_visma_net_sandbox
from pydantic import SecretStr


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
def encryption_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def box(encryption_key: str) -> SecretBox:
    return SecretBox(SecretStr(encryption_key))


@pytest.fixture
async def migrated_url(fresh_database_url: str, encryption_key: str) -> str:
    """A fresh database with erp-poller's migrations applied the way the service does it."""
    app = create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(fresh_database_url),
            encryption_key=SecretStr(encryption_key),
        )
    )
    applied = await app.migrate()
    assert applied, "a fresh database gets every migration"
    return fresh_database_url


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(migrated_url, "erp_poller", min_size=1, max_size=4)
    yield created
    await created.close()
