"""Fortnox API v3 client: OAuth2 or a static token, paging, lastmodified polling, rate limit,
retries, payments, and the writes of the registers (customers, invoices, articles, projects,
orders, vouchers)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from . import egress
from .oauth import OAuthSession
from .resilience import Limiter, PartnerError, SlidingWindowLimiter, send_with_retries

# Fortnox's own clock: its `lastmodified` filter is wall-clock time in Sweden, whatever the
# tenant's zone (the partner's zone, not a tenant setting).
FORTNOX_API_ZONE = ZoneInfo("Europe/Stockholm")
DEFAULT_BASE_URL = "https://api.fortnox.se"
# fortnox.se/developer/authorization: authorization-code flow; the client authenticates with
# HTTP Basic; access tokens live 1 hour; every refresh rotates the refresh token (single use,
# valid 45 days).
DEFAULT_TOKEN_URL = "https://apps.fortnox.se/oauth-v1/token"  # noqa: S105 - a URL
ACCESS_TOKEN_LIFETIME = dt.timedelta(hours=1)
REFRESH_TOKEN_LIFETIME = dt.timedelta(days=45)


def lastmodified_param(moment: dt.datetime) -> str:
    """Fortnox's ``lastmodified`` filter: minute-grained Stockholm wall-clock time."""
    return moment.astimezone(FORTNOX_API_ZONE).strftime("%Y-%m-%d %H:%M")


