"""Settings: jobs at once, and a database pool large enough for them."""

from __future__ import annotations

import pytest
from ledger_closer.app import create_app
from ledger_closer.config import Settings
from ledger_closer.domain import BOOK_DOCUMENT, CLOSE_INVOICE, INVOICE_ORDER, POST_ENTRY
from pydantic import ValidationError


def settings(
    write_concurrency: int | None = None, database_pool_size: int | None = None
) -> Settings:
    """The settings, with the defaults of what is not given."""
    chosen = {"write_concurrency": write_concurrency, "database_pool_size": database_pool_size}
    return Settings.model_validate(
        {
            "kafka_bootstrap_servers": "unused:9092",
            "database_url": "postgresql://unused/db",
            "encryption_key": "k" * 43 + "=",
            **{name: value for name, value in chosen.items() if value is not None},
        }
    )


def test_write_jobs_run_write_concurrency_at_once_one_per_tenant() -> None:
    app = create_app(settings(write_concurrency=6, database_pool_size=42))
    for kind in (POST_ENTRY, CLOSE_INVOICE, BOOK_DOCUMENT):
        _, options = app.job_handlers[kind]
        assert (options["concurrency"], options["per_tenant"]) == (6, 1)
    _, options = app.job_handlers[INVOICE_ORDER]
    assert "concurrency" not in options  # one at a time


def test_a_pool_too_small_for_the_jobs_at_once_is_refused_naming_both_settings() -> None:
    assert settings().database_pool_size >= 30  # the defaults fit: 4 at once
    with pytest.raises(ValidationError) as refused:
        settings(write_concurrency=6, database_pool_size=41)
    message = str(refused.value)
    assert "DATABASE_POOL_SIZE 41" in message
    assert "WRITE_CONCURRENCY 6" in message
    assert "at least 42" in message
