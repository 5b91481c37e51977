"""Suggestions: cheaper channels found for customers sent to on paper or by e-mail."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from nordflow_runtime.http import PathId, Pool
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.events import Channel
from pydantic import BaseModel

from ...domain.deliveries import Suggestion
from ...service import channels as service
from .common import AppDeps, token_name

router = APIRouter(prefix="/api/v1", tags=["channels"])


class SuggestionOut(BaseModel):
    """A cheaper channel found for a customer."""

    suggestion_id: int
    customer_key: str
    invoice_id: str
    current_channel: Channel
    suggested_channel: Channel
    recipient: str
    state: Literal["open", "dismissed", "accepted"]
    suggested_at: dt.datetime
    decided_at: dt.datetime | None

    @classmethod
    def of(cls, found: Suggestion) -> "SuggestionOut":
        """The API's view of a suggestion."""
        return cls(**vars(found))


@router.get("/suggestions")
async def list_suggestions(
    tenant: Tenant,
    deps: AppDeps,
    pool: Pool,
    state: Annotated[Literal["open", "dismissed", "accepted", "all"], Query()] = "open",
) -> list[SuggestionOut]:
    """Cheaper channels found for customers sent to on paper or by e-mail."""
    async with pool.acquire() as conn:
        found = await service.suggestions(deps.repositories(conn).suggestions, tenant, state)
    return [SuggestionOut.of(s) for s in found]


async def _decide(
    request: Request, deps: AppDeps, pool: Pool, tenant: str, suggestion_id: int, decision: str
) -> SuggestionOut:
    async with pool.acquire() as conn, conn.transaction():
        repos = deps.repositories(conn)
        try:
            decided = await service.decide_suggestion(
                repos,
                tenant,
                suggestion_id,
                decision,
                decided_by=await token_name(request, repos),
            )
        except service.SuggestionNotFoundError as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
        except service.SuggestionDecidedError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    deps.committed()  # wake the outbox relay
    return SuggestionOut.of(decided)


@router.post("/suggestions/{suggestion_id}/dismiss")
async def dismiss_suggestion(
    request: Request, suggestion_id: PathId, tenant: Tenant, deps: AppDeps, pool: Pool
) -> SuggestionOut:
    """Not now: the same channel is not suggested again for this customer for a while."""
    return await _decide(request, deps, pool, tenant, suggestion_id, "dismissed")


@router.post("/suggestions/{suggestion_id}/accept")
async def accept_suggestion(
    request: Request, suggestion_id: PathId, tenant: Tenant, deps: AppDeps, pool: Pool
) -> SuggestionOut:
    """Switch: the suggested channel becomes the customer's channel override."""
    return await _decide(request, deps, pool, tenant, suggestion_id, "accepted")
