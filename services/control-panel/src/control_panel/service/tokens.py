"""API tokens (a tenant's, or an operator's for every tenant) and web sessions.

Only hashes are stored: of a token (shown once when created) and of a session id (the
cookie). A session lives as long as its token is unrevoked and its time is not up.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from nordflow_runtime.tenants import token_hash

from ..domain.access import Principal
from . import TokenRepository

MAX_TOKEN = 200


async def create_token(
    tokens: TokenRepository, tenant_id: str | None, *, operator: bool, name: str
) -> str:
    """A new token for a tenant, or an operator's; the only time it is seen in full."""
    if operator == (tenant_id is not None):
        raise ValueError("a token is either a tenant's or an operator's")
    token = f"nfcp_{secrets.token_urlsafe(32)}"
    await tokens.add_token(token_hash(token), tenant_id, operator, name)
    return token


async def authenticate(tokens: TokenRepository, token: str) -> Principal | None:
    """The holder of a token, if it is valid."""
    token = token.strip()
    if not token or len(token) > MAX_TOKEN:
        return None
    return await tokens.principal(token_hash(token))


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the cookie's secret, the form token, and who it is."""

    session_id: str
    csrf: str
    principal: Principal


async def sign_in(
    tokens: TokenRepository, token: str, now: dt.datetime, hours: int
) -> Session | None:
    """A new session for a valid token; None for an unknown or revoked one."""
    principal = await authenticate(tokens, token)
    if principal is None:
        return None
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    await tokens.open_session(
        token_hash(session_id), token_hash(token.strip()), csrf, now + dt.timedelta(hours=hours)
    )
    return Session(session_id, csrf, principal)


async def session(tokens: TokenRepository, session_id: str, now: dt.datetime) -> Session | None:
    """The live session of a cookie."""
    if not session_id or len(session_id) > MAX_TOKEN:
        return None
    found = await tokens.session(token_hash(session_id), now)
    if found is None:
        return None
    principal, csrf = found
    return Session(session_id, csrf, principal)


async def sign_out(tokens: TokenRepository, session_id: str) -> None:
    """End the session of a cookie."""
    await tokens.close_session(token_hash(session_id))
