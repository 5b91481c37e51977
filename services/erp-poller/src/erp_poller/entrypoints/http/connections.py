"""The tenant API of connections: add, list, remove, switch modes, sync and backfill requests.

No `from __future__ import annotations` here: FastAPI reads the routes' real annotations.
"""

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Response, status
from nordflow_runtime.http import PathId, request_deps
from nordflow_runtime.tenants import Tenant
from nordflow_schemas.common import Code, ConnectionMode, SaneTimestamp, SourceSystem
from nordflow_schemas.events import Flow
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    UrlConstraints,
)

from ...deps import Deps
from ...domain.connections import (
    ConnectionBusyError,
    ConnectionInUseError,
    ConnectionState,
    ConnectionTakenError,
    InvalidInputError,
    NotFoundError,
)
from ...domain.credentials import CredentialsError
from ...domain.profiles import SET_THE_PROFILE
from ...service import connections
from ...service.ports import Repositories

router = APIRouter(prefix="/api/v1", tags=["connections"])
P = ParamSpec("P")
T = TypeVar("T")
AppDeps = Annotated[Deps, Depends(request_deps)]


class FlowIn(BaseModel):
    """What happens to the connection's documents: any combination of booking into another
    connection of the tenant, factoring and distribution; all off records them only."""

    model_config = ConfigDict(extra="forbid")

    book_into: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Another connection of the tenant (Fortnox, Visma eAccounting, Visma.net "
        "or Tripletex) that ledger-closer books the documents into; null: booked nowhere",
    )
    factor: bool = Field(default=True, description="Decided under the tenant's agreements")
    distribute: bool = Field(default=True, description="Sent to the buyer by distribution")

    def flow(self) -> Flow:
        """The contract's value."""
        return Flow(book_into=self.book_into, factor=self.factor, distribute=self.distribute)


class ConnectionIn(BaseModel):
    """A new or replaced connection; the ERP token is write-only. The seller is the tenant's
    profile's (``PUT /api/v1/profile``), not the connection's."""

    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    system: SourceSystem
    base_url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)]
    token: SecretStr | None = Field(
        default=None,
        max_length=20_000,
        description=(
            "Fortnox: the access token or its OAuth credentials as JSON text; Winner / "
            "on-premise: the push signing secret; other systems: their credentials as a JSON "
            "text. Give this or `credentials`. Stored encrypted, never shown"
        ),
    )
    credentials: (
        dict[Annotated[str, Field(max_length=64)], Annotated[SecretStr, Field(max_length=10_000)]]
        | None
    ) = Field(
        default=None,
        max_length=20,
        description=(
            "The source system's credentials by key (write-only, stored encrypted): "
            "visma-eaccounting client_id, client_secret, refresh_token, token_url; visma-net "
            "token, company_id[, api_timezone] or client_id, client_secret, tenant_id, "
            "company_id[, token_url, scope, api_timezone]; sirvoy api_token, webhook_secret; "
            "fortnox access_token, or client_id, client_secret, refresh_token[, token_url] "
            "(an OAuth grant of erp-poller's own); winner / on-premise signing_secret"
        ),
    )
    mode: ConnectionMode = ConnectionMode.TEST
    cutoff_at: SaneTimestamp | None = Field(
        default=None, description="Documents last modified before this are not fetched"
    )
    poll_interval_seconds: int | None = Field(
        default=None,
        ge=60,
        le=86400,
        description="This connection's schedule: seconds between polls (test and automatic "
        "mode); unset: the service's POLL_INTERVAL_SECONDS",
    )
    flow: FlowIn = Field(
        default_factory=FlowIn,
        description="What happens to its documents; unset: factored and distributed, booked "
        "nowhere",
    )


class FlowOut(BaseModel):
    """A connection's flow."""

    model_config = ConfigDict(from_attributes=True)

    book_into: str | None
    factor: bool
    distribute: bool


class ConnectionOut(BaseModel):
    """A connection and its polling state."""

    model_config = ConfigDict(from_attributes=True)

    connection_id: str
    system: str
    base_url: str
    mode: str
    cutoff_at: dt.datetime
    cursor_at: dt.datetime | None
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None = Field(
        default=None, description="When a poll last ended without an error"
    )
    last_error: str | None
    next_poll_at: dt.datetime
    poll_interval_seconds: int | None = None
    flow: FlowOut
    waiting_for: str | None = Field(
        default=None,
        description="What must happen before this connection's documents flow (the tenant "
        "has no profile yet); null when nothing",
    )

    @classmethod
    def of(cls, state: ConnectionState) -> "ConnectionOut":
        """The API view of a connection."""
        waiting_for = None if state.tenant_has_profile else SET_THE_PROFILE
        return cls.model_validate(state).model_copy(update={"waiting_for": waiting_for})


class ModeIn(BaseModel):
    """Switch between test, manual and automatic."""

    model_config = ConfigDict(extra="forbid")

    mode: ConnectionMode


