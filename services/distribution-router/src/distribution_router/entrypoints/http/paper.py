"""Paper options: the tenant's postage class, colour and duplex for letters."""

import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from nordflow_runtime.http import Pool
from nordflow_runtime.tenants import Tenant
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from ...adapters.channels.print_post import POSTAGE_NAMES
from ...domain.documents import PaperDefaults, PaperOptions, Postage
from ...service import paper as service
from .common import AppDeps

router = APIRouter(prefix="/api/v1", tags=["channels"])


class PaperOptionsIn(BaseModel):
    """The tenant's paper options; an omitted or null one is the service's default."""

    model_config = ConfigDict(extra="forbid")

    postage: Postage | None = Field(
        default=None, description="A (priority) or B (economy); also 'priority'/'economy'"
    )
    colour: StrictBool | None = Field(
        default=None, description="Print in colour (true) or black and white (false); or `color`"
    )
    duplex: StrictBool | None = Field(default=None, description="Print on both sides")

    @model_validator(mode="before")
    @classmethod
    def _color(cls, data: Any) -> Any:
        """`color` is accepted for `colour` (not both)."""
        if isinstance(data, dict) and "color" in data and "colour" not in data:
            data = {("colour" if k == "color" else k): v for k, v in data.items()}
        return data

    @field_validator("postage", mode="before")
    @classmethod
    def _postage(cls, value: Any) -> Any:
        """`A`/`priority` or `B`/`economy`, any case; anything else is refused by name."""
        if value is None:
            return None
        found = POSTAGE_NAMES.get(value.strip().lower()) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"postage must be A (priority) or B (economy), not {value!r}")
        return found


class PaperDefaultsOut(BaseModel):
    """The service's paper settings (PRINT_POST_POSTAGE, _COLOUR, _DUPLEX)."""

    postage: Postage
    colour: bool
    duplex: bool


class PaperOptionsOut(BaseModel):
    """The tenant's paper options; null = the service's default (PRINT_POST_* settings)."""

    postage: Postage | None
    colour: bool | None
    duplex: bool | None
    updated_at: dt.datetime | None = Field(description="null: the tenant never set any")
    effective: PaperDefaultsOut | None = Field(
        default=None, description="What letters use now: the tenant's values, else the defaults"
    )

    @classmethod
    def of(cls, options: PaperOptions, defaults: PaperDefaults | None) -> "PaperOptionsOut":
        """The options and, when the service's defaults are known, what applies."""
        effective = None if defaults is None else options.effective(defaults)
        return cls(
            postage=options.postage,
            colour=options.colour,
            duplex=options.duplex,
            updated_at=options.updated_at,
            effective=None if effective is None else PaperDefaultsOut(**vars(effective)),
        )


@router.get("/paper-options")
async def get_paper_options(tenant: Tenant, deps: AppDeps, pool: Pool) -> PaperOptionsOut:
    """The tenant's postage class, colour and duplex for letters (null: the default)."""
    async with pool.acquire() as conn:
        options = await service.paper_options(deps.repositories(conn).paper, tenant)
    return PaperOptionsOut.of(options, deps.paper_defaults)


@router.put("/paper-options")
async def put_paper_options(
    body: PaperOptionsIn, tenant: Tenant, deps: AppDeps, pool: Pool
) -> PaperOptionsOut:
    """Replace the tenant's paper options; they apply to letters sent from now on."""
    async with pool.acquire() as conn:
        saved = await service.set_paper_options(
            deps.repositories(conn).paper,
            tenant,
            PaperOptions(postage=body.postage, colour=body.colour, duplex=body.duplex),
        )
    return PaperOptionsOut.of(saved, deps.paper_defaults)


@router.delete("/paper-options", status_code=status.HTTP_204_NO_CONTENT)
async def delete_paper_options(tenant: Tenant, deps: AppDeps, pool: Pool) -> Response:
    """Back to the service's defaults; 404 when the tenant set none."""
    async with pool.acquire() as conn:
        try:
            await service.delete_paper_options(deps.repositories(conn).paper, tenant)
        except service.NoPaperOptionsError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)
