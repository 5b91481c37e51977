"""Fixtures: ledger-closer on a throwaway schema of the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet
from ledger_closer.deps import Deps
from ledger_closer.testing import app_for
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import ServiceHarness
from pydantic import SecretStr


@pytest.fixture
def key() -> str:
    """The service's ENCRYPTION_KEY."""
    return Fernet.generate_key().decode()


@pytest.fixture
def box(key: str) -> SecretBox:
    """Seals credentials as the service opens them."""
    return SecretBox(SecretStr(key))


@pytest.fixture
async def harness(database_url: str, key: str) -> AsyncIterator[ServiceHarness[Deps]]:
    """The service's handlers and job on its own fresh schema, with the production
    dependencies (repositories, Fortnox writers); closing delay 0."""
    h = await ServiceHarness.start(app_for(database_url, encryption_key=key), database_url)
    yield h
    await h.close()
