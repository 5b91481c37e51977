"""Test helpers for other teams: run the Visma.net sandbox in-process, drive its admin API, seed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import Steps, auth, json_of, operation, random_name, send
from nordflow_sandboxes.visma_net.app import create_app
from nordflow_sandboxes.visma_net.state import VismaNetState


@dataclass(frozen=True)
class SandboxCompany:
    """A Visma.net company in the sandbox and the client token that opens it."""

    company_id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers a Visma.net client sends for this company."""
        return {
            **auth(self.token),
            "ipp-company-id": self.company_id,
            "Accept": "application/json",
        }


@dataclass(frozen=True)
class FaultSpec(kit.FaultSpec):
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    path_prefix: str = "/v1/"


@dataclass(frozen=True)
class LineSpec:
    """One invoice line to seed (amounts VAT exclusive; sandbox VAT code 3 is 25 %)."""

    description: str = "Consulting hour"
    quantity: Decimal = Decimal(1)
    unit_price: Decimal = Decimal(100)
    vat_code_id: str = "3"


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def wrapped(**fields: Any) -> dict[str, Any]:
    """Fields in Visma.net's update-DTO form: every scalar as `{"value": ...}`."""
    return {name: {"value": _plain(value)} for name, value in fields.items()}


def customer_body(
    name: str | None = None, number: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A `POST /v1/customer` body (number assigned by the sandbox when None)."""
    body = wrapped(name=name or f"Kunde {secrets.token_hex(3)} AS", **fields)
    if number is not None:
        body["number"] = {"value": number}
    return body


def invoice_body(
    customer_number: str, lines: Sequence[LineSpec] = (LineSpec(),), **fields: Any
) -> dict[str, Any]:
    """A `POST /v1/customerinvoice` body; extra header fields by their Visma.net names."""
    return {
        **wrapped(customerNumber=customer_number, **fields),
        "invoiceLines": [
            {
                "operation": "Insert",
                **wrapped(
                    description=line.description,
                    quantity=line.quantity,
                    unitPriceInCurrency=line.unit_price,
                    vatCodeId=line.vat_code_id,
                ),
            }
            for line in lines
        ],
    }


def credit_note_body(
    customer_number: str,
    credited: Sequence[tuple[str, Decimal]] = (),
    lines: Sequence[LineSpec] = (LineSpec(),),
    **fields: Any,
) -> dict[str, Any]:
    """A `POST /v1/customerCreditNote` body: its lines under `lines`, and one application
    line per `(invoice number, amount VAT included)` it credits."""
    return {
        **wrapped(customerNumber=customer_number, **fields),
        "lines": invoice_body(customer_number, lines)["invoiceLines"],
        "applicationLines": [
            {"operation": "Insert", **wrapped(documentType="Invoice", refNbr=ref, amountPaid=amt)}
            for ref, amt in credited
        ],
    }


def _number_from(response: httpx.Response) -> str:
    """The new record's number, from the Location header of a 201."""
    if response.status_code != 201:
        raise AssertionError(f"create failed: HTTP {response.status_code} {response.text}")
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def _created(
    company: SandboxCompany, resource: str, body: dict[str, Any], release: bool
) -> Steps[str]:
    """Create a record through `POST /v1/{resource}` (and release it); its number."""
    headers = company.headers
    number = _number_from((yield from send("POST", f"/v1/{resource}", json=body, headers=headers)))
    if release:
        path = f"/v1/{resource}/{number}/action/release"
        (yield from send("POST", path, json={}, headers=headers)).raise_for_status()
    return number


class VismaNetAdminOps(kit.TenantAdmin[SandboxCompany]):
    """The sandbox's `/sandbox/...` admin operations, plus seeding through the API."""

    fault_spec = FaultSpec

    def where(self, tenant: SandboxCompany) -> tuple[str, dict[str, str]]:
        """`/sandbox`, with the company's token and id headers."""
        return "/sandbox", tenant.headers

    @operation
    def create_company(
        self, name: str | None = None, token: str | None = None, company_id: str | None = None
    ) -> Steps[SandboxCompany]:
        """A new empty company; random name, token and id unless given (a known token gains it)."""
        asked = {"token": token, "company_id": company_id}
        body = {
            "name": name or random_name("Test AS"),
            **{key: value for key, value in asked.items() if value is not None},
        }
        data = json_of((yield from send("POST", "/sandbox/companies", json=body)))
        return SandboxCompany(company_id=data["company_id"], token=data["token"], name=data["name"])

    @operation
    def seed_customer(
        self, /, company: SandboxCompany, name: str | None = None, **fields: Any
    ) -> Steps[str]:
        """Create a customer through `POST /v1/customer`; returns its number."""
        body = customer_body(name, **fields)
        return _number_from(
            (yield from send("POST", "/v1/customer", json=body, headers=company.headers))
        )

    @operation
    def seed_invoice(
        self,
        /,
        company: SandboxCompany,
        customer_number: str,
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> Steps[str]:
        """Create (and by default release) an invoice through the API; returns its number."""
        body = invoice_body(customer_number, lines, **fields)
        return (yield from _created(company, "customerinvoice", body, release))

    @operation
    def seed_credit_note(
        self,
        /,
        company: SandboxCompany,
        customer_number: str,
        credited: Sequence[tuple[str, Decimal]] = (),
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> Steps[str]:
        """Create (and by default release) a credit note of invoices; returns its number."""
        body = credit_note_body(customer_number, credited, lines, **fields)
        return (yield from _created(company, "customerCreditNote", body, release))


class VismaNetSandboxAdmin(VismaNetAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints, plus seeding."""


class AsyncVismaNetSandboxAdmin(VismaNetAdminOps, kit.AsyncAdminClient):
    """The same admin and seeding client for asyncio tests."""


@dataclass
class RunningVismaNetSandbox(kit.RunningSandbox[VismaNetState]):
    """A sandbox served on a loopback port in a background thread."""

    @property
    def api_url(self) -> str:
        """The API root including `/v1` (for raw HTTP calls). `VismaNetClient` adds `/v1/`
        itself, so give it `base_url`, just as production gives it the API host."""
        return f"{self.base_url}/v1"

    def admin(self) -> VismaNetSandboxAdmin:
        """A blocking admin client (close it, or use it as a context manager)."""
        return VismaNetSandboxAdmin(self.base_url)

    def create_company(
        self, name: str | None = None, token: str | None = None, company_id: str | None = None
    ) -> SandboxCompany:
        """Create a company directly in the state (no HTTP round trip)."""
        company, issued = self.state.create_company(
            name or random_name("Test AS"), token, company_id
        )
        return SandboxCompany(company_id=company.company_id, token=issued, name=company.name)


_runner = kit.Runner(VismaNetState, create_app, RunningVismaNetSandbox)
# `start_visma_net_sandbox(state=None, *, host=...)`: the caller must `stop()` it.
start_visma_net_sandbox = _runner.start
# `with running_visma_net_sandbox() as sandbox:` serves a sandbox for the block.
running_visma_net_sandbox = _runner.running
