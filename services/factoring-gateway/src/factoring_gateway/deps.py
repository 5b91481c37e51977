"""The one dependencies object factoring-gateway's entrypoints hand to its use cases: the
repositories' factory, the file formats, the transfer clients, the secret box, the clock
and the settings that shape the jobs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import cast

import asyncpg
from nordflow_runtime.app import Resources
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.personal_data import PersonalData

from .adapters.repositories import pg_repositories
from .adapters.transfer import default_clients
from .config import Settings
from .domain.formats import FormatRegistry, default_formats
from .service.ports import FactorClients, Repositories, SecretSealer


def utc_now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Deps:
    """What the handlers, jobs and routers of the service use."""

    repositories: Callable[[asyncpg.Connection | asyncpg.Pool], Repositories]
    formats: FormatRegistry
    clients: FactorClients
    sealer: SecretSealer
    clock: Callable[[], dt.datetime] = field(default=utc_now)
    receipt_timeout: float = 60.0
    settlement_interval: dt.timedelta = dt.timedelta(hours=1)
    personal: PersonalData | None = None  # opens consumers' sealed personal numbers


def deps_for(settings: Settings, pool: asyncpg.Pool | None) -> Deps:
    """The production dependencies on a pool (the attempt log commits on it)."""
    return Deps(
        repositories=partial(pg_repositories, pool=pool),
        formats=default_formats(),
        clients=default_clients(
            timeout=settings.transfer_timeout_seconds,
            poll_seconds=settings.receipt_poll_seconds,
            ca_file=settings.factor_ca_file,
            allow_internal=settings.allow_internal_urls,
        ),
        sealer=SecretBox(settings.encryption_key),
        receipt_timeout=settings.receipt_timeout_seconds,
        settlement_interval=dt.timedelta(seconds=settings.settlement_poll_seconds),
        personal=PersonalData(settings.personal_data_key) if settings.personal_data_key else None,
    )


async def build_deps(resources: Resources) -> Deps:
    """The production dependencies (built once at start-up; nothing connects yet)."""
    return deps_for(cast(Settings, resources.settings), resources.pool)
