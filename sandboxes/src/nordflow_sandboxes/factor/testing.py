"""Test helpers for other teams: run the factor sandbox (HTTP admin, HTTPS API, SFTP) on
loopback ports in a background thread, and drive its admin API."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nordflow_sandboxes.factor.app import Listeners, create_app
from nordflow_sandboxes.factor.state import FactorState
from nordflow_sandboxes.kit.testing import (
    AdminClient,
    BearerTenantAdmin,
    Steps,
    auth,
    json_of,
    operation,
    random_name,
    send,
)
from nordflow_sandboxes.server import BackgroundServer


@dataclass(frozen=True)
class FactorClient:
    """A client account at the factor: API token, SFTP login and client number."""

    account_id: str
    token: str
    client_number: str
    sftp_username: str
    sftp_password: str


class FactorAdminOps(BearerTenantAdmin):
    """The factor sandbox's admin operations."""

    @operation
    def create_client(self, /, name: str | None = None, **fields: Any) -> Steps[FactorClient]:
        """A new client account (random name, token, login unless given)."""
        body = {"name": name or random_name(), **fields}
        data = json_of((yield from send("POST", "/sandbox/accounts", json=body)))
        return FactorClient(
            data["account_id"],
            data["token"],
            data["client_number"],
            data["sftp_username"],
            data["sftp_password"],
        )

    @operation
    def files(self, token: str | None = None) -> Steps[list[dict[str, Any]]]:
        """Every file received (by one account when its token is given), oldest first."""
        headers = auth(token) if token else {}
        response = yield from send("GET", "/sandbox/files", headers=headers)
        return list(json_of(response)["files"])

    @operation
    def refuse(self, token: str, reason: str, count: int = 1, code: str = "E100") -> Steps[None]:
        """Refuse the account's next files."""
        body = {"reason": reason, "count": count, "code": code}
        json_of((yield from send("POST", "/sandbox/refusals", json=body, headers=auth(token))))

    @operation
    def sftp_fault(self, /, token: str, **fault: Any) -> Steps[None]:
        """An SFTP fault (``action``, ``stage``, ``count``, ``after_bytes``, ``delay_seconds``)."""
        json_of((yield from send("POST", "/sandbox/sftp-faults", json=fault, headers=auth(token))))

    @operation
    def settle(self, /, token: str, **body: Any) -> Steps[dict[str, Any]]:
        """Write a settlement file (see ``POST /sandbox/settlements``); its name and lines."""
        response = yield from send("POST", "/sandbox/settlements", json=body, headers=auth(token))
        return dict(json_of(response))

    @operation
    def info(self) -> Steps[dict[str, Any]]:
        """The SFTP and HTTPS listeners and the host key."""
        return dict(json_of((yield from send("GET", "/sandbox/info"))))


class FactorSandboxAdmin(FactorAdminOps, AdminClient):
    """Blocking admin client of the factor sandbox."""


@dataclass
class RunningFactorSandbox:
    """A factor sandbox on loopback ports."""

    base_url: str
    state: FactorState
    listeners: Listeners
    server: BackgroundServer
    trust_dir: Path

    @property
    def api_url(self) -> str:
        """The HTTPS API root, ``https://127.0.0.1:<port>/api/v1``."""
        return f"{self.listeners.https_url}/api/v1"

    @property
    def sftp_port(self) -> int:
        """The SFTP port."""
        return int(self.listeners.sftp.port)

    @property
    def host_key(self) -> str:
        """The SFTP host key line to pin."""
        return self.listeners.sftp.public_host_key

    @property
    def ca_file(self) -> Path:
        """The CA file clients trust for the HTTPS API."""
        return self.trust_dir / "ca.pem"

    def tls_context(self) -> ssl.SSLContext:
        """A client context trusting only the sandbox's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def admin(self) -> FactorSandboxAdmin:
        """An admin client (close it, or use it as a context manager)."""
        return FactorSandboxAdmin(self.base_url)

    def create_client(self, /, name: str | None = None, **fields: Any) -> FactorClient:
        """A client account made directly in the state."""
        account, token, extra = self.state.create_factor_account(
            name or random_name(), fields.get("token"), client_number=fields.get("client_number")
        )
        return FactorClient(
            account.account_id, token, extra.client_number, extra.sftp_username, extra.sftp_password
        )


@contextmanager
def running_factor_sandbox(
    state: FactorState | None = None, *, trust_dir: Path, host: str = "127.0.0.1"
) -> Iterator[RunningFactorSandbox]:
    """``with running_factor_sandbox(trust_dir=tmp_path) as factor:`` serves all three."""
    state = state or FactorState()
    listeners = Listeners(state, host)
    listeners.write_trust(trust_dir)
    server = BackgroundServer(create_app(state, listeners), host=host, port=0)
    base_url = server.start()
    try:
        yield RunningFactorSandbox(base_url, state, listeners, server, trust_dir)
    finally:
        server.stop()
        state.close()