class SyncIn(BaseModel):
    """Sync the next ``limit`` new or changed documents, or the named ones."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1, le=1000)
    documents: list[Code] = Field(default_factory=list, max_length=1000)


class SyncOut(BaseModel):
    """A sync request and, once done, its outcome."""

    model_config = ConfigDict(from_attributes=True)

    request_id: int
    connection_id: str
    limit: int | None
    documents: list[str]
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    emitted: int | None
    error: str | None


class BackfillIn(BaseModel):
    """Re-read every document modified since an instant."""

    model_config = ConfigDict(extra="forbid")

    since: SaneTimestamp = Field(description="Documents modified at or after this are re-read")


class BackfillOut(BaseModel):
    """A backfill request and its progress."""

    model_config = ConfigDict(from_attributes=True)

    request_id: int
    connection_id: str
    since: dt.datetime
    requested_at: dt.datetime
    started_at: dt.datetime | None
    attempts: int
    listed: int = Field(description="Documents listed by the running (or last) attempt")
    emitted: int = Field(description="New or changed versions emitted, over all attempts")
    finished_at: dt.datetime | None
    done: bool = Field(description="Finished without error")
    error: str | None = Field(description="The last attempt's error (retried up to 3 times)")


def _unprocessable(loc: list[str], message: str) -> HTTPException:
    return HTTPException(422, [{"loc": loc, "msg": message, "type": "value_error"}])


@contextmanager
def _answers() -> Iterator[None]:
    """The use cases' refusals as HTTP answers."""
    try:
        yield
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except (ConnectionTakenError, ConnectionBusyError, ConnectionInUseError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except InvalidInputError as exc:
        raise _unprocessable(["body", *exc.field.split(".")], exc.message) from None
    except CredentialsError as exc:
        loc = ["body", "credentials", exc.key] if exc.key else ["body", "credentials"]
        raise _unprocessable(loc, str(exc)) from None


async def _run(
    deps: Deps,
    case: Callable[Concatenate[Repositories, P], Awaitable[T]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """A use case on one transaction, its refusals as HTTP answers."""
    with _answers():
        async with deps.uow.transaction() as repos:
            return await case(repos, *args, **kwargs)


@router.get("/connections")
async def list_connections(tenant: Tenant, deps: AppDeps) -> list[ConnectionOut]:
    """The tenant's connections."""
    states = await _run(deps, connections.connection_states, tenant)
    return [ConnectionOut.of(s) for s in states]


@router.put("/connections/{connection_id}", status_code=status.HTTP_200_OK)
async def put_connection(
    connection_id: str, body: ConnectionIn, tenant: Tenant, deps: AppDeps
) -> ConnectionOut:
    """Create or replace a connection (its cursor is kept). Until the tenant has a profile,
    nothing of it flows (``waiting_for`` says so)."""
    if body.connection_id != connection_id:
        raise HTTPException(422, "connection_id in the path and body differ")
    credentials = None
    if body.credentials is not None:
        credentials = {k: v.get_secret_value() for k, v in body.credentials.items()}
    state = await _run(
        deps,
        connections.save_connection,
        deps.box,
        tenant,
        connection_id=connection_id,
        system=body.system,
        base_url=str(body.base_url),
        credentials=credentials,
        token=None if body.token is None else body.token.get_secret_value(),
        mode=body.mode,
        cutoff_at=body.cutoff_at,
        poll_interval_seconds=body.poll_interval_seconds,
        allow_internal_urls=deps.allow_internal_urls,
        now=deps.clock(),
        flow=body.flow.flow(),
    )
    deps.wake()
    return ConnectionOut.of(state)


@router.get("/connections/{connection_id}")
async def get_connection(connection_id: str, tenant: Tenant, deps: AppDeps) -> ConnectionOut:
    """One connection."""
    return ConnectionOut.of(await _run(deps, connections.connection_state, tenant, connection_id))


@router.delete("/connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_connection(connection_id: str, tenant: Tenant, deps: AppDeps) -> Response:
    """Remove a connection: nothing of it is polled, synced or taken any more (its pending
    requests end). Adding it again brings it back with its cursor. 409 while another
    connection books into it, or a poll of it runs."""
    await _run(deps, connections.remove_connection, tenant, connection_id, deps.clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/connections/{connection_id}")
async def set_mode(
    connection_id: str, body: ModeIn, tenant: Tenant, deps: AppDeps
) -> ConnectionOut:
    """Switch the mode: test (nothing written downstream), manual (on request), automatic.

    Switching to automatic lets pushed documents held back in manual mode flow at once.
    """
    changed = await _run(deps, connections.set_mode, tenant, connection_id, body.mode, deps.clock())
    deps.wake()
    return ConnectionOut.of(changed.state)


@router.post("/connections/{connection_id}/sync", status_code=status.HTTP_202_ACCEPTED)
async def sync(connection_id: str, body: SyncIn, tenant: Tenant, deps: AppDeps) -> SyncOut:
    """Ask for the next ``limit`` documents or the named ones (any mode)."""
    request = await _run(
        deps, connections.request_sync, tenant, connection_id, body.limit, body.documents
    )
    deps.wake()
    return SyncOut.model_validate(request)


@router.get("/connections/{connection_id}/sync/{request_id}")
async def sync_status(
    connection_id: str, request_id: PathId, tenant: Tenant, deps: AppDeps
) -> SyncOut:
    """Where a sync request stands."""
    found = await _run(deps, connections.sync_request, tenant, connection_id, request_id)
    return SyncOut.model_validate(found)


@router.post("/connections/{connection_id}/backfill", status_code=status.HTTP_202_ACCEPTED)
async def backfill(
    connection_id: str, body: BackfillIn, tenant: Tenant, deps: AppDeps
) -> BackfillOut:
    """Re-read everything modified since ``since``; changed or unseen versions flow."""
    request = await _run(deps, connections.request_backfill, tenant, connection_id, body.since)
    deps.wake()
    return BackfillOut.model_validate(request)


@router.get("/connections/{connection_id}/backfill/{request_id}")
async def backfill_status(
    connection_id: str, request_id: PathId, tenant: Tenant, deps: AppDeps
) -> BackfillOut:
    """Where a backfill stands: listed and emitted so far, done or error."""
    found = await _run(deps, connections.backfill_request, tenant, connection_id, request_id)
    return BackfillOut.model_validate(found)
