"""Tripletex API v2 client: session tokens from the consumer and employee tokens, HTTP Basic,
`{value}` and paged `{values}` answers, rate limit, retries; customers, projects, products,
orders and invoicing an order."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from . import egress
from .resilience import Limiter, PartnerError, SlidingWindowLimiter, send_with_retries

DEFAULT_BASE_URL = "https://tripletex.no"
PAGE_SIZE = 1000


class TripletexError(PartnerError):
    """A Tripletex refusal; ``fields`` are its validation messages (field → message)."""

    def __init__(self, status: int, message: str, fields: dict[str, str] | None = None) -> None:
        detail = "; ".join(f"{k}: {v}" for k, v in (fields or {}).items())
        super().__init__(status, f"{message} [{detail}]" if detail else message)
        self.fields = fields or {}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class TripletexClient:
    """One company in Tripletex, the same code against the sandbox by base URL.

    The consumer token (the integration's) and the employee token (the company's) make a
    session token (`PUT /token/session/:create`), valid to the end of its expiration date
    (``session_days`` from today); it is renewed when it is due, and once more after a 401
    (the request, a create included, is then sent again: a 401 changed nothing). Reads are
    retried on 429, 5xx and timeouts; creates and actions only on 429 (Tripletex has no
    idempotency keys: after any other failure the caller looks up by its own reference).
    """

    def __init__(
        self,
        base_url: str,
        consumer_token: SecretStr,
        employee_token: SecretStr,
        *,
        timeout: float = 15.0,
        limiter: Limiter | None = None,
        session_days: int = 1,
        today: Callable[[], dt.date] = _today,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self._http = egress.client(
            base_url=(root if root.endswith("/v2") else f"{root}/v2") + "/",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._consumer = consumer_token
        self._employee = employee_token
        self._limiter: Limiter = limiter or SlidingWindowLimiter(100, 10.0)
        self._session_days = session_days
        self._today = today
        self._session: tuple[SecretStr, dt.date] | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TripletexClient({self._http.base_url!s})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -------------------------------------------------------------------------- session

    async def _session_token(self, rejected: SecretStr | None = None) -> SecretStr:
        async with self._lock:
            current = self._session
            if current is not None and current[0] != rejected and current[1] >= self._today():
                return current[0]
            expires = self._today() + dt.timedelta(days=self._session_days)
            response = await send_with_retries(
                lambda: self._http.put(
                    "token/session/:create",
                    params={
                        "consumerToken": self._consumer.get_secret_value(),
                        "employeeToken": self._employee.get_secret_value(),
                        "expirationDate": expires.isoformat(),
                    },
                )
            )
            if response.status_code >= 400:
                raise _error(response)
            token = SecretStr(str(response.json()["value"]["token"]))
            self._session = (token, expires)
            return token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        async def attempt(token: SecretStr) -> httpx.Response:
            basic = base64.b64encode(f"0:{token.get_secret_value()}".encode()).decode()
            slot = await self._limiter.acquire()
            try:
                response = await self._http.request(
                    method, path, params=params, json=json,
                    headers={"Authorization": f"Basic {basic}"},
                )  # fmt: skip
            finally:
                self._limiter.done(slot)
            if response.status_code == 429 and "Retry-After" not in response.headers:
                reset = response.headers.get("X-Rate-Limit-Reset")
                if reset is not None:
                    response.headers["Retry-After"] = reset
            return response

        async def send() -> httpx.Response:
            token = await self._session_token()
            response = await attempt(token)
            if response.status_code == 401:
                response = await attempt(await self._session_token(rejected=token))
            return response

        response = await send_with_retries(send, only_rejected=not idempotent)
        if response.status_code >= 400:
            raise _error(response)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    async def _value(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        value: dict[str, Any] = (await self._request(method, path, **kwargs))["value"]
        return value

    async def _all(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every value of a list, page by page (`from`, `count`)."""
        values: list[dict[str, Any]] = []
        start = 0
        while True:
            body = await self._request(
                "GET", path, params={**params, "from": str(start), "count": str(PAGE_SIZE)}
            )
            page = list(body.get("values") or [])
            values.extend(page)
            start += len(page)
            if not page or start >= int(body.get("fullResultSize") or 0):
                return values

    # ---------------------------------------------------------------------------- reads

    async def who_am_i(self) -> dict[str, Any]:
        """The session's company and employee (`employeeId` may manage projects)."""
        return await self._value("GET", "token/session/>whoAmI")

    async def vat_type(self, number: str) -> dict[str, Any] | None:
        """The VAT type of a number (3 = 25 %, 31 = 15 %, 33 = 12 %, 5 = 0 %), if any."""
        found = await self._all("ledger/vatType", {"number": number})
        return found[0] if found else None

    async def customers(self, **filters: str) -> list[dict[str, Any]]:
        """Customers by `customerAccountNumber`, `organizationNumber`, `email`, …"""
        return await self._all("customer", filters)

    async def projects(self, **filters: str) -> list[dict[str, Any]]:
        """Projects by `number` (equal), `name`, `customerId`, …"""
        return await self._all("project", filters)

    async def products(self, **filters: str) -> list[dict[str, Any]]:
        """Products by `number`, `name`, …"""
        return await self._all("product", filters)

    async def orders(
        self, order_date_from: dt.date, order_date_to: dt.date, **filters: str
    ) -> list[dict[str, Any]]:
        """Orders dated from (including) to (excluding), lines expanded."""
        params = {
            "orderDateFrom": order_date_from.isoformat(),
            "orderDateTo": order_date_to.isoformat(),
            "fields": "*,orderLines(*)",
            **filters,
        }
        return await self._all("order", params)

    async def order(self, order_id: int) -> dict[str, Any]:
        """One order, lines expanded."""
        return await self._value("GET", f"order/{order_id}", params={"fields": "*,orderLines(*)"})

    async def invoices(
        self, invoice_date_from: dt.date, invoice_date_to: dt.date, **filters: str
    ) -> list[dict[str, Any]]:
        """Invoices dated from (including) to (excluding)."""
        params = {
            "invoiceDateFrom": invoice_date_from.isoformat(),
            "invoiceDateTo": invoice_date_to.isoformat(),
            **filters,
        }
        return await self._all("invoice", params)

    # --------------------------------------------------------------------------- writes

    async def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /<resource>` (customer, project, product, order): only a 429 is retried."""
        return await self._value("POST", resource, json=body, idempotent=False)

    async def update(self, resource: str, record_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """`PUT /<resource>/{id}` with the fields to change (and the `version` read)."""
        return await self._value("PUT", f"{resource}/{record_id}", json=body, idempotent=False)

    async def invoice_order(
        self, order_id: int, invoice_date: dt.date, *, send_to_customer: bool = False
    ) -> dict[str, Any]:
        """`PUT /order/{id}/:invoice`: the order's invoice (only a 429 is retried)."""
        params = {
            "invoiceDate": invoice_date.isoformat(),
            "sendToCustomer": "true" if send_to_customer else "false",
        }
        return await self._value("PUT", f"order/{order_id}/:invoice", params=params,
                                 idempotent=False)  # fmt: skip


def _error(response: httpx.Response) -> TripletexError:
    try:
        body = response.json()
    except ValueError:
        return TripletexError(response.status_code, response.text[:200])
    if not isinstance(body, dict):
        return TripletexError(response.status_code, response.text[:200])
    fields = {
        str(m.get("field")): str(m.get("message"))
        for m in body.get("validationMessages") or []
        if isinstance(m, dict)
    }
    message = str(body.get("message") or body.get("developerMessage") or response.text[:200])
    return TripletexError(response.status_code, message, fields)
