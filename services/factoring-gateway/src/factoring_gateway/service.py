"""Use cases: decide each created invoice once, record a transfer for the eligible ones, and
keep the tenants' agreements. Repositories are passed in (``Repositories``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from nordflow_runtime.tenant_profiles import TenantProfiles
from nordflow_schemas.events import InvoiceCreated, InvoiceTransferred
from nordflow_schemas.tenant import local_date, tenant_zone

from .domain import Agreement, eligibility


class AgreementRepository(Protocol):
    """The tenants' provider agreements."""

    async def get(self, tenant_id: str) -> Agreement | None:
        """The tenant's agreement, if any."""
        ...

    async def save(self, agreement: Agreement) -> None:
        """Create or replace the tenant's agreement."""
        ...


class TransferRepository(Protocol):
    """Decisions (one per invoice, never overturned) and transfers (one per invoice)."""

    async def record_decision(
        self, tenant_id: str, invoice_id: str, eligible: bool, reason: str
    ) -> bool:
        """Record the invoice's decision; False if it was decided before."""
        ...

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
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case of this service reads or writes, on one transaction."""

    agreements: AgreementRepository
    transfers: TransferRepository
    profiles: TenantProfiles


async def decide_transfer(
    repos: Repositories, event: InvoiceCreated, now: dt.datetime
) -> InvoiceTransferred | None:
    """Record the decision; return the transfer event for an eligible invoice.

    The invoice's age is counted in days of the tenant's time zone. A connection in test mode
    is decided but never transferred.
    """
    invoice = event.invoice
    agreement = await repos.agreements.get(event.tenant_id)
    zone = tenant_zone(
        await repos.profiles.get(event.tenant_id), invoice.seller.address.country_code
    )
    reason = eligibility(agreement, invoice, local_date(now, zone))
    if reason is None and event.test_mode:
        reason = "test mode: would be transferred"
    decided = await repos.transfers.record_decision(
        event.tenant_id, event.invoice_id, reason is None, reason or "eligible"
    )
    # Decided once: a later copy never overturns the recorded decision.
    if not decided or reason is not None or agreement is None:
        return None
    transfer_id = f"tr_{uuid.uuid4().hex}"
    inserted = await repos.transfers.record_transfer(
        transfer_id=transfer_id,
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        provider=agreement.provider,
        amount=invoice.totals.payable,
        currency=invoice.currency,
        transferred_at=now,
    )
    if not inserted:
        return None
    return InvoiceTransferred(
        tenant_id=event.tenant_id,
        invoice_id=event.invoice_id,
        source=invoice.source,
        document_type=invoice.document_type,
        number=invoice.number,
        provider=agreement.provider,
        agreement_kind=agreement.kind,
        transfer_id=transfer_id,
        amount=invoice.totals.payable,
        currency=invoice.currency,
        transferred_at=now,
    )


async def set_agreement(agreements: AgreementRepository, agreement: Agreement) -> None:
    """Create or replace a tenant's agreement."""
    await agreements.save(agreement)
