"""Test helpers shared by the delivery-channel sandboxes: admin client, faults, a served app."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Generic, Literal, Self, TypeVar

import httpx
from starlette.types import ASGIApp

from nordflow_sandboxes.kit.server import API_PREFIX, PartnerState
from nordflow_sandboxes.server import BackgroundServer

FaultStatus = Literal[429, 500, 502, 503, 504]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]
S = TypeVar("S", bound=PartnerState[Any])


@dataclass(frozen=True)
class SandboxAccount:
    """An account at the provider and the bearer token that opens it."""

    account_id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header a client sends for this account."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/faults` takes (see the sandboxes README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = f"{API_PREFIX}/"
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


def auth(token: str) -> dict[str, str]:
    """`Authorization: Bearer <token>`."""
    return {"Authorization": f"Bearer {token}"}


class PartnerSandboxAdmin:
    """Blocking client of the shared `/sandbox/...` admin endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self.client.get("/sandbox/healthz").status_code == 200

    def create_account(
        self, name: str | None = None, token: str | None = None, organisation_number: str = ""
    ) -> SandboxAccount:
        """A new empty account; random name and token unless given."""
        body: dict[str, Any] = {
            "name": name or f"Test AB {secrets.token_hex(4)}",
            "organisation_number": organisation_number,
        }
        if token is not None:
            body["token"] = token
        response = self.client.post("/sandbox/accounts", json=body)
        response.raise_for_status()
        data = response.json()
        return SandboxAccount(data["account_id"], data["token"], data["name"])

    def inject_fault(self, token: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the account that `token` opens."""
        spec = fault or FaultSpec()
        self.client.post(
            "/sandbox/faults", json=spec.as_json(), headers=auth(token)
        ).raise_for_status()

    def clear_faults(self, token: str) -> None:
        """Drop the account's pending faults."""
        self.client.delete("/sandbox/faults", headers=auth(token)).raise_for_status()

    def requests(self, token: str, limit: int = 100) -> list[dict[str, Any]]:
        """The account's last API requests, oldest first."""
        response = self.client.get(
            "/sandbox/requests", params={"limit": limit}, headers=auth(token)
        )
        response.raise_for_status()
        return list(response.json()["requests"])

    def deliveries(self, token: str) -> list[dict[str, Any]]:
        """Every accepted send of the account, once each, with its content hash."""
        response = self.client.get("/sandbox/deliveries", headers=auth(token))
        response.raise_for_status()
        return list(response.json()["deliveries"])

    def delivery_content(self, token: str, record_id: str) -> bytes:
        """The exact bytes the provider received for one send."""
        response = self.client.get(f"/sandbox/deliveries/{record_id}/content", headers=auth(token))
        response.raise_for_status()
        return response.content

    def stats(self, token: str) -> dict[str, Any]:
        """Counts of the account's records, requests and idempotency keys."""
        response = self.client.get("/sandbox/stats", headers=auth(token))
        response.raise_for_status()
        return dict(response.json())


@dataclass
class RunningPartnerSandbox(Generic[S]):
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: S
    server: BackgroundServer

    @property
    def api_url(self) -> str:
        """The API root, `…/api/v1`."""
        return f"{self.base_url}{API_PREFIX}"

    def create_account(
        self, name: str | None = None, token: str | None = None, organisation_number: str = ""
    ) -> SandboxAccount:
        """Create an account directly in the state (no HTTP round trip)."""
        account, issued = self.state.create_account(
            name or f"Test AB {secrets.token_hex(4)}", token, organisation_number
        )
        return SandboxAccount(account.account_id, issued, account.name)

    def stop(self) -> None:
        """Stop the server thread."""
        self.server.stop()


def serve(app: ASGIApp, state: S, *, host: str = "127.0.0.1") -> RunningPartnerSandbox[S]:
    """Serve `app` on a free port of `host`; the caller must `stop()` it."""
    server = BackgroundServer(app, host=host, port=0)
    return RunningPartnerSandbox(base_url=server.start(), state=state, server=server)
