"""Fortnox's OAuth2 in the sandbox: clients, authorizations, rotating refresh tokens.

As documented (fortnox.se/developer/authorization): the token endpoint is
``POST /oauth-v1/token`` (on ``apps.fortnox.se``), form-encoded, the client authenticated
with HTTP Basic (``Authorization: Basic base64(ClientId:ClientSecret)``). An access token
lives one hour; a refresh token is valid 45 days and works once: every refresh answers a
new pair and the old refresh token stops working ("Invalid refresh token"). A user's
activation of the integration (the authorization-code step) is the admin route that issues
a fresh refresh token for a company and client.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from nordflow_sandboxes.fortnox.domain import Company
from nordflow_sandboxes.kit.oauth import (
    AccessTokens,
    ClientRegistry,
    OAuthClient,
    client_credentials,
    oauth_error,
    token_answer,
    token_form,
)

if TYPE_CHECKING:
    from nordflow_sandboxes.fortnox.state import FortnoxState

TOKEN_PATH = "/oauth-v1/token"  # noqa: S105 - a path, not a secret
DEFAULT_SCOPE = "companyinformation invoice customer payment bookkeeping"


class RefreshRefusedError(Exception):
    """The token endpoint refuses a refresh: `error` is the RFC 6749 §5.2 code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass
class RefreshGrant:
    """One refresh token: whose, for which company, and whether it was spent."""

    token: str = field(repr=False)
    client_id: str
    company_id: str
    scope: str
    expires: datetime
    used: datetime | None = None


@dataclass(frozen=True)
class AccessGrant:
    """One access token and when it stops working."""

    token: str = field(repr=False)
    client_id: str
    company_id: str
    scope: str
    expires: datetime


@dataclass
class GrantCounters:
    """Per company: refresh tokens redeemed, authorizations issued."""

    redeemed: int = 0
    authorized: int = 0


class FortnoxOAuth:
    """The sandbox's authorization server; guarded by the state's lock."""

    def __init__(
        self,
        state: FortnoxState,
        *,
        access_token_lifetime_seconds: int = 3600,
        refresh_token_lifetime_days: int = 45,
    ) -> None:
        if access_token_lifetime_seconds < 1:
            raise ValueError("access tokens must live at least one second")
        self.state = state
        self.access_lifetime = timedelta(seconds=access_token_lifetime_seconds)
        self.refresh_lifetime = timedelta(days=refresh_token_lifetime_days)
        self._clients = ClientRegistry(
            state.lock, OAuthClient, new_id=lambda: f"fnx-{secrets.token_hex(6)}", secret_bytes=24
        )
        self._refresh: dict[str, RefreshGrant] = {}
        self._access = AccessTokens[AccessGrant](state.lock, state.now)
        self._counters: dict[str, GrantCounters] = {}

    def authorize(
        self,
        company: Company,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str = DEFAULT_SCOPE,
    ) -> tuple[OAuthClient, str]:
        """A user activates the integration for `company`: a new refresh token of the client.

        The client is registered when `client_id` is new (secret generated unless given); an
        existing client keeps its secret. Each call is a separate authorization: two services
        authorized separately hold two independent chains of refresh tokens.
        """
        with self.state.lock:
            client = self._clients.register(client_id, client_secret)
            self._counter(company).authorized += 1
            return client, self._issue_refresh(company.company_id, client.client_id, scope)

    def authenticate_client(self, client_id: str, client_secret: str) -> OAuthClient | None:
        """The client when id and secret match (compared in constant time)."""
        return self._clients.authenticate(client_id, client_secret)

    def redeem(self, client: OAuthClient, refresh_token: str) -> tuple[AccessGrant, str]:
        """Rotate: the refresh token stops working; a new access and refresh token pair."""
        with self.state.lock:
            now = self.state.now()
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.client_id != client.client_id:
                raise RefreshRefusedError("invalid_grant", "Invalid refresh token")
            if grant.used is not None:
                raise RefreshRefusedError("invalid_grant", "Invalid refresh token (already used)")
            if grant.expires <= now:
                raise RefreshRefusedError("invalid_grant", "Invalid refresh token (expired)")
            company = self.state.company(grant.company_id)
            if company is None:
                raise RefreshRefusedError("invalid_grant", "The company no longer exists")
            grant.used = now
            access = self._access.issue(
                lambda token: AccessGrant(
                    token,
                    client.client_id,
                    grant.company_id,
                    grant.scope,
                    now + self.access_lifetime,
                )
            )
            self._counter(company).redeemed += 1
            return access, self._issue_refresh(grant.company_id, client.client_id, grant.scope)

    def access_grant(self, token: str) -> AccessGrant | None:
        """The grant of an access token, expired or not."""
        return self._access.grant(token)

    def expire_access_tokens(self, company: Company, client_id: str | None = None) -> int:
        """End the company's access tokens now (of one client, or all); refresh tokens stay."""
        return self._access.expire(company.company_id, client_id)

    def counters(self, company: Company) -> GrantCounters:
        """How many refresh tokens the company's clients redeemed and were issued."""
        with self.state.lock:
            return self._counter(company)

    def _counter(self, company: Company) -> GrantCounters:
        return self._counters.setdefault(company.company_id, GrantCounters())

    def _issue_refresh(self, company_id: str, client_id: str, scope: str) -> str:
        token = secrets.token_urlsafe(32)
        self._refresh[token] = RefreshGrant(
            token, client_id, company_id, scope, expires=self.state.now() + self.refresh_lifetime
        )
        return token


# ----------------------------------------------------------------------- token endpoint


def token_router(oauth: FortnoxOAuth) -> APIRouter:
    """``POST /oauth-v1/token`` with ``grant_type=refresh_token``."""
    router = APIRouter(tags=["Fortnox OAuth2 (token endpoint)"])

    @router.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        """Rotate a refresh token: a new access token (1 h) and a new refresh token."""
        form = await token_form(request)
        if not isinstance(form, dict):
            return form
        # Fortnox takes the client by HTTP Basic only.
        credentials = client_credentials(request)
        client = oauth.authenticate_client(*credentials) if credentials else None
        if client is None:
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication failed (send Authorization: Basic ClientId:ClientSecret)",
                headers={"WWW-Authenticate": 'Basic realm="fortnox"'},
            )
        grant_type = form.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "grant_type is missing")
        if grant_type != "refresh_token":
            return oauth_error(
                400, "unsupported_grant_type", "The sandbox issues tokens by refresh_token only"
            )
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return oauth_error(400, "invalid_request", "refresh_token is missing")
        try:
            access, rotated = oauth.redeem(client, refresh_token)
        except RefreshRefusedError as refused:
            return oauth_error(400, refused.error, refused.description)
        body: dict[str, Any] = {
            "access_token": access.token,
            "refresh_token": rotated,
            "scope": access.scope,
            "expires_in": int(oauth.access_lifetime.total_seconds()),
            "token_type": "bearer",
        }
        return token_answer(body)

    return router
