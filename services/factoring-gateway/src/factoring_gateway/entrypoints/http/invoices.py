"""Each offered invoice's decision and where it stands (pending, transferred, why not)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from nordflow_runtime.http import Pool, QueryOffset
from nordflow_runtime.tenants import Tenant
from pydantic import BaseModel, Field

from ...domain.batches import InvoiceState, OfferedInvoice
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["invoices"])


class InvoiceOut(BaseModel):
    """An offered invoice: its decision, its reason and its state."""

    invoice_id: str
    number: str
    document_type: str
    amount: Decimal
    currency: str
    issue_date: dt.date
    due_date: dt.date | None
    state: InvoiceState
    eligible: bool = Field(description="Went, or goes, to the provider")
    reason: str = Field(description="'eligible', why not, or where it stands")
    agreement_id: str | None
    payment_reference: str | None
    batch_id: str | None
    decided_at: dt.datetime | None

    @classmethod
    def of(cls, o: OfferedInvoice) -> "InvoiceOut":
        """The API view."""
        invoice = o.invoice
        return cls(
            invoice_id=o.invoice_id,
            number=invoice.number,
            document_type=invoice.document_type.value,
            amount=invoice.totals.payable,
            currency=invoice.currency,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            state=o.state,
            eligible=o.state
            in (
                InvoiceState.PENDING,
                InvoiceState.BATCHED,
                InvoiceState.TRANSFERRED,
                InvoiceState.REFUSED,
            ),
            reason=o.reason,
            agreement_id=o.agreement_id,
            payment_reference=o.payment_reference,
            batch_id=o.batch_id,
            decided_at=o.decided_at,
        )


@router.get("/invoices", response_model=list[InvoiceOut])
async def list_invoices(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    state: InvoiceState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: QueryOffset = 0,
) -> list[InvoiceOut]:
    """The tenant's offered invoices, newest first; ``state=ineligible`` lists those that
    do not go, each with its reason."""
    async with pool.acquire() as conn:
        found = await deps.repositories(conn).invoices.listing(
            tenant, state=state, limit=max(1, min(limit, 1000)), offset=max(0, offset)
        )
    return [InvoiceOut.of(o) for o in found]


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut)
async def get_invoice(invoice_id: str, tenant: Tenant, deps: AppDeps, pool: Pool) -> InvoiceOut:
    """One offered invoice."""
    async with pool.acquire() as conn:
        found = await deps.repositories(conn).invoices.get(invoice_id)
    if found is None or found.tenant_id != tenant:
        raise HTTPException(404, f"no invoice {invoice_id!r}")
    return InvoiceOut.of(found)
