"""Settlements back from the providers: matched payments and the lines left for an operator."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant
from pydantic import BaseModel

from ...service import transfers as service
from .common import AppDeps
from .transfers import RunIn, RunOut

router = APIRouter(prefix="/api/v1", tags=["settlements"])


class SettlementLineOut(BaseModel):
    """One line of a provider's settlement file."""

    agreement_id: str
    file_name: str
    line_no: int
    state: Literal["matched", "unmatched"]
    invoice_id: str | None
    reference: str | None
    invoice_number: str | None
    paid_on: dt.date
    currency: str
    amount: Decimal
    fee: Decimal
    payer: str
    recorded_at: dt.datetime | None


@router.get("/settlements", response_model=list[SettlementLineOut])
async def list_settlements(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    state: Literal["matched", "unmatched"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[SettlementLineOut]:
    """Settlement lines, newest first; ``state=unmatched`` is the operator's list."""
    async with pool.acquire() as conn:
        found = await deps.repositories(conn).settlements.listing(
            tenant, state=state, limit=max(1, min(limit, 1000))
        )
    return [
        SettlementLineOut(
            agreement_id=r.agreement_id,
            file_name=r.file_name,
            line_no=r.line.line_no,
            state="matched" if r.state == "matched" else "unmatched",
            invoice_id=r.invoice_id,
            reference=r.line.reference,
            invoice_number=r.line.invoice_number,
            paid_on=r.line.paid_on,
            currency=r.line.currency,
            amount=r.line.amount,
            fee=r.line.fee,
            payer=r.line.payer,
            recorded_at=r.recorded_at,
        )
        for r in found
    ]


@router.post("/settlements/fetches", status_code=202, response_model=list[RunOut])
async def fetch_settlements(body: RunIn, tenant: Tenant, deps: AppDeps, pool: Pool) -> list[RunOut]:
    """Read the providers' settlement files now (besides the periodic reads)."""
    async with pool.acquire() as conn, conn.transaction():
        try:
            keys = await service.request_settlements(
                deps.repositories(conn), tenant, body.agreement_id, deps.clock()
            )
        except service.NoAgreementError as exc:
            raise HTTPException(404, str(exc)) from None
    return [RunOut(agreement_id=a, job_key=k) for a, k in keys]
