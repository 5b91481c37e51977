"""Agreements: create or replace, list, show; the file formats an agreement can name."""

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant

from ...domain.agreements import InvalidAgreementError
from ...service import agreements as service
from ..agreement_schema import AgreementIn, AgreementOut
from .common import AppDeps, invalid

router = APIRouter(prefix="/api/v1", tags=["agreements"])


@router.put(
    "/agreements/{agreement_id}",
    response_model=AgreementOut,
    responses={422: {"description": "Invalid: every bad field named in `errors`"}},
)
async def put_agreement(
    agreement_id: str, body: AgreementIn, tenant: Tenant, deps: AppDeps, pool: Pool
) -> Response | AgreementOut:
    """Create or replace an agreement; the next window is scheduled under its terms."""
    try:
        agreement, secret = body.to_domain(tenant, agreement_id)
        async with pool.acquire() as conn, conn.transaction():
            stored = await service.set_agreement(
                deps.repositories(conn),
                deps.formats,
                deps.sealer,
                agreement,
                secret,
                deps.clock(),
            )
    except InvalidAgreementError as exc:
        return invalid(exc)
    except service.AgreementOfAnotherTenantError as exc:
        raise HTTPException(409, str(exc)) from None
    return AgreementOut.of(stored)


@router.get("/agreements", response_model=list[AgreementOut])
async def list_agreements(tenant: Tenant, deps: AppDeps, pool: Pool) -> list[AgreementOut]:
    """The tenant's agreements, oldest first (the order eligibility tries them in)."""
    async with pool.acquire() as conn:
        stored = await deps.repositories(conn).agreements.of_tenant(tenant)
    return [AgreementOut.of(s) for s in stored]


@router.get("/agreements/{agreement_id}", response_model=AgreementOut)
async def get_agreement(
    agreement_id: str, tenant: Tenant, deps: AppDeps, pool: Pool
) -> AgreementOut:
    """One agreement."""
    async with pool.acquire() as conn:
        try:
            stored = await service.agreement(deps.repositories(conn), tenant, agreement_id)
        except service.AgreementOfAnotherTenantError:
            raise HTTPException(404, f"no agreement {agreement_id!r}") from None
    return AgreementOut.of(stored)


@router.get("/formats")
async def formats(deps: AppDeps) -> JSONResponse:
    """The file formats an agreement can name."""
    listed = [
        {"format_id": f, "max_invoices": deps.formats.get(f).max_invoices} for f in deps.formats
    ]
    return JSONResponse({"formats": listed})
