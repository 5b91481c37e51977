"""Tenant API tokens, shared by every service that serves a tenant API: one model for the API,
the command line and every service.

A token is ``nf_<random>``; only its SHA-256 is stored, in the service's own ``api_tokens``
table (the service's migration creates it; the runtime's ``api-tokens`` migrations add the
shared columns). Each token has

- an id (the first 16 hex digits of its hash: listed and revoked by it, never secret),
- a tenant (or none: an operator's, which only the control panel issues),
- a scope: ``read`` (GET and HEAD only) or ``operate`` (everything),
- an expiry (default a year, at most two), and may be revoked at once.

``Tenant`` (a FastAPI dependency) answers 401 for a missing, unknown, revoked or expired
token and 403 when a ``read`` token asks to change something. ``tokens_router`` serves
``/api/v1/tokens`` (list, create, revoke the tenant's own); ``<service> tokens
create|list|revoke`` does the same from the command line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypeAlias

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from nordflow_schemas.common import Name
from pydantic import BaseModel, ConfigDict, Field

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection

DEFAULT_LIFETIME = dt.timedelta(days=365)
MAX_LIFETIME = dt.timedelta(days=730)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_ID_LENGTH = 16


class Scope(StrEnum):
    """What a token may do: read (GET only), or operate (read and change)."""

    READ = "read"
    OPERATE = "operate"


@dataclass(frozen=True)
class TokenInfo:
    """A token as it is listed (never the token itself)."""

    token_id: str
    tenant_id: str | None
    operator: bool
    name: str
    scope: Scope
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None

    def active(self, now: dt.datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True)
class Principal:
    """Who a valid token acts for."""

    token_id: str
    tenant_id: str | None
    operator: bool
    name: str
    scope: Scope
    expires_at: dt.datetime

    def may(self, method: str) -> bool:
        """Whether the token's scope allows an HTTP method."""
        return self.scope is Scope.OPERATE or method.upper() in SAFE_METHODS


def token_hash(token: str) -> str:
    """What is stored of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token_hash_: str) -> str:
    """A token's public id: the start of its hash."""
    return token_hash_[:TOKEN_ID_LENGTH]


def utc_now() -> dt.datetime:
    """Now, aware."""
    return dt.datetime.now(dt.UTC)


def check_lifetime(expires_in: dt.timedelta) -> dt.timedelta:
    """A token's lifetime: more than a minute, at most ``MAX_LIFETIME``; ValueError else."""
    if not dt.timedelta(minutes=1) <= expires_in <= MAX_LIFETIME:
        raise ValueError(f"a token lives between a minute and {MAX_LIFETIME.days} days")
    return expires_in


