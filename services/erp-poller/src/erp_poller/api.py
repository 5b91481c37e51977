"""The tenant API: connections, modes, sync and backfill requests (token-authenticated).

No `from __future__ import annotations` here: FastAPI must see the real types of the
routes' parameters, including the local `Tenant` dependency alias.
"""

import datetime as dt
import ipaddress
import json
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, status
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.tenants import bearer_tenant
from nordflow_schemas.common import ConnectionMode, SourceSystem
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from .domain import PLAIN_KEYS, CredentialsError, seal_form
from .ingest import release_pending
from .repository import ConnectionBusyError, PgConnectionRepository, PgTenantRepository

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
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="Default currency (eAccounting)"
    )


class ConnectionIn(BaseModel):
    """A new or replaced connection; the ERP token is write-only."""

    model_config = ConfigDict(extra="forbid")

    connection_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    system: SourceSystem
    base_url: AnyHttpUrl
    token: SecretStr | None = Field(
        default=None,
        description=(
            "Fortnox: the access token or its OAuth credentials as JSON text; Winner / "
            "on-premise: the push signing secret; other systems: their credentials as a JSON "
            "text. Give this or `credentials`. Stored encrypted, never shown"
        ),
    )
    credentials: dict[str, SecretStr] | None = Field(
        default=None,
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
    seller: Seller
    cutoff_at: AwareDatetime | None = Field(
        default=None, description="Documents last modified before this are not fetched"
    )
    poll_interval_seconds: int | None = Field(
        default=None,
        ge=60,
        le=86400,
        description="This connection's schedule: seconds between polls (test and automatic "
        "mode); unset: the service's POLL_INTERVAL_SECONDS",
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
    poll_interval_seconds: int | None = None


def sealed_text(body: ConnectionIn) -> str:
    """The text to seal for a connection, its credentials checked for the system.

    Raises HTTP 422 naming the missing or bad key (``loc`` = ``body.credentials.<key>``).
    """
    if (body.token is None) == (body.credentials is None):
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "credentials"],
                    "msg": "give `credentials` or `token`, not both",
                    "type": "value_error",
                }
            ],
        )
    fields: dict[str, str]
    if body.credentials is not None:
        fields = {k: v.get_secret_value() for k, v in body.credentials.items()}
    else:
        assert body.token is not None
        fields = credential_fields_of(body.system, body.token.get_secret_value())
    try:
        return seal_form(body.system, fields)
    except CredentialsError as exc:
        loc = ["body", "credentials", exc.key] if exc.key else ["body", "credentials"]
        raise HTTPException(422, [{"loc": loc, "msg": str(exc), "type": "value_error"}]) from None


def credential_fields_of(system: SourceSystem, token: str) -> dict[str, str]:
    """The fields behind a `token` text: the token itself for plain-token systems, else the
    JSON object it holds (422 if it is none)."""
    if system in PLAIN_KEYS:
        return {PLAIN_KEYS[system]: token}
    try:
        document = json.loads(token)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise HTTPException(
            422,
            [
                {
                    "loc": ["body", "token"],
                    "type": "value_error",
                    "msg": f"{system.value}: `token` must hold the credentials as a JSON object "
                    "(or send them as `credentials`)",
                }
            ],
        )
    return {str(k): v for k, v in document.items()}


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


