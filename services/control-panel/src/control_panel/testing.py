"""Fakes of control-panel's repositories and ``app_for``, for fast tests and the harness."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.testing import FakeTenantProfiles
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain.journey import Step, Summary
from .service import Repositories


def settings_for(database_url: str, bootstrap: str = "unused:9092", **extra: Any) -> Settings:
    """Settings on a database (and a broker), for tests: the cookie works over plain HTTP."""
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        database_url=SecretStr(database_url),
        session_cookie_secure=False,
        **extra,
    )


def app_for(database_url: str, bootstrap: str = "unused:9092") -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (the harness needs no broker)."""
    return create_app(settings_for(database_url, bootstrap))


@dataclass
class FakeJourneyRepository:
    """Steps, summaries and documents in dicts."""

    steps_by_id: dict[str, Step] = field(default_factory=dict)
    summaries: dict[tuple[str, str], Summary] = field(default_factory=dict)
    documents: dict[tuple[str, str], tuple[dt.datetime, str, dict[str, Any]]] = field(
        default_factory=dict
    )

    async def add_step(self, step: Step) -> bool:
        """Record a step; False if its event was recorded before."""
        if step.event_id in self.steps_by_id:
            return False
        self.steps_by_id[step.event_id] = step
        return True

    async def steps(self, tenant_id: str, invoice_id: str) -> list[Step]:
        """Every step of the invoice."""
        return [
            s
            for s in self.steps_by_id.values()
            if (s.tenant_id, s.invoice_id) == (tenant_id, invoice_id)
        ]

    async def save_summary(self, tenant_id: str, invoice_id: str, summary: Summary) -> None:
        """Replace the invoice's summary."""
        self.summaries[(tenant_id, invoice_id)] = summary

    async def keep_document(
        self,
        tenant_id: str,
        invoice_id: str,
        event_id: str,
        occurred_at: dt.datetime,
        document: dict[str, Any],
    ) -> None:
        """Keep the canonical invoice unless a newer one is kept."""
        kept = self.documents.get((tenant_id, invoice_id))
        if kept is None or (kept[0], kept[1]) < (occurred_at, event_id):
            self.documents[(tenant_id, invoice_id)] = (occurred_at, event_id, document)


class Recorder:
    """Any other repository: records each call (name, arguments) and returns nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def fake_repositories(profiles: FakeTenantProfiles | None = None) -> Repositories:
    """Fakes: the journeys in memory; books, operations, reads and tokens recorded."""
    recorder: Any = Recorder()
    return Repositories(
        journeys=FakeJourneyRepository(),
        books=recorder,
        operations=recorder,
        read=recorder,
        tokens=recorder,
        profiles=profiles or FakeTenantProfiles(),
    )
