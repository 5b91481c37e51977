"""API tokens and web sessions in ``api_tokens`` and ``sessions`` (hashes only)."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import asyncpg
from nordflow_runtime.tenants import DEFAULT_LIFETIME, Scope

from ..domain.access import Principal

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


class PgTokenRepository:
    """Tokens and the sessions signed in with them."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    async def add_token(
        self, token_hash: str, tenant_id: str | None, operator: bool, name: str
    ) -> None:
        """Store a new token's hash."""
        # The runtime's token model (nordflow_runtime.tenants): operate scope, a year's life.
        await self.conn.execute(
            "INSERT INTO api_tokens (token_hash, tenant_id, operator, name, scope, expires_at) "
            "VALUES ($1, $2, $3, $4, 'operate', now() + $5::interval)",
            token_hash,
            tenant_id,
            operator,
            name,
            DEFAULT_LIFETIME,
        )

    async def principal(self, token_hash: str) -> Principal | None:
        """The holder of an unrevoked token."""
        row = await self.conn.fetchrow(
            "SELECT name, tenant_id, operator, scope FROM api_tokens "
            "WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
            token_hash,
        )
        return _principal(row) if row else None

    async def revoke(self, name: str, tenant_id: str | None) -> int:
        """Revoke tokens by name (of a tenant, or operators' for None); how many."""
        status = await self.conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "AND tenant_id IS NOT DISTINCT FROM $2",
            name,
            tenant_id,
        )
        return int(status.split()[-1])

    async def open_session(
        self, session_hash: str, token_hash: str, csrf: str, expires_at: dt.datetime
    ) -> None:
        """Store a session of a token (and forget expired ones)."""
        await self.conn.execute("DELETE FROM sessions WHERE expires_at < now()")
        await self.conn.execute(
            "INSERT INTO sessions (session_hash, token_hash, csrf, expires_at) "
            "VALUES ($1, $2, $3, $4)",
            session_hash,
            token_hash,
            csrf,
            expires_at,
        )

    async def session(self, session_hash: str, now: dt.datetime) -> tuple[Principal, str] | None:
        """The principal and CSRF token of a live session of an unrevoked token."""
        row = await self.conn.fetchrow(
            """SELECT t.name, t.tenant_id, t.operator, t.scope, s.csrf FROM sessions s
               JOIN api_tokens t USING (token_hash)
               WHERE s.session_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL
                 AND t.expires_at > $2""",
            session_hash,
            now,
        )
        if row is None:
            return None
        return _principal(row), row["csrf"]

    async def close_session(self, session_hash: str) -> None:
        """End a session."""
        await self.conn.execute("DELETE FROM sessions WHERE session_hash = $1", session_hash)


def _principal(row: asyncpg.Record) -> Principal:
    return Principal(
        row["name"], row["tenant_id"], row["operator"], read_only=row["scope"] == Scope.READ
    )
