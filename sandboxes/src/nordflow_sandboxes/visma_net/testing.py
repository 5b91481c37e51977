"""Test helpers for other teams: run the Visma.net sandbox in-process, drive its admin API, seed."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import httpx

from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.visma_net.app import create_app
from nordflow_sandboxes.visma_net.state import VismaNetState

FaultStatus = Literal[429, 500, 502, 503, 504]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


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
            "Authorization": f"Bearer {self.token}",
            "ipp-company-id": self.company_id,
            "Accept": "application/json",
        }


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = "/v1/"
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


def _company_body(name: str | None, token: str | None, company_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or f"Test AS {secrets.token_hex(4)}"}
    if token is not None:
        body["token"] = token
    if company_id is not None:
        body["company_id"] = company_id
    return body


def _company_from(response: httpx.Response) -> SandboxCompany:
    response.raise_for_status()
    data = response.json()
    return SandboxCompany(company_id=data["company_id"], token=data["token"], name=data["name"])


class VismaNetSandboxAdmin:
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints, plus seeding."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> VismaNetSandboxAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self._client.get("/sandbox/healthz").status_code == 200

    def create_company(
        self, name: str | None = None, token: str | None = None, company_id: str | None = None
    ) -> SandboxCompany:
        """A new empty company; random name, token and id unless given (a known token gains it)."""
        body = _company_body(name, token, company_id)
        return _company_from(self._client.post("/sandbox/companies", json=body))

    def inject_fault(self, company: SandboxCompany, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company."""
        spec = fault or FaultSpec()
        self._client.post(
            "/sandbox/faults", json=spec.as_json(), headers=company.headers
        ).raise_for_status()

    def clear_faults(self, company: SandboxCompany) -> None:
        """Drop the company's pending faults."""
        self._client.delete("/sandbox/faults", headers=company.headers).raise_for_status()

    def requests(self, company: SandboxCompany, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first (method, path, query, status, fault)."""
        response = self._client.get(
            "/sandbox/requests", params={"limit": limit}, headers=company.headers
        )
        response.raise_for_status()
        return list(response.json()["requests"])

    def stats(self, company: SandboxCompany) -> dict[str, Any]:
        """Counts of the company's customers, invoices, payments and requests."""
        response = self._client.get("/sandbox/stats", headers=company.headers)
        response.raise_for_status()
        return dict(response.json())

    def seed_customer(self, company: SandboxCompany, name: str | None = None, **fields: Any) -> str:
        """Create a customer through `POST /v1/customer`; returns its number."""
        body = customer_body(name, **fields)
        return _number_from(self._client.post("/v1/customer", json=body, headers=company.headers))

    def seed_invoice(
        self,
        company: SandboxCompany,
        customer_number: str,
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> str:
        """Create (and by default release) an invoice through the API; returns its number."""
        body = invoice_body(customer_number, lines, **fields)
        number = _number_from(
            self._client.post("/v1/customerinvoice", json=body, headers=company.headers)
        )
        if release:
            self._client.post(
                f"/v1/customerinvoice/{number}/action/release", json={}, headers=company.headers
            ).raise_for_status()
        return number

    def seed_credit_note(
        self,
        company: SandboxCompany,
        customer_number: str,
        credited: Sequence[tuple[str, Decimal]] = (),
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> str:
        """Create (and by default release) a credit note of invoices; returns its number."""
        body = credit_note_body(customer_number, credited, lines, **fields)
        number = _number_from(
            self._client.post("/v1/customerCreditNote", json=body, headers=company.headers)
        )
        if release:
            self._client.post(
                f"/v1/customerCreditNote/{number}/action/release", json={}, headers=company.headers
            ).raise_for_status()
        return number


class AsyncVismaNetSandboxAdmin:
    """The same admin and seeding client for asyncio tests."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncVismaNetSandboxAdmin:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def create_company(
        self, name: str | None = None, token: str | None = None, company_id: str | None = None
    ) -> SandboxCompany:
        """A new empty company; random name, token and id unless given."""
        body = _company_body(name, token, company_id)
        return _company_from(await self._client.post("/sandbox/companies", json=body))

    async def inject_fault(self, company: SandboxCompany, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company."""
        spec = fault or FaultSpec()
        response = await self._client.post(
            "/sandbox/faults", json=spec.as_json(), headers=company.headers
        )
        response.raise_for_status()

    async def clear_faults(self, company: SandboxCompany) -> None:
        """Drop the company's pending faults."""
        response = await self._client.delete("/sandbox/faults", headers=company.headers)
        response.raise_for_status()

    async def requests(self, company: SandboxCompany, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first."""
        response = await self._client.get(
            "/sandbox/requests", params={"limit": limit}, headers=company.headers
        )
        response.raise_for_status()
        return list(response.json()["requests"])

    async def stats(self, company: SandboxCompany) -> dict[str, Any]:
        """Counts of the company's customers, invoices, payments and requests."""
        response = await self._client.get("/sandbox/stats", headers=company.headers)
        response.raise_for_status()
        return dict(response.json())

    async def seed_customer(
        self, company: SandboxCompany, name: str | None = None, **fields: Any
    ) -> str:
        """Create a customer through `POST /v1/customer`; returns its number."""
        body = customer_body(name, **fields)
        response = await self._client.post("/v1/customer", json=body, headers=company.headers)
        return _number_from(response)

    async def seed_invoice(
        self,
        company: SandboxCompany,
        customer_number: str,
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> str:
        """Create (and by default release) an invoice through the API; returns its number."""
        body = invoice_body(customer_number, lines, **fields)
        response = await self._client.post(
            "/v1/customerinvoice", json=body, headers=company.headers
        )
        number = _number_from(response)
        if release:
            released = await self._client.post(
                f"/v1/customerinvoice/{number}/action/release", json={}, headers=company.headers
            )
            released.raise_for_status()
        return number

    async def seed_credit_note(
        self,
        company: SandboxCompany,
        customer_number: str,
        credited: Sequence[tuple[str, Decimal]] = (),
        lines: Sequence[LineSpec] = (LineSpec(),),
        *,
        release: bool = True,
        **fields: Any,
    ) -> str:
        """Create (and by default release) a credit note of invoices; returns its number."""
        body = credit_note_body(customer_number, credited, lines, **fields)
        response = await self._client.post(
            "/v1/customerCreditNote", json=body, headers=company.headers
        )
        number = _number_from(response)
        if release:
            released = await self._client.post(
                f"/v1/customerCreditNote/{number}/action/release", json={}, headers=company.headers
            )
            released.raise_for_status()
        return number


@dataclass
class RunningVismaNetSandbox:
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: VismaNetState
    _server: BackgroundServer

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
            name or f"Test AS {secrets.token_hex(4)}", token, company_id
        )
        return SandboxCompany(company_id=company.company_id, token=issued, name=company.name)

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()


def start_visma_net_sandbox(
    state: VismaNetState | None = None, *, host: str = "127.0.0.1"
) -> RunningVismaNetSandbox:
    """Serve a sandbox on a free port of `host`; the caller must `stop()` it."""
    state = state or VismaNetState()
    server = BackgroundServer(create_app(state), host=host, port=0)
    base_url = server.start()
    return RunningVismaNetSandbox(base_url=base_url, state=state, _server=server)


@contextmanager
def running_visma_net_sandbox(
    state: VismaNetState | None = None, *, host: str = "127.0.0.1"
) -> Iterator[RunningVismaNetSandbox]:
    """`with running_visma_net_sandbox() as sandbox:` serves a sandbox for the block."""
    sandbox = start_visma_net_sandbox(state, host=host)
    try:
        yield sandbox
    finally:
        sandbox.stop()
