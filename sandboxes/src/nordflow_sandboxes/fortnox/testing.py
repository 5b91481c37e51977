"""Test helpers for other teams: run the Fortnox sandbox in-process and drive its admin API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nordflow_sandboxes.fortnox.app import create_app
from nordflow_sandboxes.fortnox.domain import Company
from nordflow_sandboxes.fortnox.oauth import DEFAULT_SCOPE, TOKEN_PATH
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import Steps, auth, json_of, operation, random_name, send


@dataclass(frozen=True)
class SandboxCompany:
    """A company (one Fortnox database) in the sandbox and the token that opens it."""

    company_id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers a Fortnox client sends for this company."""
        return {**auth(self.token), "Accept": "application/json"}


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


@dataclass(frozen=True)
class FaultSpec(kit.FaultSpec):
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    path_prefix: str = "/3/"


class FortnoxAdminOps(kit.BearerTenantAdmin):
    """The sandbox's `/sandbox/...` admin operations; a company is named by its token."""

    fault_spec = FaultSpec

    @operation
    def create_company(
        self, name: str | None = None, token: str | None = None
    ) -> Steps[SandboxCompany]:
        """A new empty company; random name and token unless given."""
        body: dict[str, Any] = {"name": name or random_name()}
        if token is not None:
            body["token"] = token
        data = json_of((yield from send("POST", "/sandbox/companies", json=body)))
        return SandboxCompany(company_id=data["company_id"], token=data["token"], name=data["name"])

    @operation
    def authorize(
        self, token: str, client_id: str | None = None, client_secret: str | None = None
    ) -> Steps[SandboxAuthorization]:
        """A new OAuth authorization (refresh token) of the company `token` opens."""
        asked = {"client_id": client_id, "client_secret": client_secret}
        body = {key: value for key, value in asked.items() if value is not None}
        path = "/sandbox/oauth/authorizations"
        data = json_of((yield from send("POST", path, json=body, headers=auth(token))))
        return SandboxAuthorization(
            company_id=data["company_id"],
            client_id=data["client_id"],
            client_secret=data["client_secret"],
            refresh_token=data["refresh_token"],
            token_url=data["token_url"],
        )

    @operation
    def expire_access_tokens(self, token: str, client_id: str | None = None) -> Steps[int]:
        """End the company's OAuth access tokens (of one client, or all); how many ended."""
        body = {"client_id": client_id}
        response = yield from send("POST", "/sandbox/oauth/expire", json=body, headers=auth(token))
        return int(json_of(response)["expired"])


class FortnoxSandboxAdmin(FortnoxAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""


class AsyncFortnoxSandboxAdmin(FortnoxAdminOps, kit.AsyncAdminClient):
    """The same admin client for asyncio tests."""


@dataclass
class RunningFortnoxSandbox(kit.RunningSandbox[FortnoxState]):
    """A sandbox served on a loopback port in a background thread."""

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

    def _found(self, company: SandboxCompany) -> Company:
        found = self.state.company(company.company_id)
        if found is None:
            raise LookupError(f"no company {company.company_id}")
        return found

    def authorize(
        self,
        company: SandboxCompany,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str = DEFAULT_SCOPE,
    ) -> SandboxAuthorization:
        """A new OAuth authorization of `company` for a client, directly in the state."""
        found = self._found(company)
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
        return self.state.oauth.expire_access_tokens(self._found(company), client_id)

    def refresh_tokens_redeemed(self, company: SandboxCompany) -> int:
        """How many refresh tokens of the company were redeemed (rotations)."""
        return self.state.oauth.counters(self._found(company)).redeemed

    def create_company(self, name: str | None = None, token: str | None = None) -> SandboxCompany:
        """Create a company directly in the state (no HTTP round trip)."""
        company, issued = self.state.create_company(name or random_name(), token)
        return SandboxCompany(company_id=company.company_id, token=issued, name=company.name)


_runner = kit.Runner(FortnoxState, create_app, RunningFortnoxSandbox)
# `start_fortnox_sandbox(state=None, *, host=...)`: the caller must `stop()` it.
start_fortnox_sandbox = _runner.start
# `with running_fortnox_sandbox() as sandbox:` serves a sandbox for the block.
running_fortnox_sandbox = _runner.running
