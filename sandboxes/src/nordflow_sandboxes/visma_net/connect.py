"""Visma Connect in the Visma.net sandbox: service integrations and client-credentials tokens.

As documented (docs.vismasoftware.no/vismanetapi, "Authentication" and "Service
Integrations"): Visma.net's API is authorised through Visma Connect, whose token endpoint is
``POST https://connect.visma.com/connect/token``. A service integration (machine to machine,
no user) sends ``grant_type=client_credentials``, ``scope``, ``client_id``,
``client_secret`` and ``tenant_id`` (required for tenant-based APIs such as Visma.net ERP;
the tenant administrator must have approved the application) form-encoded, and gets a bearer
``access_token`` with ``expires_in`` and no refresh token.

Here ``/connect/token`` is served beside ``/v1``; a tenant is one sandbox company. The fixed
tokens of ``POST /sandbox/companies`` keep working unchanged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.kit.oauth import (
    AccessTokens,
    ClientRegistry,
    ClientSecretMismatchError,
    client_credentials,
    oauth_error,
    token_answer,
    token_form,
)

if TYPE_CHECKING:
    from nordflow_sandboxes.visma_net.state import VismaNetState

TOKEN_PATH = "/connect/token"  # noqa: S105 - a path, not a secret
SERVICE_API = "vismanet_erp_service_api"
DEFAULT_SCOPE = f"{SERVICE_API}:read {SERVICE_API}:create {SERVICE_API}:update"


class TokenRefusedError(Exception):
    """The token endpoint refuses: `error` is the RFC 6749 §5.2 (or Visma Connect) code."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass
class ServiceClient:
    """A service application and the tenants (companies) whose administrators approved it."""

    client_id: str
    client_secret: str = field(repr=False)
    tenants: dict[str, str] = field(default_factory=dict)  # tenant id -> company id


@dataclass(frozen=True)
class ConnectAccess:
    """One access token and when it stops working."""

    token: str = field(repr=False)
    client_id: str
    tenant_id: str
    company_id: str
    scope: str
    expires: datetime


@dataclass(frozen=True)
class SandboxServiceClient:
    """What a service integration of one company stores (test helper)."""

    company_id: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    scope: str = DEFAULT_SCOPE

    def credentials(self) -> dict[str, str]:
        """The client-credentials keys a Visma.net connection takes."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "tenant_id": self.tenant_id,
            "company_id": self.company_id,
            "token_url": self.token_url,
            "scope": self.scope,
        }


class VismaConnect:
    """The sandbox's Visma Connect; guarded by the state's lock."""

    def __init__(self, state: VismaNetState, *, access_token_lifetime_seconds: int = 3600) -> None:
        if access_token_lifetime_seconds < 1:
            raise ValueError("access tokens must live at least one second")
        self.state = state
        self.lifetime = timedelta(seconds=access_token_lifetime_seconds)
        self._clients = ClientRegistry(
            state.lock, ServiceClient, new_id=lambda: f"isv_nordflow_{secrets.token_hex(4)}"
        )
        self._access = AccessTokens[ConnectAccess](state.lock, state.now)
        self._issued: dict[str, int] = {}

    def register(
        self,
        company_id: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        tenant_id: str | None = None,
    ) -> tuple[ServiceClient, str]:
        """Approve a service client for a company's tenant; (client, tenant id).

        A new client id is registered (secret generated unless given); an existing one keeps
        its secret and gains the tenant. The company's tenant id is stable once chosen.
        """
        with self.state.lock:
            if self.state.company(company_id) is None:
                raise LookupError(f"no company {company_id}")
            client = self._clients.register(client_id, client_secret)
            known = next((t for t, c in client.tenants.items() if c == company_id), None)
            tenant = tenant_id or known or str(uuid4())
            client.tenants[tenant] = company_id
            return client, tenant

    def authenticate(self, client_id: str, client_secret: str) -> ServiceClient | None:
        """The client when id and secret match (compared in constant time)."""
        return self._clients.authenticate(client_id, client_secret)

    def issue(self, client: ServiceClient, scope: str, tenant_id: str | None) -> ConnectAccess:
        """A new access token of the client for the tenant (client_credentials grant)."""
        scopes = scope.split()
        if not scopes or not all(s.startswith(f"{SERVICE_API}:") for s in scopes):
            raise TokenRefusedError(
                400, "invalid_scope", f"The sandbox grants {SERVICE_API}:* scopes only"
            )
        if not tenant_id:
            raise TokenRefusedError(
                400, "invalid_request", f"tenant_id is required for {SERVICE_API}"
            )
        with self.state.lock:
            company_id = client.tenants.get(tenant_id)
            if company_id is None:
                raise TokenRefusedError(
                    400,
                    "invalid_tenant",
                    "The application is not approved for this tenant (or it does not exist)",
                )
            expires = self.state.now() + self.lifetime
            access = self._access.issue(
                lambda token: ConnectAccess(
                    token, client.client_id, tenant_id, company_id, " ".join(scopes), expires
                )
            )
            self._issued[company_id] = self._issued.get(company_id, 0) + 1
            self.state.grant(access.token, company_id)
            return access

    def expired(self, token: str) -> bool:
        """Whether the token is a Visma Connect access token past its expiry."""
        return self._access.expired(token)

    def expire_access_tokens(self, company_id: str) -> int:
        """End the company's Visma Connect access tokens now; how many ended."""
        return self._access.expire(company_id)

    def tokens_issued(self, company_id: str) -> int:
        """How many access tokens were issued for the company."""
        with self.state.lock:
            return self._issued.get(company_id, 0)


