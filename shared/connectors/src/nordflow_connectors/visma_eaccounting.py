"""Visma eAccounting API v2 client: OAuth2, paging, modified-since polling, limits, payments."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from enum import IntEnum
from typing import Any

import httpx
from pydantic import SecretStr

from . import egress
from .oauth import OAuthSession
from .resilience import Limiter, PartnerError, SlidingWindowLimiter, send_with_retries

DEFAULT_BASE_URL = "https://eaccountingapi.vismaonline.com"
DEFAULT_TOKEN_URL = "https://identity.vismaonline.com/connect/token"  # noqa: S105 - a URL
SCOPES = "ea:api ea:sales offline_access"
# developer.vismaonline.com/docs/rate-limits: 600 requests per minute per client and endpoint.
RATE_LIMIT = 600
RATE_WINDOW = 60.0
TOO_MANY_REQUESTS = 4010

_UUID_SEGMENT = re.compile(
    r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_TRY_AGAIN = re.compile(r"try again in (\d+) seconds?", re.IGNORECASE)


class PaymentType(IntEnum):
    """`PaymentType` of a customer invoice payment, as documented."""

    PARTIAL_PAYMENT = 1
    COMPLETE_PAYMENT = 2
    ROUNDING = 3
    BANK_CHARGE = 4


class VismaError(PartnerError):
    """eAccounting refused a request; `error_code` is its documented `ErrorCode` (e.g. 4010)."""

    def __init__(
        self, status: int, message: str, error_code: int | None, error_id: str | None
    ) -> None:
        super().__init__(status, message)
        self.error_code = error_code
        self.error_id = error_id


def modified_since_param(moment: dt.datetime) -> str:
    """`modifiedSinceUtc` as RFC 3339 UTC, rounded down to the second (never later than asked)."""
    if moment.tzinfo is None:
        raise ValueError("modified-since needs an aware datetime")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint_of(path: str) -> str:
    """The endpoint a path counts against for the rate limit (ids replaced by `{id}`)."""
    return _UUID_SEGMENT.sub("/{id}", "/" + path.strip("/").lower())


def _parse_utc(raw: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


class InvoiceListing(AsyncIterator[dict[str, Any]]):
    """Customer invoices modified since an instant, page by page.

    `server_time` is the first page's `Meta.ServerTimeUtc`: anything changed later has a later
    `ModifiedUtc`, so it is the next poll's watermark. Read it as `watermark` once the listing
    was iterated to the end (the property refuses earlier, so a half-read poll never advances).
    Overlap the next poll a little anyway (the API's clock and filter are not ours to check).
    """

    def __init__(self, client: VismaEAccountingClient, since: dt.datetime) -> None:
        self.since = since
        self.server_time: dt.datetime | None = None
        self.complete = False
        self._client = client
        self._items = self._generate()

    @property
    def watermark(self) -> dt.datetime:
        """Where the next poll starts: the server time when this listing began."""
        if not self.complete or self.server_time is None:
            raise RuntimeError("iterate the listing to the end before taking its watermark")
        return self.server_time

    def __aiter__(self) -> InvoiceListing:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._items.__anext__()

    async def _generate(self) -> AsyncIterator[dict[str, Any]]:
        params = {"modifiedSinceUtc": modified_since_param(self.since)}
        page = 1
        while True:
            body = await self._client.page("customerinvoices", params, page)
            meta = body.get("Meta") or {}
            if page == 1:
                self.server_time = _parse_utc(str(meta["ServerTimeUtc"]))
            for item in body.get("Data") or []:
                yield item
            if page >= int(meta.get("TotalNumberOfPages") or 0):
                break
            page += 1
        self.complete = True


class VismaEAccountingClient:
    """One tenant's eAccounting company. The same code runs against the sandbox by base URL.

    Reads are retried on 429, 5xx and timeouts; creates only on 429 (eAccounting has no
    idempotency keys: after any other failure the caller reads the invoice before trying again).
    """

    def __init__(
        self,
        base_url: str,
        oauth: OAuthSession,
        *,
        timeout: float = 15.0,
        rate_limit: int = RATE_LIMIT,
        rate_window: float = RATE_WINDOW,
        page_size: int = 200,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter_for: Callable[[str], Limiter] | None = None,
    ) -> None:
        self._http = egress.client(
            base_url=base_url.rstrip("/") + "/v2/",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )
        self._oauth = oauth
        self._rate = (rate_limit, rate_window)
        # One limiter per endpoint: this process's own, or ``limiter_for(endpoint)`` (a
        # ``budget.PgRateBudget`` shared with every service and replica using the client).
        self._limiter_for = limiter_for or (lambda _endpoint: SlidingWindowLimiter(*self._rate))
        self._limiters: dict[str, Limiter] = {}
        self.page_size = page_size

    async def aclose(self) -> None:
        """Close the connection pool (the OAuth session is the caller's to close)."""
        await self._http.aclose()

    def _limiter(self, path: str) -> Limiter:
        key = endpoint_of(path)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self._limiter_for(key)
        return limiter

    async def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        limiter = self._limiter(path)

        async def attempt(token: SecretStr) -> httpx.Response:
            slot = await limiter.acquire()
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {token.get_secret_value()}"},
                )
            finally:
                limiter.done(slot)
            _hint_retry_after(response)
            return response

        async def send() -> httpx.Response:
            return await self._oauth.authorized(attempt)

        response = await send_with_retries(send, only_rejected=not idempotent)
        if response.status_code >= 400:
            raise _error(response)
        body: dict[str, Any] = response.json()
        return body

    async def page(self, path: str, params: dict[str, str], page: int) -> dict[str, Any]:
        """One page (`$page`, `$pagesize`) of a list: `{Meta, Data}`."""
        query = {**params, "$page": str(page), "$pagesize": str(self.page_size)}
        return await self._request("GET", path, params=query)

    async def _all(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self.page(path, params or {}, page)
            items.extend(body.get("Data") or [])
            if page >= int((body.get("Meta") or {}).get("TotalNumberOfPages") or 0):
                return items
            page += 1

    def invoices_modified_since(self, since: dt.datetime) -> InvoiceListing:
        """Customer invoices with `ModifiedUtc` at or after `since`, rows included.

        Iterate it, then take `listing.watermark` for the next poll.
        """
        return InvoiceListing(self, since)

    async def invoice(self, invoice_id: str) -> dict[str, Any]:
        """One customer invoice."""
        return await self._request("GET", f"customerinvoices/{invoice_id}")

    async def customer(self, customer_id: str) -> dict[str, Any]:
        """One customer card."""
        return await self._request("GET", f"customers/{customer_id}")

    async def autoinvoice_recipients(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's AutoInvoice (e-invoice) recipients; empty when it cannot take one."""
        return await self._all(f"customers/{customer_id}/autoinvoicerecipients")

    async def bank_accounts(self) -> list[dict[str, Any]]:
        """The company's bank accounts (a payment names one as `CompanyBankAccountId`)."""
        return await self._all("bankaccounts")

    async def create_payment(
        self,
        *,
        invoice_id: str,
        amount: Decimal,
        currency: str,
        payment_date: dt.date,
        bank_account_id: str,
        payment_type: PaymentType = PaymentType.PARTIAL_PAYMENT,
        factoring_fee: Decimal | None = None,
        factoring_fee_account: int | None = None,
        bank_fee: Decimal | None = None,
        reference: str | None = None,
    ) -> dict[str, Any]:
        """Register a payment; only a 429 is retried here, the caller looks up anything else.

        There is no list of an invoice's payments: after an uncertain outcome (5xx, timeout)
        read the invoice and compare `RemainingAmount` with what it was before.
        """
        body: dict[str, Any] = {
            "CompanyBankAccountId": bank_account_id,
            "PaymentAmount": _amount(amount, "amount"),
            "PaymentCurrency": currency,
            "PaymentDate": payment_date.isoformat(),
            "PaymentType": int(payment_type),
        }
        if factoring_fee is not None:
            body["FactoringFeeAmount"] = _amount(factoring_fee, "factoring_fee")
            body["FactoringFeeAccountNumber"] = factoring_fee_account
        if bank_fee is not None:
            body["BankFeeAmount"] = _amount(bank_fee, "bank_fee")
        if reference is not None:
            body["Reference"] = reference
        return await self._request(
            "POST", f"customerinvoices/{invoice_id}/payments", idempotent=False, json=body
        )


def _amount(value: Decimal, name: str) -> float:
    # The repr of a float with at most 2 decimals is its exact decimal text on the wire.
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{name} has more than 2 decimals: {value}")
    return float(value)


def _hint_retry_after(response: httpx.Response) -> None:
    """eAccounting's 429 says "Try again in N seconds." in the body; make it a Retry-After."""
    if response.status_code != 429 or "Retry-After" in response.headers:
        return
    match = _TRY_AGAIN.search(response.text)
    if match:
        response.headers["Retry-After"] = match.group(1)


def _error(response: httpx.Response) -> VismaError:
    try:
        body = response.json()
    except ValueError:
        return VismaError(response.status_code, response.text[:200], None, None)
    if not isinstance(body, dict):
        return VismaError(response.status_code, response.text[:200], None, None)
    code = body.get("ErrorCode")
    message = str(body.get("DeveloperErrorMessage") or body.get("Message") or "")[:500]
    if body.get("Errors"):
        fields = "; ".join(
            f"{e.get('Field')}: {e.get('Message')}" for e in body["Errors"] if isinstance(e, dict)
        )
        message = f"{message} [{fields}]"
    error_code = int(code) if isinstance(code, int) else None
    suffix = f" (ErrorCode {error_code})" if error_code is not None else ""
    error_id = body.get("ErrorId")
    return VismaError(
        response.status_code,
        f"{message}{suffix}",
        error_code,
        str(error_id) if error_id else None,
    )
