"""Fakes of factoring-gateway's repositories, for fast use-case tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.testing import FakeTenantProfiles
from pydantic import SecretStr

from .app import create_app
from .config import Settings
from .deps import Deps
from .domain import Agreement
from .service import Repositories


def app_for(database_url: str) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none)."""
    return create_app(
        Settings(kafka_bootstrap_servers="unused:9092", database_url=SecretStr(database_url))
    )


@dataclass
class FakeAgreementRepository:
    """Agreements in a dict by tenant."""

    agreements: dict[str, Agreement] = field(default_factory=dict)

    async def get(self, tenant_id: str) -> Agreement | None:
        """The tenant's agreement, if any."""
        return self.agreements.get(tenant_id)

    async def save(self, agreement: Agreement) -> None:
        """Create or replace the tenant's agreement."""
        self.agreements[agreement.tenant_id] = agreement


@dataclass
class FakeTransferRepository:
    """Decisions and transfers in dicts by invoice id."""

    decisions: dict[str, tuple[bool, str]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def record_decision(
        self, tenant_id: str, invoice_id: str, eligible: bool, reason: str
    ) -> bool:
        """Record the invoice's decision; False if it was decided before."""
        if invoice_id in self.decisions:
            return False
        self.decisions[invoice_id] = (eligible, reason)
        return True

    async def record_transfer(
        self,
        *,
        transfer_id: str,
        tenant_id: str,
        invoice_id: str,
        provider: str,
        amount: Decimal,
        currency: str,
        transferred_at: dt.datetime,
    ) -> bool:
        """Record the transfer; False if the invoice has one already."""
        if invoice_id in self.transfers:
            return False
        self.transfers[invoice_id] = {
            "transfer_id": transfer_id,
            "tenant_id": tenant_id,
            "provider": provider,
            "amount": amount,
            "currency": currency,
            "transferred_at": transferred_at,
        }
        return True


def fake_repositories(profiles: FakeTenantProfiles | None = None) -> Repositories:
    """Empty fakes of every repository."""
    return Repositories(
        agreements=FakeAgreementRepository(),
        transfers=FakeTransferRepository(),
        profiles=profiles or FakeTenantProfiles(),
    )
