"""Test helpers for other teams: run the Fortnox sandbox in-process and drive its admin API."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from nordflow_sandboxes.fortnox.app import create_app
from nordflow_sandboxes.fortnox.oauth import DEFAULT_SCOPE, TOKEN_PATH
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.server import BackgroundServer

FaultStatus = Literal[429, 500, 502, 503, 504]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class SandboxCompany:
    """A company (one Fortnox database) in the sandbox and the token that opens it."""

    company_id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers a Fortnox client sends for this company."""
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


@dataclass(frozen=True)
class SandboxAuthorization:
    """One authorization of a company for an OAuth client: what an integration stores.

    Each is its own chain of rotating refresh tokens; two services that both talk to the
    company (erp-poller reads, ledger-closer writes) each get one.
    """

    company_id: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_url: str

    def credentials(self) -> dict[str, str]:
        """The OAuth credentials a Fortnox connection takes."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "token_url": self.token_url,
        }


def _authorization_from(response: httpx.Response) -> SandboxAuthorization:
    response.raise_for_status()
    data = response.json()
    return SandboxAuthorization(
        company_id=data["company_id"],
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        refresh_token=data["refresh_token"],
        token_url=data["token_url"],
    )


def _authorization_body(client_id: str | None, client_secret: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if client_id is not None:
        body["client_id"] = client_id
    if client_secret is not None:
        body["client_secret"] = client_secret
    return body


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = "/3/"
    method: HttpMethod | None = None
    delay_seconds: float = 0.0
    after_commit: bool = False
    retry_after_seconds: int = 1

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        return {
            "status": self.status,
            "count": self.count,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "retry_after_seconds": self.retry_after_seconds,
        }


def _company_body(name: str | None, token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or f"Test AB {secrets.token_hex(4)}"}
    if token is not None:
        body["token"] = token
    return body


def _company_from(response: httpx.Response) -> SandboxCompany:
    response.raise_for_status()
    data = response.json()
    return SandboxCompany(company_id=data["company_id"], token=data["token"], name=data["name"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FortnoxSandboxAdmin:
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> FortnoxSandboxAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self._client.get("/sandbox/healthz").status_code == 200

    def create_company(self, name: str | None = None, token: str | None = None) -> SandboxCompany:
        """A new empty company; random name and token unless given."""
        return _company_from(
            self._client.post("/sandbox/companies", json=_company_body(name, token))
        )

    def authorize(
        self, token: str, client_id: str | None = None, client_secret: str | None = None
    ) -> SandboxAuthorization:
        """A new OAuth authorization (refresh token) of the company `token` opens."""
        return _authorization_from(
            self._client.post(
                "/sandbox/oauth/authorizations",
                json=_authorization_body(client_id, client_secret),
                headers=_auth(token),
            )
        )

    def expire_access_tokens(self, token: str, client_id: str | None = None) -> int:
        """End the company's OAuth access tokens (of one client, or all); how many ended."""
        response = self._client.post(
            "/sandbox/oauth/expire", json={"client_id": client_id}, headers=_auth(token)
        )
        response.raise_for_status()
        return int(response.json()["expired"])

    def inject_fault(self, token: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company that `token` opens."""
        spec = fault or FaultSpec()
        self._client.post(
            "/sandbox/faults", json=spec.as_json(), headers=_auth(token)
        ).raise_for_status()

    def clear_faults(self, token: str) -> None:
        """Drop the company's pending faults."""
        self._client.delete("/sandbox/faults", headers=_auth(token)).raise_for_status()

    def requests(self, token: str, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first (method, path, query, status, fault)."""
        response = self._client.get(
            "/sandbox/requests", params={"limit": limit}, headers=_auth(token)
        )
        response.raise_for_status()
        return list(response.json()["requests"])

    def stats(self, token: str) -> dict[str, Any]:
        """Counts of the company's customers, invoices, payments and requests."""
        response = self._client.get("/sandbox/stats", headers=_auth(token))
        response.raise_for_status()
        return dict(response.json())


class AsyncFortnoxSandboxAdmin:
    """The same admin client for asyncio tests."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncFortnoxSandboxAdmin:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def create_company(
        self, name: str | None = None, token: str | None = None
    ) -> SandboxCompany:
        """A new empty company; random name and token unless given."""
        return _company_from(
            await self._client.post("/sandbox/companies", json=_company_body(name, token))
        )

    async def authorize(
        self, token: str, client_id: str | None = None, client_secret: str | None = None
    ) -> SandboxAuthorization:
        """A new OAuth authorization (refresh token) of the company `token` opens."""
        return _authorization_from(
            await self._client.post(
                "/sandbox/oauth/authorizations",
                json=_authorization_body(client_id, client_secret),
                headers=_auth(token),
            )
        )

    async def expire_access_tokens(self, token: str, client_id: str | None = None) -> int:
        """End the company's OAuth access tokens (of one client, or all); how many ended."""
        response = await self._client.post(
            "/sandbox/oauth/expire", json={"client_id": client_id}, headers=_auth(token)
        )
        response.raise_for_status()
        return int(response.json()["expired"])

    async def inject_fault(self, token: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company that `token` opens."""
        spec = fault or FaultSpec()
        response = await self._client.post(
            "/sandbox/faults", json=spec.as_json(), headers=_auth(token)
        )
        response.raise_for_status()

    async def clear_faults(self, token: str) -> None:
        """Drop the company's pending faults."""
        (await self._client.delete("/sandbox/faults", headers=_auth(token))).raise_for_status()

    async def requests(self, token: str, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first."""
        response = await self._client.get(
            "/sandbox/requests", params={"limit": limit}, headers=_auth(token)
        )
        response.raise_for_status()
        return list(response.json()["requests"])

    async def stats(self, token: str) -> dict[str, Any]:
        """Counts of the company's customers, invoices, payments and requests."""
        response = await self._client.get("/sandbox/stats", headers=_auth(token))
        response.raise_for_status()
        return dict(response.json())


@dataclass
class RunningFortnoxSandbox:
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: FortnoxState
    _server: BackgroundServer

    @property
    def api_url(self) -> str:
        """The API root including `/3` (for raw HTTP calls). `FortnoxClient` adds `/3/` itself,
        so give it `base_url`, just as production gives it `https://api.fortnox.se`."""
        return f"{self.base_url}/3"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint (Fortnox: https://apps.fortnox.se/oauth-v1/token)."""
        return f"{self.base_url}{TOKEN_PATH}"

    def admin(self) -> FortnoxSandboxAdmin:
        """A blocking admin client (close it, or use it as a context manager)."""
        return FortnoxSandboxAdmin(self.base_url)

    def authorize(
        self,
        company: SandboxCompany,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str = DEFAULT_SCOPE,
    ) -> SandboxAuthorization:
        """A new OAuth authorization of `company` for a client, directly in the state."""
        found = self.state.company(company.company_id)
        if found is None:
            raise LookupError(f"no company {company.company_id}")
        client, refresh = self.state.oauth.authorize(found, client_id, client_secret, scope)
        return SandboxAuthorization(
            company_id=found.company_id,
            client_id=client.client_id,
            client_secret=client.client_secret,
            refresh_token=refresh,
            token_url=self.token_url,
        )

    def expire_access_tokens(self, company: SandboxCompany, client_id: str | None = None) -> int:
        """End the company's OAuth access tokens now (the next API call answers 401)."""
        found = self.state.company(company.company_id)
        if found is None:
            raise LookupError(f"no company {company.company_id}")
        return self.state.oauth.expire_access_tokens(found, client_id)

    def refresh_tokens_redeemed(self, company: SandboxCompany) -> int:
        """How many refresh tokens of the company were redeemed (rotations)."""
        found = self.state.company(company.company_id)
        if found is None:
            raise LookupError(f"no company {company.company_id}")
        return self.state.oauth.counters(found).redeemed

    def create_company(self, name: str | None = None, token: str | None = None) -> SandboxCompany:
        """Create a company directly in the state (no HTTP round trip)."""
        company, issued = self.state.create_company(
            name or f"Test AB {secrets.token_hex(4)}", token
        )
        return SandboxCompany(company_id=company.company_id, token=issued, name=company.name)

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()


def start_fortnox_sandbox(
    state: FortnoxState | None = None, *, host: str = "127.0.0.1"
) -> RunningFortnoxSandbox:
    """Serve a sandbox on a free port of `host`; the caller must `stop()` it."""
    state = state or FortnoxState()
    server = BackgroundServer(create_app(state), host=host, port=0)
    base_url = server.start()
    return RunningFortnoxSandbox(base_url=base_url, state=state, _server=server)


@contextmanager
def running_fortnox_sandbox(
    state: FortnoxState | None = None, *, host: str = "127.0.0.1"
) -> Iterator[RunningFortnoxSandbox]:
    """`with running_fortnox_sandbox() as sandbox:` serves a sandbox for the block."""
    sandbox = start_fortnox_sandbox(state, host=host)
    try:
        yield sandbox
    finally:
        sandbox.stop()
