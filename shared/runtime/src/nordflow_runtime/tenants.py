"""Tenant API tokens, shared by every service that serves a tenant API.

Only a token's SHA-256 is stored. A service with a tenant API creates the `api_tokens` table
in its own schema (its own migration), so a token is issued per service API
(`<service> tokens create <tenant>`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request, status


def token_hash(token: str) -> str:
    """What is stored of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(pool: asyncpg.Pool, tenant_id: str, name: str) -> str:
    """A new API token for a tenant; shown once, stored only as a hash."""
    token = f"nf_{secrets.token_urlsafe(32)}"
    await pool.execute(
        "INSERT INTO api_tokens (token_hash, tenant_id, name) VALUES ($1, $2, $3)",
        token_hash(token),
        tenant_id,
        name,
    )
    return token


async def tenant_for(pool: asyncpg.Pool, token: str) -> str | None:
    """The tenant of a valid, unrevoked token."""
    tenant: str | None = await pool.fetchval(
        "SELECT tenant_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash(token),
    )
    return tenant


def bearer_tenant(pool: Callable[[], asyncpg.Pool]) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency: the tenant of the request's `Authorization: Bearer` token.

    ``pool`` is asked at request time (the service starts its pool after building routes).
    """

    async def tenant(request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "send `Authorization: Bearer <API token>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = await tenant_for(pool(), token.strip())
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API token")
        return found

    return tenant


async def current_tenant(request: Request) -> str:
    """A FastAPI dependency: the tenant of the request's `Authorization: Bearer` token, checked
    against the service's ``api_tokens`` (through the pool ``ServiceApp.run`` set)."""
    return await bearer_tenant(lambda: request.app.state.pool)(request)


Tenant = Annotated[str, Depends(current_tenant)]
