"""Test helpers for other teams: run the Tripletex sandbox in-process and drive its admin API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import Steps, auth, json_of, operation, random_name, send
from nordflow_sandboxes.tripletex.app import create_app
from nordflow_sandboxes.tripletex.state import TripletexState


@dataclass(frozen=True)
class SandboxCompany:
    """A Tripletex company and the tokens an integration is given for it."""

    company_id: int
    name: str
    employee_token: str = field(repr=False)
    consumer_token: str = field(repr=False)

    def credentials(self) -> dict[str, str]:
        """What a Tripletex write connection takes."""
        return {"consumer_token": self.consumer_token, "employee_token": self.employee_token}


@dataclass(frozen=True)
class FaultSpec(kit.FaultSpec):
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    path_prefix: str = "/v2/"


class TripletexAdminOps(kit.BearerTenantAdmin):
    """The sandbox's `/sandbox/...` admin operations; a company is named by its employee token."""

    fault_spec = FaultSpec

    @operation
    def create_company(self, name: str | None = None) -> Steps[SandboxCompany]:
        """A new empty company; its employee and consumer tokens."""
        data = json_of(
            (
                yield from send(
                    "POST", "/sandbox/companies", json={"name": name or random_name("Test AS")}
                )
            )
        )
        return SandboxCompany(
            data["company_id"], data["name"], data["employee_token"], data["consumer_token"]
        )

    @operation
    def records(self, employee_token: str) -> Steps[dict[str, list[dict[str, Any]]]]:
        """Everything the company holds: customers, projects, products, orders, invoices."""
        path = "/sandbox/records"
        return dict(json_of((yield from send("GET", path, headers=auth(employee_token)))))

    @operation
    def expire_sessions(self, employee_token: str) -> Steps[int]:
        """End the company's session tokens now; how many ended."""
        response = yield from send("POST", "/sandbox/sessions/expire", headers=auth(employee_token))
        return int(json_of(response)["expired"])


class TripletexSandboxAdmin(TripletexAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""


class AsyncTripletexSandboxAdmin(TripletexAdminOps, kit.AsyncAdminClient):
    """The same admin client for asyncio tests."""


@dataclass
class RunningTripletexSandbox(kit.RunningSandbox[TripletexState]):
    """A sandbox served on a loopback port in a background thread."""

    @property
    def api_url(self) -> str:
        """The API root including `/v2` (Tripletex: https://tripletex.no/v2)."""
        return f"{self.base_url}/v2"

    def admin(self) -> TripletexSandboxAdmin:
        """A blocking admin client (close it, or use it as a context manager)."""
        return TripletexSandboxAdmin(self.base_url)

    def create_company(self, name: str | None = None) -> SandboxCompany:
        """Create a company directly in the state (no HTTP round trip)."""
        company, employee, consumer = self.state.create_company(name or random_name("Test AS"))
        return SandboxCompany(company.company_id, company.name, employee, consumer)


_runner = kit.Runner(TripletexState, create_app, RunningTripletexSandbox)
# `start_tripletex_sandbox(state=None, *, host=...)`: the caller must `stop()` it.
start_tripletex_sandbox = _runner.start
# `with running_tripletex_sandbox() as sandbox:` serves a sandbox for the block.
running_tripletex_sandbox = _runner.running
