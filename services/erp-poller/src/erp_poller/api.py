"""The tenant API: connections, their modes and sync requests (token-authenticated).

No `from __future__ import annotations` here: FastAPI must see the real types of the
routes' parameters, including the local `Tenant` dependency alias.
"""

import datetime as dt
from collections.abc import Callable
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Request, status
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.common import ConnectionMode, SourceSystem
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from .repository import PgConnectionRepository, PgTenantRepository

PoolProvider = Callable[[], asyncpg.Pool]


class Seller(BaseModel):
    """The tenant's company as it appears on its invoices."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    organisation_number: str | None = None
    vat_number: str | None = None
    address1: str | None = None
    zip_code: str | None = None
    city: str | None = None
    country_code: str = Field(default="SE", pattern=r"^[A-Z]{2}$")
    bankgiro: str | None = None
    email: str | None = None


class ConnectionIn(BaseModel):
    """A new or replaced connection; the ERP token is write-only."""

    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    system: SourceSystem
    base_url: AnyHttpUrl
    token: SecretStr = Field(description="The ERP API token; stored encrypted, never shown")
    mode: ConnectionMode = ConnectionMode.TEST
    seller: Seller
    cutoff_at: AwareDatetime | None = Field(
        default=None, description="Documents last modified before this are not fetched"
    )


class ConnectionOut(BaseModel):
    """A connection and its polling state."""

    connection_id: str
    system: str
    base_url: str
    mode: str
    cutoff_at: dt.datetime
    cursor_at: dt.datetime | None
    last_poll_at: dt.datetime | None
    last_error: str | None
    next_poll_at: dt.datetime


class ModeIn(BaseModel):
    """Switch between test, manual and automatic."""

    model_config = ConfigDict(extra="forbid")

    mode: ConnectionMode


class SyncIn(BaseModel):
    """Sync the next ``limit`` new or changed documents, or the named ones."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(default=None, ge=1, le=1000)
    documents: list[str] = Field(default_factory=list, max_length=1000)


class SyncOut(BaseModel):
    """A sync request and, once done, its outcome."""

    request_id: int
    connection_id: str
    limit: int | None
    documents: list[str]
    requested_at: dt.datetime
    finished_at: dt.datetime | None
    emitted: int | None
    error: str | None


def _sync_out(row: asyncpg.Record) -> SyncOut:
    return SyncOut(
        request_id=row["request_id"],
        connection_id=row["connection_id"],
        limit=row["limit_count"],
        documents=list(row["document_ids"]),
        requested_at=row["requested_at"],
        finished_at=row["finished_at"],
        emitted=row["emitted"],
        error=row["error"],
    )


def build_api(pool: PoolProvider, box: SecretBox, wake: Callable[[], None]) -> APIRouter:
    """The /api/v1 routes; ``pool`` is asked at request time (the service starts it later)."""
    router = APIRouter(prefix="/api/v1", tags=["connections"])

    async def tenant(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send `Authorization: Bearer <API token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = await PgTenantRepository(pool()).tenant_for(token.strip())
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API token")
        return found

    Tenant = Annotated[str, Depends(tenant)]  # noqa: N806 - a type alias

    async def own_connection(tenant_id: str, connection_id: str) -> asyncpg.Record:
        row = await PgTenantRepository(pool()).connection(tenant_id, connection_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {connection_id!r}")
        return row

    @router.get("/connections")
    async def list_connections(tenant_id: Tenant) -> list[ConnectionOut]:
        """The tenant's connections."""
        rows = await PgConnectionRepository(pool()).list(tenant_id)
        return [ConnectionOut.model_validate(dict(r)) for r in rows]

    @router.put("/connections/{connection_id}", status_code=status.HTTP_200_OK)
    async def put_connection(
        connection_id: str, body: ConnectionIn, tenant_id: Tenant
    ) -> ConnectionOut:
        """Create or replace a connection (its cursor is kept)."""
        if body.connection_id != connection_id:
            raise HTTPException(422, "connection_id in the path and body differ")
        try:
            await PgConnectionRepository(pool()).add(
                connection_id=connection_id,
                tenant_id=tenant_id,
                system=body.system,
                base_url=str(body.base_url).rstrip("/"),
                token_sealed=box.seal(body.token.get_secret_value()),
                mode=body.mode,
                seller=body.seller.model_dump(exclude_none=True),
                cutoff_at=body.cutoff_at or dt.datetime.now(dt.UTC),
            )
        except PermissionError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        wake()
        return ConnectionOut.model_validate(dict(await own_connection(tenant_id, connection_id)))

    @router.get("/connections/{connection_id}")
    async def get_connection(connection_id: str, tenant_id: Tenant) -> ConnectionOut:
        """One connection."""
        return ConnectionOut.model_validate(dict(await own_connection(tenant_id, connection_id)))

    @router.patch("/connections/{connection_id}")
    async def set_mode(connection_id: str, body: ModeIn, tenant_id: Tenant) -> ConnectionOut:
        """Switch the mode: test (nothing written downstream), manual (on request), automatic."""
        if not await PgTenantRepository(pool()).set_mode(tenant_id, connection_id, body.mode):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {connection_id!r}")
        wake()
        return ConnectionOut.model_validate(dict(await own_connection(tenant_id, connection_id)))

    @router.post("/connections/{connection_id}/sync", status_code=status.HTTP_202_ACCEPTED)
    async def sync(connection_id: str, body: SyncIn, tenant_id: Tenant) -> SyncOut:
        """Ask for the next ``limit`` documents or the named ones (any mode)."""
        if body.limit is None and not body.documents:
            raise HTTPException(422, "give `limit` or `documents`")
        await own_connection(tenant_id, connection_id)
        repo = PgTenantRepository(pool())
        request_id = await repo.request_sync(tenant_id, connection_id, body.limit, body.documents)
        wake()
        row = await repo.sync_request(tenant_id, request_id)
        assert row is not None
        return _sync_out(row)

    @router.get("/connections/{connection_id}/sync/{request_id}")
    async def sync_status(connection_id: str, request_id: int, tenant_id: Tenant) -> SyncOut:
        """Where a sync request stands."""
        row = await PgTenantRepository(pool()).sync_request(tenant_id, request_id)
        if row is None or row["connection_id"] != connection_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sync request {request_id}")
        return _sync_out(row)

    return router