class BackfillIn(BaseModel):
    """Re-read every document modified since an instant."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Documents modified at or after this are re-read")


class BackfillOut(BaseModel):
    """A backfill request and its progress."""

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


def backfill_out(row: asyncpg.Record) -> BackfillOut:
    """The API view of a backfill request row."""
    return BackfillOut(
        request_id=row["request_id"],
        connection_id=row["connection_id"],
        since=row["since"],
        requested_at=row["requested_at"],
        started_at=row["started_at"],
        attempts=row["attempts"],
        listed=row["listed"],
        emitted=row["emitted"],
        finished_at=row["finished_at"],
        done=row["finished_at"] is not None and row["error"] is None,
        error=row["error"],
    )


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


def internal_host(url: str) -> bool:
    """Whether a URL names this machine or a private network by literal address or name: a
    tenant must not make the poller call into the cluster (its errors come back to them)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".svc")):
        return True
    if "." not in host and ":" not in host:
        return True  # a bare name resolves inside the cluster
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def build_api(
    pool: PoolProvider,
    box: SecretBox,
    wake: Callable[[], None],
    *,
    allow_internal_urls: bool = False,
) -> APIRouter:
    """The /api/v1 routes; ``pool`` is asked at request time (the service starts it later).

    ``allow_internal_urls`` lets connections point at loopback or private addresses (the
    local stack's sandboxes); production keeps it off.
    """
    router = APIRouter(prefix="/api/v1", tags=["connections"])

    Tenant = Annotated[str, Depends(bearer_tenant(pool))]  # noqa: N806 - a type alias

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
        if not allow_internal_urls and internal_host(str(body.base_url)):
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", "base_url"],
                        "msg": "must be the source system's public address, not a loopback, "
                        "private or cluster-internal one",
                    }
                ],
            )
        try:
            await PgConnectionRepository(pool()).add(
                connection_id=connection_id,
                tenant_id=tenant_id,
                system=body.system,
                base_url=str(body.base_url).rstrip("/"),
                token_sealed=box.seal(sealed_text(body)),
                mode=body.mode,
                seller=body.seller.model_dump(exclude_none=True),
                cutoff_at=body.cutoff_at or dt.datetime.now(dt.UTC),
                poll_interval_seconds=body.poll_interval_seconds,
            )
        except (PermissionError, ConnectionBusyError) as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        wake()
        return ConnectionOut.model_validate(dict(await own_connection(tenant_id, connection_id)))

    @router.get("/connections/{connection_id}")
    async def get_connection(connection_id: str, tenant_id: Tenant) -> ConnectionOut:
        """One connection."""
        return ConnectionOut.model_validate(dict(await own_connection(tenant_id, connection_id)))

    @router.patch("/connections/{connection_id}")
    async def set_mode(connection_id: str, body: ModeIn, tenant_id: Tenant) -> ConnectionOut:
        """Switch the mode: test (nothing written downstream), manual (on request), automatic.

        Switching to automatic lets pushed documents held back in manual mode flow at once.
        """
        repo = PgTenantRepository(pool())
        try:
            found = await repo.set_mode(tenant_id, connection_id, body.mode)
        except ConnectionBusyError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no connection {connection_id!r}")
        if body.mode is ConnectionMode.AUTOMATIC:
            connection = await repo.configured(tenant_id, connection_id)
            if connection is not None:
                await release_pending(pool(), connection, limit=None, documents=(), committed=wake)
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

    @router.post("/connections/{connection_id}/backfill", status_code=status.HTTP_202_ACCEPTED)
    async def backfill(connection_id: str, body: BackfillIn, tenant_id: Tenant) -> BackfillOut:
        """Re-read everything modified since ``since``; changed or unseen versions flow."""
        await own_connection(tenant_id, connection_id)
        repo = PgTenantRepository(pool())
        request_id = await repo.request_backfill(tenant_id, connection_id, body.since)
        wake()
        row = await repo.backfill_request(tenant_id, request_id)
        assert row is not None
        return backfill_out(row)

    @router.get("/connections/{connection_id}/backfill/{request_id}")
    async def backfill_status(
        connection_id: str, request_id: int, tenant_id: Tenant
    ) -> BackfillOut:
        """Where a backfill stands: listed and emitted so far, done or error."""
        row = await PgTenantRepository(pool()).backfill_request(tenant_id, request_id)
        if row is None or row["connection_id"] != connection_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no backfill request {request_id}")
        return backfill_out(row)

    return router
