"""Transfers: on-demand runs, batches (serial, files, receipts, invoices), resubmissions."""

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from nordflow_runtime.http import PathId, Pool
from nordflow_runtime.tenants import Tenant
from pydantic import BaseModel, Field

from ...adapters.repositories import PgBatchRepository
from ...service import transfers as service
from ...service.ports import Batch
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["transfers"])


class RunIn(BaseModel):
    """An on-demand run: one agreement, or every enabled one of the tenant."""

    agreement_id: str | None = None


class RunOut(BaseModel):
    """A scheduled run: the service's run worker makes its batches within a second or so."""

    agreement_id: str
    job_key: str


class FileOut(BaseModel):
    """One file of a batch and the provider's answer."""

    seq: int
    name: str
    media_type: str
    sha256: str
    state: str = Field(description="pending, received or refused")
    receipt: dict[str, Any]
    reason: str | None


class BatchInvoiceOut(BaseModel):
    """One invoice of a batch with its terms."""

    invoice_id: str
    number: str
    amount: Decimal
    currency: str
    fee: Decimal
    advance: Decimal | None
    payment_reference: str | None


class BatchOut(BaseModel):
    """A batch: one file serial of an agreement."""

    batch_id: str
    agreement_id: str
    serial: int
    kind: str
    trigger: str
    state: str = Field(description="recorded, transferred or refused")
    window_date: dt.date | None
    created_at: dt.datetime
    transferred_at: dt.datetime | None
    reason: str | None
    files: list[FileOut]
    invoices: list[BatchInvoiceOut]

    @classmethod
    def of(cls, b: Batch) -> "BatchOut":
        """The API view."""
        return cls(
            batch_id=b.batch_id,
            agreement_id=b.agreement_id,
            serial=b.serial,
            kind=b.kind.value,
            trigger=b.trigger.value,
            state=b.state.value,
            window_date=b.window_date,
            created_at=b.created_at,
            transferred_at=b.transferred_at,
            reason=b.reason,
            files=[
                FileOut(
                    seq=f.seq,
                    name=f.name,
                    media_type=f.media_type,
                    sha256=f.sha256,
                    state=f.state,
                    receipt=f.receipt,
                    reason=f.reason,
                )
                for f in b.files
            ],
            invoices=[BatchInvoiceOut(**i.__dict__) for i in b.invoices],
        )


@router.post("/transfers/runs", status_code=202, response_model=list[RunOut])
async def run_transfers(body: RunIn, tenant: Tenant, deps: AppDeps, pool: Pool) -> list[RunOut]:
    """Run the transfer now (outside the daily window): pending invoices and due-date
    changes become batches under the next serials, handed over by the upload job."""
    async with pool.acquire() as conn, conn.transaction():
        try:
            keys = await service.request_runs(
                deps.repositories(conn), tenant, body.agreement_id, deps.clock()
            )
        except service.NoAgreementError as exc:
            raise HTTPException(404, str(exc)) from None
    return [RunOut(agreement_id=a, job_key=k) for a, k in keys]


@router.get("/batches", response_model=list[BatchOut])
async def list_batches(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    agreement_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[BatchOut]:
    """The tenant's batches, newest first."""
    async with pool.acquire() as conn:
        found = await deps.repositories(conn).batches.listing(
            tenant, agreement_id=agreement_id, limit=max(1, min(limit, 500))
        )
    return [BatchOut.of(b) for b in found]


@router.get("/batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: str, tenant: Tenant, deps: AppDeps, pool: Pool) -> BatchOut:
    """One batch with its files' answers and its invoices."""
    async with pool.acquire() as conn:
        found = await deps.repositories(conn).batches.get(batch_id)
    if found is None or found.tenant_id != tenant:
        raise HTTPException(404, f"no batch {batch_id!r}")
    return BatchOut.of(found)


@router.get("/batches/{batch_id}/files/{seq}")
async def get_batch_file(batch_id: str, seq: PathId, tenant: Tenant, pool: Pool) -> Response:
    """The exact bytes handed to the provider."""
    async with pool.acquire() as conn:
        repo = PgBatchRepository(conn)
        found = await repo.get(batch_id)
        content = await repo.file_content(batch_id, seq) if found else None
    if found is None or found.tenant_id != tenant or content is None:
        raise HTTPException(404, f"no file {seq} in batch {batch_id!r}")
    name, media_type, data = content
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/batches/{batch_id}/resubmit", status_code=202, response_model=RunOut)
async def resubmit(batch_id: str, tenant: Tenant, deps: AppDeps, pool: Pool) -> RunOut:
    """A refused batch's invoices again, corrected, under the next serial."""
    async with pool.acquire() as conn, conn.transaction():
        repos = deps.repositories(conn)
        try:
            key = await service.request_resubmit(repos, tenant, batch_id, deps.clock())
        except service.NoSuchBatchError as exc:
            raise HTTPException(404, str(exc)) from None
        except service.NotResubmittableError as exc:
            raise HTTPException(409, str(exc)) from None
        found = await repos.batches.get(batch_id)
    assert found is not None
    return RunOut(agreement_id=found.agreement_id, job_key=key)
