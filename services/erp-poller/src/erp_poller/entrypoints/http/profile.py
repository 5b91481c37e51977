"""The tenant's profile (legal name, country, time zone, locale, accounting currency, the
seller party and bank accounts), which erp-poller owns and publishes on ``tenant.updated``.

No `from __future__ import annotations` here: FastAPI reads the routes' real annotations.
"""

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from nordflow_runtime.http import request_deps
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.tenant import TenantProfile
from pydantic import BaseModel, Field

from ...deps import Deps
from ...domain.connections import InvalidInputError
from ...domain.profiles import SET_THE_PROFILE, StoredProfile
from ...service import profiles

router = APIRouter(prefix="/api/v1", tags=["profile"])
AppDeps = Annotated[Deps, Depends(request_deps)]


class ProfileOut(BaseModel):
    """The tenant's profile and its revision (every change is a new one)."""

    tenant_id: str
    revision: int = Field(description="Grows with every change (as on tenant.updated)")
    updated_at: dt.datetime
    profile: TenantProfile

    @classmethod
    def of(cls, stored: StoredProfile) -> "ProfileOut":
        """The API view of a stored profile."""
        return cls(
            tenant_id=stored.tenant_id,
            revision=stored.revision,
            updated_at=stored.updated_at,
            profile=stored.profile,
        )


@router.put(
    "/profile",
    responses={422: {"description": "The profile is invalid: `detail` names each field"}},
)
async def put_profile(profile: TenantProfile, tenant: Tenant, deps: AppDeps) -> ProfileOut:
    """Create or replace the tenant's profile.

    A change is a new revision, published on ``tenant.updated`` (every service keeps its copy
    from there), and lets pushes that waited for a profile flow; every document fetched from
    then on carries it under ``related["tenant"]``. The same profile again changes nothing.
    """
    try:
        async with deps.uow.transaction() as repos:
            stored, _ = await profiles.set_profile(repos, tenant, profile, deps.clock())
    except InvalidInputError as exc:
        raise HTTPException(422, str(exc)) from None
    deps.wake()
    return ProfileOut.of(stored)


@router.get("/profile", responses={404: {"description": "The tenant has no profile yet"}})
async def get_profile(tenant: Tenant, deps: AppDeps) -> ProfileOut:
    """The tenant's profile."""
    async with deps.uow.transaction() as repos:
        stored = await profiles.stored_profile(repos, tenant)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no profile: {SET_THE_PROFILE}")
    return ProfileOut.of(stored)