class FortnoxClient:
    """One tenant's Fortnox company. The same code runs against the sandbox by base URL.

    ``limiter`` paces the calls (default: 25 per 5 s in this process; give a
    ``budget.PgRateBudget`` to share Fortnox's budget of the company with every other service
    and replica calling it).

    ``token`` is an `OAuthSession` (Fortnox's OAuth2: an access token refreshed ahead of
    expiry, and once more after a 401) or, for legacy integrations and the sandbox's fixed
    tokens, one static bearer token. The session is the caller's to close.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr | OAuthSession,
        *,
        timeout: float = 15.0,
        rate_limit: int = 25,
        rate_window: float = 5.0,
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        if not 1 <= page_size <= 500:
            raise ValueError("page_size must be 1..500 (Fortnox's limit)")
        self._http = egress.client(
            base_url=base_url.rstrip("/") + "/3/",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._token = token
        # The company's budget: this process's own window unless a shared one is given
        # (nordflow_connectors.budget.PgRateBudget, across services and replicas).
        self._limiter: Limiter = limiter or SlidingWindowLimiter(rate_limit, rate_window)
        self._page_size = page_size

    async def aclose(self) -> None:
        """Close the connection pool (an OAuth session is the caller's to close)."""
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        async def attempt(token: SecretStr) -> httpx.Response:
            slot = await self._limiter.acquire()
            try:
                return await self._http.request(
                    method,
                    path,
                    headers={"Authorization": f"Bearer {token.get_secret_value()}"},
                    **kwargs,
                )
            finally:
                self._limiter.done(slot)

        async def send() -> httpx.Response:
            if isinstance(self._token, OAuthSession):
                # A 401 did nothing, so even a create may be sent once more after refreshing.
                return await self._token.authorized(attempt)
            return await attempt(self._token)

        response = await send_with_retries(send, only_rejected=not idempotent)
        if response.status_code >= 400:
            raise PartnerError(response.status_code, _error_message(response))
        body: dict[str, Any] = response.json()
        return body

    async def _pages(
        self, path: str, key: str, params: dict[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            body = await self._request(
                "GET", path, params={**params, "page": str(page), "limit": str(self._page_size)}
            )
            for item in body.get(key, []):
                yield item
            meta = body.get("MetaInformation", {})
            if page >= int(meta.get("@TotalPages", 1)):
                return
            page += 1

    def invoices_modified_since(self, since: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        """List items of invoices modified at or after ``since`` (minute-grained)."""
        return self._pages("invoices", "Invoices", {"lastmodified": lastmodified_param(since)})

    async def invoice(self, document_number: str) -> dict[str, Any]:
        """The full invoice, rows included."""
        body = await self._request("GET", f"invoices/{document_number}")
        invoice: dict[str, Any] = body["Invoice"]
        return invoice

    async def customer(self, customer_number: str) -> dict[str, Any]:
        """One customer card."""
        body = await self._request("GET", f"customers/{customer_number}")
        customer: dict[str, Any] = body["Customer"]
        return customer

    def payments_modified_since(self, since: dt.datetime) -> AsyncIterator[dict[str, Any]]:
        """List items of invoice payments modified at or after ``since`` (minute-grained)."""
        return self._pages(
            "invoicepayments", "InvoicePayments", {"lastmodified": lastmodified_param(since)}
        )

    async def payment(self, number: str) -> dict[str, Any]:
        """One invoice payment in full (list items lack the mode of payment and account)."""
        body = await self._request("GET", f"invoicepayments/{number}")
        payment: dict[str, Any] = body["InvoicePayment"]
        return payment

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        """Every payment registered on an invoice, in full (to look up an uncertain create).

        List items lack ``ModeOfPayment`` and the account, so each payment is read in full.
        """
        numbers = [
            str(p["Number"])
            async for p in self._pages(
                "invoicepayments", "InvoicePayments", {"invoicenumber": document_number}
            )
            if str(p.get("InvoiceNumber")) == str(document_number)
        ]
        return [await self.payment(number) for number in numbers]

    async def create_payment(
        self,
        *,
        document_number: str,
        amount: Decimal,
        payment_date: dt.date,
        mode_of_payment: str,
        account: int,
    ) -> dict[str, Any]:
        """Register a payment; only a 429 is retried here, the caller looks up anything else."""
        body = await self._request(
            "POST",
            "invoicepayments",
            idempotent=False,
            json={
                "InvoicePayment": {
                    "InvoiceNumber": int(document_number),
                    # repr of a 2-decimal float is its exact decimal text on the wire
                    "Amount": float(amount),
                    "AmountCurrency": float(amount),
                    "PaymentDate": payment_date.isoformat(),
                    "ModeOfPayment": mode_of_payment,
                    "ModeOfPaymentAccount": account,
                }
            },
        )
        payment: dict[str, Any] = body["InvoicePayment"]
        return payment

    # ----------------------------------------------------------------- registers (writes)

    async def find(self, resource: str, key: str, wrapper: str) -> dict[str, Any] | None:
        """One record (``customers/K``, ``articles/K``, …), or None when Fortnox has none."""
        try:
            body = await self._request("GET", f"{resource}/{key}")
        except PartnerError as error:
            if error.status == 404:
                return None
            raise
        record: dict[str, Any] = body[wrapper]
        return record

    async def search(
        self, resource: str, list_key: str, params: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Every list item matching Fortnox's search parameters (containment: callers
        compare exactly)."""
        return [item async for item in self._pages(resource, list_key, params)]

    async def create(self, resource: str, wrapper: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /3/<resource>``; only a 429 is retried (the caller looks up anything else)."""
        answer = await self._request("POST", resource, idempotent=False, json={wrapper: body})
        record: dict[str, Any] = answer[wrapper]
        return record

    async def update(
        self, resource: str, key: str, wrapper: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """``PUT /3/<resource>/<key>`` with the fields to set (the same PUT twice sets the
        same values, so it is retried like a read)."""
        answer = await self._request("PUT", f"{resource}/{key}", json={wrapper: body})
        record: dict[str, Any] = answer[wrapper]
        return record

    async def action(self, resource: str, key: str, action: str, wrapper: str) -> dict[str, Any]:
        """``PUT /3/<resource>/<key>/<action>`` (bookkeep, cancel, credit, createinvoice …):
        only a 429 is retried; the answer's ``wrapper`` record."""
        answer = await self._request("PUT", f"{resource}/{key}/{action}", idempotent=False)
        record: dict[str, Any] = answer[wrapper]
        return record


def _error_message(response: httpx.Response) -> str:
    try:
        info = response.json().get("ErrorInformation", {})
        return str(info.get("message") or info.get("Message") or response.text[:200])
    except ValueError:
        return response.text[:200]
