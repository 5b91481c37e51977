"""Fixtures for document tests: one compiled validator for the whole session."""

from __future__ import annotations

import pytest
from nordflow_documents.peppol import PeppolBisRenderer
from nordflow_documents.validation import PeppolValidator, shared_validator


@pytest.fixture(scope="session")
def validator() -> PeppolValidator:
    """The process-wide validator: the stylesheets are compiled once per test session."""
    return shared_validator()


@pytest.fixture(scope="session")
def renderer() -> PeppolBisRenderer:
    return PeppolBisRenderer()
