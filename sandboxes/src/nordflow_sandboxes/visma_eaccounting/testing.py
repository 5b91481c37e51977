"""Test helpers for other teams: run the eAccounting sandbox in-process, seed it, drive it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import Steps, json_of, operation, random_name, send
from nordflow_sandboxes.visma_eaccounting import serialize as out
from nordflow_sandboxes.visma_eaccounting import service
from nordflow_sandboxes.visma_eaccounting.app import TOKEN_PATH, company_facts, create_app
from nordflow_sandboxes.visma_eaccounting.domain import Company
from nordflow_sandboxes.visma_eaccounting.state import VismaEAccountingState


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
class FaultSpec(kit.FaultSpec):
    """What `POST /sandbox/companies/{id}/faults` takes (see the README for the semantics)."""

    path_prefix: str = "/v2/"


class VismaEAccountingAdminOps(kit.TenantAdmin[str]):
    """The sandbox's `/sandbox/...` admin operations; a company is named by its id."""

    fault_spec = FaultSpec

    def where(self, tenant: str) -> tuple[str, dict[str, str]]:
        """`/sandbox/companies/{company id}`, no headers."""
        return f"/sandbox/companies/{tenant}", {}

    @operation
    def create_company(
        self,
        name: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scope: str | None = None,
    ) -> Steps[SandboxCompany]:
        """A new empty company (with seeded articles and a bank account) and its first grant."""
        asked = {"client_id": client_id, "client_secret": client_secret, "scope": scope}
        body = {
            "name": name or random_name(),
            **{key: value for key, value in asked.items() if value is not None},
        }
        response = yield from send("POST", "/sandbox/companies", json=body)
        return SandboxCompany.from_json(json_of(response))

    @operation
    def credit_invoice(
        self, company_id: str, invoice_id: str, invoice_date: date | None = None
    ) -> Steps[dict[str, Any]]:
        """Credit an invoice in full (`POST .../customerinvoices/{id}/credit`)."""
        body = {"invoice_date": invoice_date.isoformat()} if invoice_date else {}
        path = f"/sandbox/companies/{company_id}/customerinvoices/{invoice_id}/credit"
        return dict(json_of((yield from send("POST", path, json=body))))

    @operation
    def payments(self, company_id: str) -> Steps[list[dict[str, Any]]]:
        """Every payment registered in the company."""
        response = yield from send("GET", f"/sandbox/companies/{company_id}/payments")
        return list(json_of(response)["payments"])

    @operation
    def expire_access_tokens(self, company_id: str) -> Steps[int]:
        """End the company's access tokens now; the next API call answers 401."""
        path = f"/sandbox/companies/{company_id}/expire-access-tokens"
        return int(json_of((yield from send("POST", path)))["expired"])

    @operation
    def new_refresh_token(self, company_id: str) -> Steps[str]:
        """Another refresh token for the company's client (a re-authorization)."""
        path = f"/sandbox/companies/{company_id}/refresh-tokens"
        return str(json_of((yield from send("POST", path)))["refresh_token"])


class VismaEAccountingSandboxAdmin(VismaEAccountingAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` admin endpoints."""


class AsyncVismaEAccountingSandboxAdmin(VismaEAccountingAdminOps, kit.AsyncAdminClient):
    """The same admin client for asyncio tests."""


@dataclass
class RunningVismaEAccountingSandbox(kit.RunningSandbox[VismaEAccountingState]):
    """A sandbox served on a loopback port in a background thread."""

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
            name or random_name(), client_id=client_id
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


_runner = kit.Runner(VismaEAccountingState, create_app, RunningVismaEAccountingSandbox)
# `start_visma_eaccounting_sandbox(state=None, *, host=...)`: the caller must `stop()` it.
start_visma_eaccounting_sandbox = _runner.start
# `with running_visma_eaccounting_sandbox() as sandbox:` serves a sandbox for the block.
running_visma_eaccounting_sandbox = _runner.running