# ----------------------------------------------------------------------- HTTP routes


class ServiceClientIn(BaseModel):
    """Body of `POST /sandbox/connect/clients`: approve a service client for a company."""

    model_config = ConfigDict(extra="forbid")

    company_id: str = Field(min_length=1, max_length=40)
    client_id: str | None = Field(default=None, min_length=1, max_length=200)
    client_secret: str | None = Field(default=None, min_length=8, max_length=500)
    tenant_id: str | None = Field(default=None, min_length=1, max_length=100)


class CompanyRef(BaseModel):
    """Body naming one company."""

    model_config = ConfigDict(extra="forbid")

    company_id: str = Field(min_length=1, max_length=40)


def connect_router(connect: VismaConnect) -> APIRouter:
    """``POST /connect/token`` and the ``/sandbox/connect/...`` admin routes."""
    router = APIRouter()

    @router.post(TOKEN_PATH, tags=["Visma Connect (token endpoint)"])
    async def token(request: Request) -> Response:
        """`grant_type=client_credentials`: a bearer token for one tenant, no refresh token."""
        form = await token_form(request)
        if not isinstance(form, dict):
            return form
        # client_secret_post is how Visma documents it; client_secret_basic works too.
        credentials = client_credentials(request, form)
        client = connect.authenticate(*credentials) if credentials else None
        if client is None:
            return oauth_error(401, "invalid_client", "Client authentication failed")
        grant_type = form.get("grant_type")
        if grant_type != "client_credentials":
            return oauth_error(
                400,
                "unsupported_grant_type" if grant_type else "invalid_request",
                "Service integrations use grant_type=client_credentials",
            )
        try:
            access = connect.issue(client, form.get("scope", ""), form.get("tenant_id"))
        except TokenRefusedError as refused:
            return oauth_error(refused.status, refused.error, refused.description)
        body: dict[str, Any] = {
            "access_token": access.token,
            "expires_in": int(connect.lifetime.total_seconds()),
            "token_type": "Bearer",
            "scope": access.scope,
        }
        return token_answer(body)

    @router.post("/sandbox/connect/clients", status_code=201, tags=["sandbox admin"])
    async def register(request: Request, body: ServiceClientIn) -> dict[str, str]:
        """Approve a service client for a company's tenant (the tenant administrator's step)."""
        try:
            client, tenant = connect.register(
                body.company_id, body.client_id, body.client_secret, body.tenant_id
            )
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        except ClientSecretMismatchError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {
            "company_id": body.company_id,
            "tenant_id": tenant,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "token_url": f"{str(request.base_url).rstrip('/')}{TOKEN_PATH}",
            "scope": DEFAULT_SCOPE,
        }

    @router.post("/sandbox/connect/expire", tags=["sandbox admin"])
    async def expire(body: CompanyRef) -> dict[str, int]:
        """End the company's Visma Connect access tokens now (the next call answers 401)."""
        return {"expired": connect.expire_access_tokens(body.company_id)}

    @router.get("/sandbox/connect/stats", tags=["sandbox admin"])
    async def stats(company_id: str) -> dict[str, int]:
        """How many access tokens were issued for the company."""
        return {"tokens_issued": connect.tokens_issued(company_id)}

    return router


def register_service_client(
    state: VismaNetState,
    base_url: str,
    company_id: str,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> SandboxServiceClient:
    """Test helper: approve a service client for a company directly in the state."""
    client, tenant = state.connect.register(company_id, client_id, client_secret)
    return SandboxServiceClient(
        company_id=company_id,
        tenant_id=tenant,
        client_id=client.client_id,
        client_secret=client.client_secret,
        token_url=f"{base_url.rstrip('/')}{TOKEN_PATH}",
    )
