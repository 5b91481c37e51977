"""Test helpers for other teams: run the eAccounting sandbox in-process, seed it, drive it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import httpx

from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.visma_eaccounting import serialize as out
from nordflow_sandboxes.visma_eaccounting import service
from nordflow_sandboxes.visma_eaccounting.app import TOKEN_PATH, company_facts, create_app
from nordflow_sandboxes.visma_eaccounting.domain import Company
from nordflow_sandboxes.visma_eaccounting.state import VismaEAccountingState

FaultStatus = Literal[429, 500, 502, 503, 504]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


@dataclass(frozen=True)
class SandboxCompany:
    """A company in the sandbox and the OAuth client credentials and grant that open it."""

    company_id: str
    name: str
    client_id: str
    client_secret: str
    refresh_token: str
    bank_account_id: str
    terms_of_payment_id: str
    articles: dict[str, str] = field(default_factory=dict)

    def article(self, vat_percent: int = 25) -> str:
        """The id of the seeded article with this VAT rate (25, 12, 6 or 0)."""
        return self.articles[str(vat_percent)]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxCompany:
        """From the admin API's answer."""
        return cls(
            company_id=data["company_id"],
            name=data["name"],
            client_id=data["client_id"],
            client_secret=data["client_secret"],
            refresh_token=data["refresh_token"],
            bank_account_id=data["bank_account_id"],
            terms_of_payment_id=data["terms_of_payment_id"],
            articles=dict(data["articles"]),
        )


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/companies/{id}/faults` takes (see the README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = "/v2/"
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


def _company_body(
    name: str | None, client_id: str | None, client_secret: str | None, scope: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name or f"Test AB {secrets.token_hex(4)}"}
    optional = {"client_id": client_id, "client_secret": client_secret, "scope": scope}
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def _company_from(response: httpx.Response) -> SandboxCompany:
    response.raise_for_status()
    return SandboxCompany.from_json(response.json())


def _json(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    return dict(response.json())


class VismaEAccountingSandboxAdmin:
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> VismaEAccountingSandboxAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self._client.get("/sandbox/healthz").status_code == 200

    def create_company(
        self,
        name: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
    ) -> SandboxCompany:
        """A new empty company (with seeded articles and a bank account) and its first grant."""
        body = _company_body(name, client_id, client_secret, scope)
        return _company_from(self._client.post("/sandbox/companies", json=body))

    def inject_fault(self, company_id: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company."""
        spec = fault or FaultSpec()
        url = f"/sandbox/companies/{company_id}/faults"
        self._client.post(url, json=spec.as_json()).raise_for_status()

    def clear_faults(self, company_id: str) -> None:
        """Drop the company's pending faults."""
        self._client.delete(f"/sandbox/companies/{company_id}/faults").raise_for_status()

    def requests(self, company_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first (method, path, query, status, fault)."""
        response = self._client.get(
            f"/sandbox/companies/{company_id}/requests", params={"limit": limit}
        )
        return list(_json(response)["requests"])

    def credit_invoice(
        self, company_id: str, invoice_id: str, invoice_date: date | None = None
    ) -> dict[str, Any]:
        """Credit an invoice in full (`POST .../customerinvoices/{id}/credit`)."""
        body = {"invoice_date": invoice_date.isoformat()} if invoice_date else {}
        response = self._client.post(
            f"/sandbox/companies/{company_id}/customerinvoices/{invoice_id}/credit", json=body
        )
        return _json(response)

    def payments(self, company_id: str) -> list[dict[str, Any]]:
        """Every payment registered in the company."""
        response = self._client.get(f"/sandbox/companies/{company_id}/payments")
        return list(_json(response)["payments"])

    def stats(self, company_id: str) -> dict[str, Any]:
        """Counts of the company's records, requests and redeemed refresh tokens."""
        return _json(self._client.get(f"/sandbox/companies/{company_id}/stats"))

    def expire_access_tokens(self, company_id: str) -> int:
        """End the company's access tokens now; the next API call answers 401."""
        url = f"/sandbox/companies/{company_id}/expire-access-tokens"
        return int(_json(self._client.post(url))["expired"])

    def new_refresh_token(self, company_id: str) -> str:
        """Another refresh token for the company's client (a re-authorization)."""
        url = f"/sandbox/companies/{company_id}/refresh-tokens"
        return str(_json(self._client.post(url))["refresh_token"])


class AsyncVismaEAccountingSandboxAdmin:
    """The same admin client for asyncio tests."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncVismaEAccountingSandboxAdmin:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def create_company(
        self,
        name: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
    ) -> SandboxCompany:
        """A new empty company (with seeded articles and a bank account) and its first grant."""
        body = _company_body(name, client_id, client_secret, scope)
        return _company_from(await self._client.post("/sandbox/companies", json=body))

    async def inject_fault(self, company_id: str, fault: FaultSpec | None = None) -> None:
        """Queue a fault for the company."""
        spec = fault or FaultSpec()
        url = f"/sandbox/companies/{company_id}/faults"
        (await self._client.post(url, json=spec.as_json())).raise_for_status()

    async def clear_faults(self, company_id: str) -> None:
        """Drop the company's pending faults."""
        url = f"/sandbox/companies/{company_id}/faults"
        (await self._client.delete(url)).raise_for_status()

    async def requests(self, company_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The company's last requests, oldest first."""
        response = await self._client.get(
            f"/sandbox/companies/{company_id}/requests", params={"limit": limit}
        )
        return list(_json(response)["requests"])

    async def credit_invoice(
        self, company_id: str, invoice_id: str, invoice_date: date | None = None
    ) -> dict[str, Any]:
        """Credit an invoice in full (`POST .../customerinvoices/{id}/credit`)."""
        body = {"invoice_date": invoice_date.isoformat()} if invoice_date else {}
        response = await self._client.post(
            f"/sandbox/companies/{company_id}/customerinvoices/{invoice_id}/credit", json=body
        )
        return _json(response)

    async def payments(self, company_id: str) -> list[dict[str, Any]]:
        """Every payment registered in the company."""
        response = await self._client.get(f"/sandbox/companies/{company_id}/payments")
        return list(_json(response)["payments"])

    async def stats(self, company_id: str) -> dict[str, Any]:
        """Counts of the company's records, requests and redeemed refresh tokens."""
        return _json(await self._client.get(f"/sandbox/companies/{company_id}/stats"))

    async def expire_access_tokens(self, company_id: str) -> int:
        """End the company's access tokens now; the next API call answers 401."""
        url = f"/sandbox/companies/{company_id}/expire-access-tokens"
        return int(_json(await self._client.post(url))["expired"])

    async def new_refresh_token(self, company_id: str) -> str:
        """Another refresh token for the company's client (a re-authorization)."""
        url = f"/sandbox/companies/{company_id}/refresh-tokens"
        return str(_json(await self._client.post(url))["refresh_token"])


@dataclass
class RunningVismaEAccountingSandbox:
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: VismaEAccountingState
    _server: BackgroundServer

    @property
    def token_url(self) -> str:
        """Where production has `https://identity.vismaonline.com/connect/token`."""
        return f"{self.base_url}{TOKEN_PATH}"

    @property
    def api_url(self) -> str:
        """The API root including `/v2` (for raw HTTP). `VismaEAccountingClient` takes `base_url`
        and adds `/v2/` itself, as production gives it `https://eaccountingapi.vismaonline.com`."""
        return f"{self.base_url}/v2"

    def admin(self) -> VismaEAccountingSandboxAdmin:
        """A blocking admin client (close it, or use it as a context manager)."""
        return VismaEAccountingSandboxAdmin(self.base_url)

    def create_company(
        self, name: str | None = None, *, client_id: str | None = None
    ) -> SandboxCompany:
        """Create a company directly in the state (no HTTP round trip)."""
        company, client, refresh = self.state.create_company(
            name or f"Test AB {secrets.token_hex(4)}", client_id=client_id
        )
        return SandboxCompany.from_json(
            company_facts(company, client.client_id, client.client_secret, refresh)
        )

    def _company(self, company_id: str) -> Company:
        company = self.state.company(company_id)
        if company is None:
            raise KeyError(company_id)
        return company

    def seed_customer(self, company_id: str, **fields: Any) -> dict[str, Any]:
        """Create a customer straight in the state (same rules as `POST /v2/customers`)."""
        body: dict[str, Any] = {
            "Name": f"Kund {secrets.token_hex(3)} AB",
            "InvoiceCity": "Stockholm",
            "InvoicePostalCode": "111 22",
            **fields,
        }
        company = self._company(company_id)
        with self.state.lock:
            customer = service.create_customer(company, body, self.state.now())
            return out.customer(customer, company)

    def seed_invoice(
        self,
        company_id: str,
        customer_id: str,
        *,
        rows: list[dict[str, Any]] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create an invoice straight in the state (same rules as `POST /v2/customerinvoices`).

        Without `rows`: one row of the seeded 25 % article, 1 x 100.00 (total 125.00).
        """
        company = self._company(company_id)
        default_article = next(a.id for a in company.articles.values() if a.number == "1")
        body: dict[str, Any] = {
            "CustomerId": customer_id,
            "Rows": rows or [{"ArticleId": default_article, "Quantity": 1, "UnitPrice": 100}],
            **fields,
        }
        with self.state.lock:
            today = self.state.today()
            invoice = service.create_invoice(company, body, self.state.now(), today)
            return out.invoice(invoice, company, today)

    def seed_credit_invoice(
        self, company_id: str, invoice_id: str, *, invoice_date: date | None = None
    ) -> dict[str, Any]:
        """Credit an invoice in full straight in the state (as the admin `credit` action)."""
        company = self._company(company_id)
        with self.state.lock:
            today = self.state.today()
            credit = service.credit_invoice(
                company, invoice_id, self.state.now(), today, invoice_date
            )
            return out.invoice(credit, company, today)

    def stop(self) -> None:
        """Stop the server thread."""
        self._server.stop()


def start_visma_eaccounting_sandbox(
    state: VismaEAccountingState | None = None, *, host: str = "127.0.0.1"
) -> RunningVismaEAccountingSandbox:
    """Serve a sandbox on a free port of `host`; the caller must `stop()` it."""
    state = state or VismaEAccountingState()
    server = BackgroundServer(create_app(state), host=host, port=0)
    base_url = server.start()
    return RunningVismaEAccountingSandbox(base_url=base_url, state=state, _server=server)


@contextmanager
def running_visma_eaccounting_sandbox(
    state: VismaEAccountingState | None = None, *, host: str = "127.0.0.1"
) -> Iterator[RunningVismaEAccountingSandbox]:
    """`with running_visma_eaccounting_sandbox() as sandbox:` serves a sandbox for the block."""
    sandbox = start_visma_eaccounting_sandbox(state, host=host)
    try:
        yield sandbox
    finally:
        sandbox.stop()