async def create_token(
    conn: Conn,
    tenant_id: str | None,
    name: str,
    *,
    scope: Scope = Scope.OPERATE,
    expires_in: dt.timedelta = DEFAULT_LIFETIME,
    operator: bool = False,
    now: dt.datetime | None = None,
) -> str:
    """A new API token (``tenant_id`` None with ``operator``); shown once, stored as a hash."""
    check_lifetime(expires_in)
    if operator != (tenant_id is None):
        raise ValueError("an operator's token has no tenant; a tenant's token is no operator's")
    token = f"nf_{secrets.token_urlsafe(32)}"
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, tenant_id, operator, name, scope, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        token_hash(token),
        tenant_id,
        operator,
        name,
        scope.value,
        (now or utc_now()) + expires_in,
    )
    return token


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(
        token_id=token_id_of(row["token_hash"]),
        tenant_id=row["tenant_id"],
        operator=row["operator"],
        name=row["name"],
        scope=Scope(row["scope"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


async def list_tokens(conn: Conn, tenant_id: str | None = None) -> list[TokenInfo]:
    """A tenant's tokens (None: every token), oldest first, revoked and expired included."""
    rows = await conn.fetch(
        "SELECT token_hash, tenant_id, operator, name, scope, created_at, expires_at, "
        "revoked_at FROM api_tokens WHERE $1::text IS NULL OR tenant_id = $1 "
        "ORDER BY created_at, token_hash",
        tenant_id,
    )
    return [_info(r) for r in rows]


async def revoke_token(conn: Conn, token_id: str, tenant_id: str | None = None) -> bool:
    """Revoke a token by its id (only the tenant's own, unless ``tenant_id`` is None);
    whether one was revoked now."""
    if len(token_id) != TOKEN_ID_LENGTH or not all(c in "0123456789abcdef" for c in token_id):
        return False
    status_ = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() "
        "WHERE left(token_hash, $1) = $2 AND revoked_at IS NULL "
        "AND ($3::text IS NULL OR tenant_id = $3)",
        TOKEN_ID_LENGTH,
        token_id,
        tenant_id,
    )
    return str(status_).split()[-1] != "0"


async def principal_for(conn: Conn, token: str, now: dt.datetime | None = None) -> Principal | None:
    """Who a token acts for, if it is known, unrevoked and unexpired."""
    digest = token_hash(token)
    row = await conn.fetchrow(
        "SELECT tenant_id, operator, name, scope, expires_at FROM api_tokens "
        "WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        digest,
        now or utc_now(),
    )
    if row is None:
        return None
    return Principal(
        token_id_of(digest),
        row["tenant_id"],
        row["operator"],
        row["name"],
        Scope(row["scope"]),
        row["expires_at"],
    )


async def tenant_for(conn: Conn, token: str) -> str | None:
    """The tenant of a valid (known, unrevoked, unexpired) tenant token."""
    found = await principal_for(conn, token)
    return found.tenant_id if found is not None and not found.operator else None


def bearer_token(request: Request) -> str:
    """The request's ``Authorization: Bearer`` token, or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send `Authorization: Bearer <API token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def bearer_principal(
    pool: Callable[[], asyncpg.Pool],
) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the tenant principal of the request's bearer token, its scope
    checked against the method. ``pool`` is asked at request time."""

    async def principal(request: Request) -> Principal:
        found = await principal_for(pool(), bearer_token(request))
        if found is None or found.operator:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown, revoked or expired API token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not found.may(request.method):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this token's scope is `read`: it may only read"
            )
        return found

    return principal


def bearer_tenant(pool: Callable[[], asyncpg.Pool]) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency: the tenant of the request's bearer token (scope checked)."""
    principal = bearer_principal(pool)

    async def tenant(request: Request) -> str:
        found = await principal(request)
        assert found.tenant_id is not None
        return found.tenant_id

    return tenant


async def current_principal(request: Request) -> Principal:
    """A FastAPI dependency: the request's tenant principal, checked against the service's
    ``api_tokens`` (through the pool ``ServiceApp.run`` set)."""
    return await bearer_principal(lambda: request.app.state.pool)(request)


async def current_tenant(request: Request) -> str:
    """A FastAPI dependency: the tenant of the request's ``Authorization: Bearer`` token."""
    found = await current_principal(request)
    assert found.tenant_id is not None
    return found.tenant_id


Tenant = Annotated[str, Depends(current_tenant)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


# -- the tokens API -------------------------------------------------------------------------
class TokenIn(BaseModel):
    """A new token of the caller's tenant."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="What the token is for")
    scope: Scope = Field(default=Scope.READ, description="read (GET only) or operate")
    expires_in_days: int = Field(
        default=DEFAULT_LIFETIME.days,
        ge=1,
        le=MAX_LIFETIME.days,
        description="Days until it expires (never after the token that creates it)",
    )


class TokenOut(BaseModel):
    """A token as listed; never the token itself."""

    token_id: str
    name: str
    scope: Scope
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    active: bool

    @classmethod
    def of(cls, info: TokenInfo, now: dt.datetime) -> TokenOut:
        """The API view."""
        return cls(
            token_id=info.token_id,
            name=info.name,
            scope=info.scope,
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
            active=info.active(now),
        )


class CreatedTokenOut(TokenOut):
    """A new token: ``token`` is shown this once."""

    token: str


TokenId = Annotated[str, Path(min_length=TOKEN_ID_LENGTH, max_length=TOKEN_ID_LENGTH)]


def tokens_router() -> APIRouter:
    """``/api/v1/tokens``: the caller's tenant's tokens — list, create (an ``operate`` token;
    the new one never outlives it), revoke by id."""
    router = APIRouter(prefix="/api/v1", tags=["tokens"])

    @router.get("/tokens")
    async def list_tenant_tokens(request: Request, who: CurrentPrincipal) -> list[TokenOut]:
        """The tenant's tokens, revoked and expired ones included."""
        now = utc_now()
        found = await list_tokens(request.app.state.pool, who.tenant_id)
        return [TokenOut.of(t, now) for t in found]

    @router.post("/tokens", status_code=status.HTTP_201_CREATED)
    async def create_tenant_token(
        body: TokenIn, request: Request, who: CurrentPrincipal
    ) -> CreatedTokenOut:
        """A new token for the tenant; the answer holds it once."""
        now = utc_now()
        expires_in = min(dt.timedelta(days=body.expires_in_days), who.expires_at - now)
        if expires_in < dt.timedelta(minutes=1):
            raise HTTPException(422, [_loc("expires_in_days", "the creating token expires now")])
        pool = request.app.state.pool
        token = await create_token(
            pool, who.tenant_id, body.name, scope=body.scope, expires_in=expires_in, now=now
        )
        created = next(
            t for t in await list_tokens(pool, who.tenant_id) if t.token_id == _id_of(token)
        )
        return CreatedTokenOut(**TokenOut.of(created, now).model_dump(), token=token)

    @router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def revoke_tenant_token(
        token_id: TokenId, request: Request, who: CurrentPrincipal
    ) -> None:
        """Revoke one of the tenant's tokens (the caller's own too)."""
        if not await revoke_token(request.app.state.pool, token_id, who.tenant_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active token {token_id}")

    return router


def _id_of(token: str) -> str:
    return token_id_of(token_hash(token))


def _loc(field: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": "value_error"}
