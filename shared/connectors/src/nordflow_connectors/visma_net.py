"""Visma.net ERP API client: paging, lastModified polling, rate limit, retries, ETags, payments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import httpx
from nordflow_schemas.money import CENT
from pydantic import SecretStr

from . import egress
from .resilience import PartnerError, SlidingWindowLimiter, retry_after_seconds, send_with_retries

DEFAULT_BASE_URL = "https://api.finance.visma.net"
COMPANY_HEADER = "ipp-company-id"
# Payment statuses after release: the applications are booked and the balances reduced.
RELEASED_STATUSES = frozenset({"Open", "Closed"})

TokenProvider = Callable[[], Awaitable[SecretStr]]
"""Returns a currently valid access token; called before every attempt (so it may refresh)."""


@runtime_checkable
class RefreshableTokenProvider(Protocol):
    """A token provider that can replace a token the API refused (401), e.g.
    `ClientCredentialsSession` (Visma Connect service integrations)."""

    async def __call__(self) -> SecretStr:
        """A currently valid access token."""
        ...

    async def refresh(self, rejected: SecretStr | None = None) -> SecretStr:
        """A new access token, unless another caller already replaced `rejected`."""
        ...


def static_token(token: SecretStr) -> TokenProvider:
    """A token provider that always returns the same access token."""

    async def provide() -> SecretStr:
        return token

    return provide


class RateLimitedError(PartnerError):
    """Visma.net answered 429 and asked for a longer wait than this client sleeps in place."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(429, message)
        self.retry_after = retry_after


class ConcurrentModificationError(PartnerError):
    """412 Precondition Failed: the record changed since the ETag sent in If-Match was read."""

    def __init__(self, resource: str, etag: str, message: str) -> None:
        super().__init__(412, f"{resource} was modified concurrently (If-Match {etag}): {message}")
        self.resource = resource
        self.etag = etag


ConcurrentModification = ConcurrentModificationError
"""The name the ledger services use for a lost optimistic-concurrency race."""


@dataclass(frozen=True)
class PaymentApplication:
    """One document a customer payment is applied to."""

    ref_nbr: str
    amount: Decimal
    document_type: str = "Invoice"


def last_modified_param(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """The `lastModifiedDateTime` filter value: wall-clock time in `zone`, milliseconds."""
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime")
    local = moment.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def etag_of(document: dict[str, Any]) -> str:
    """A document's ETag, from its `timeStamp` (Visma.net puts the ETag value there)."""
    stamp = document.get("timeStamp") or document.get("timestamp")
    if not stamp:
        raise KeyError("the document carries no timeStamp")
    return str(stamp)


def payment_released(payment: dict[str, Any]) -> bool:
    """Whether a payment has been released (releasing it again would be refused)."""
    return payment.get("status") in RELEASED_STATUSES


class _GiveUp(Exception):  # noqa: N818 - control flow, never escapes this module
    """Raised inside a send to stop retrying (a Retry-After too long to sleep through)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__("retry later")
        self.response = response


class VismaNetClient:
    """One tenant's Visma.net company. The same code runs against the sandbox by base URL.

    Authentication is a Visma Connect bearer access token from ``token_provider`` (a
    ``SecretStr`` for a fixed token, or an async callable asked before every attempt, such as
    a `ClientCredentialsSession`; one with a ``refresh`` method is asked for a new token after
    a 401 and the request sent once more), plus the ``ipp-company-id`` header when
    ``company_id`` is given (a token issued for one company tenant may not need it).

    Reads are retried on 429, 5xx and timeouts; creates and actions only on 429 (Visma.net
    has no idempotency keys). A 429 whose Retry-After exceeds ``max_retry_wait`` seconds is
    raised at once as :class:`RateLimitedError` so a poller can reschedule instead of sleeping
    through Visma.net's hourly window.
    """

    def __init__(
        self,
        base_url: str,
        token_provider: TokenProvider | SecretStr,
        company_id: str | None,
        *,
        timeout: float = 15.0,
        page_size: int = 100,
        api_timezone: str | dt.tzinfo = "UTC",
        rate_limit: int | None = None,
        rate_window: float = 3600.0,
        max_retry_wait: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be positive")
        self._tokens = (
            static_token(token_provider)
            if isinstance(token_provider, SecretStr)
            else token_provider
        )
        # After a 401 a refreshable provider is asked for a new token and the request sent
        # once more (a 401 did nothing, so this holds for creates too).
        self._refresh = (
            token_provider.refresh if isinstance(token_provider, RefreshableTokenProvider) else None
        )
        headers = {"Accept": "application/json"}
        if company_id:
            headers[COMPANY_HEADER] = company_id
        self._http = egress.client(
            base_url=base_url.rstrip("/") + "/v1/",
            timeout=timeout,
            transport=transport,
            headers=headers,
        )
        self._page_size = page_size
        self._zone = ZoneInfo(api_timezone) if isinstance(api_timezone, str) else api_timezone
        self._limiter = SlidingWindowLimiter(rate_limit, rate_window) if rate_limit else None
        self._max_retry_wait = max_retry_wait

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> VismaNetClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------------- transport

    async def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = True,
        if_match: str | None = None,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        content = None if body is None else json.dumps(body).encode()

        async def attempt(token: SecretStr) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            if if_match is not None:
                headers["If-Match"] = if_match
            slot = await self._limiter.acquire() if self._limiter else None
            try:
                return await self._http.request(
                    method, path, params=params, content=content, headers=headers
                )
            finally:
                if slot is not None:
                    SlidingWindowLimiter.done(slot)

        async def send() -> httpx.Response:
            token = await self._tokens()
            response = await attempt(token)
            if response.status_code == 401 and self._refresh is not None:
                response = await attempt(await self._refresh(token))
            hint = retry_after_seconds(response)
            if response.status_code == 429 and hint is not None and hint > self._max_retry_wait:
                raise _GiveUp(response)
            return response

        try:
            response = await send_with_retries(send, only_rejected=not idempotent)
        except _GiveUp as stop:
            response = stop.response
        if response.status_code == 429:
            raise RateLimitedError(_error_message(response), retry_after_seconds(response))
        if response.status_code >= 400:
            raise PartnerError(response.status_code, _error_message(response))
        return response

    async def _json(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = await self._send("GET", path, params=params)
        return _decode(response)

    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paged list. Visma.net answers a plain array whose items carry
        ``metadata {totalCount, maxPageSize}``; a page size above the maximum is cut to it."""
        page = 1
        previous_first: str | None = None
        while True:
            query = {**params, "pageNumber": str(page), "pageSize": str(self._page_size)}
            items = await self._json(path, query)
            if not isinstance(items, list):
                raise PartnerError(200, f"expected a JSON array from {path}")
            first = json.dumps(items[0], sort_keys=True, default=str) if items else None
            if first is not None and first == previous_first:
                # A server that ignored pageNumber would otherwise be read forever.
                raise PartnerError(200, f"{path} answered page {page} like page {page - 1}")
            previous_first = first
            metadata = _metadata(items)
            for item in items:
                if isinstance(item, dict):
                    item.pop("metadata", None)
                yield item
            effective = self._page_size
            if metadata and metadata.get("maxPageSize"):
                effective = min(effective, int(metadata["maxPageSize"]))
            if len(items) < effective:
                return
            if metadata and "totalCount" in metadata and page * effective >= metadata["totalCount"]:
                return
            page += 1

    # --------------------------------------------------------------------------- reads

    def invoices_modified_since(
        self, since: dt.datetime, *, inclusive: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Customer invoices changed at or after ``since`` (after it, with ``inclusive=False``).

        Polling: pass a watermark a little before the last run (overlap the window) and
        deduplicate by ``referenceNumber`` + ``timeStamp``; items may repeat across pages when
        records change while paging.
        """
        return self._pages(
            "customerinvoice",
            {
                "lastModifiedDateTime": last_modified_param(since, self._zone),
                "lastModifiedDateTimeCondition": ">=" if inclusive else ">",
            },
        )

    def payments_modified_since(
        self, since: dt.datetime, *, inclusive: bool = True
    ) -> AsyncIterator[dict[str, Any]]:
        """Customer payments changed at or after ``since`` (after it, with ``inclusive=False``).

        Poll them like invoices: overlap the window and deduplicate by content.
        """
        return self._pages(
            "customerpayment",
            {
                "lastModifiedDateTime": last_modified_param(since, self._zone),
                "lastModifiedDateTimeCondition": ">=" if inclusive else ">",
            },
        )

    async def invoice(self, reference_number: str) -> dict[str, Any]:
        """One customer invoice with its lines; ``timeStamp`` holds its current ETag."""
        response = await self._send("GET", f"customerinvoice/{reference_number}")
        invoice: dict[str, Any] = _decode(response)
        header = response.headers.get("ETag")
        if header and not invoice.get("timeStamp"):
            invoice["timeStamp"] = header.strip('"')
        return invoice

    async def credit_note(self, reference_number: str) -> dict[str, Any]:
        """One customer credit note (`customerCreditNote`), with its applications."""
        note: dict[str, Any] = await self._json(f"customerCreditNote/{reference_number}")
        return note

    async def customer(self, customer_number: str) -> dict[str, Any]:
        """One customer card."""
        customer: dict[str, Any] = await self._json(f"customer/{customer_number}")
        return customer

    async def payment(self, ref_nbr: str) -> dict[str, Any]:
        """One customer payment with its lines (see :func:`payment_released`)."""
        payment: dict[str, Any] = await self._json(f"customerpayment/{ref_nbr}")
        return payment

    async def payments_for_invoice(self, reference_number: str) -> list[dict[str, Any]]:
        """Every customer payment with a line applied to the invoice, released or not.

        Look here before creating a payment again after an uncertain failure, matching on your
        own ``paymentRef``. The server filter is narrowed client-side too (Visma.net ignores
        parameters it does not know).
        """
        return [
            payment
            async for payment in self._pages("customerpayment", {"invoiceRefNbr": reference_number})
            if any(
                str(line.get("refNbr")) == reference_number
                for line in payment.get("paymentLines") or []
            )
        ]

    # -------------------------------------------------------------------------- writes

    async def update_due_date(
        self, reference_number: str, due_date: dt.date, *, etag: str | None = None
    ) -> str:
        """Move an invoice's due date only if it is unchanged since ``etag`` was read.

        Without ``etag`` the current one is read first (no protection beyond that read).
        Returns the invoice's new ETag. Raises :class:`ConcurrentModificationError` on 412. Only a
        429 is retried: after a timeout or 5xx re-read the invoice and compare
        ``documentDueDate`` before trying again (the old ETag is stale if the change landed).
        """
        if etag is None:
            etag = etag_of(await self.invoice(reference_number))
        try:
            response = await self._send(
                "PUT",
                f"customerinvoice/{reference_number}",
                idempotent=False,
                if_match=_quoted(etag),
                body={"documentDueDate": {"value": due_date.isoformat()}},
            )
        except PartnerError as error:
            if error.status == 412:
                raise ConcurrentModificationError(
                    f"Invoice {reference_number}", etag, error.message
                ) from error
            raise
        new_etag: str = response.headers.get("ETag", "")
        return new_etag.strip('"')

    async def create_payment(
        self,
        *,
        customer_number: str,
        applications: Sequence[PaymentApplication],
        payment_date: dt.date,
        payment_ref: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        payment_method: str | None = None,
        cash_account: str | None = None,
        description: str | None = None,
        hold: bool = False,
        payment_type: Literal["Payment", "Refund"] = "Payment",
    ) -> str:
        """Create a customer payment (not yet released); returns its reference number.

        Balances change only on :meth:`release_payment`. Only a 429 is retried: after any other
        failure look the payment up by ``payment_ref`` with :meth:`payments_for_invoice`
        before creating again. ``amount`` defaults to the sum of the applications.
        """
        if not applications:
            raise ValueError("a payment needs at least one application")
        total = amount if amount is not None else sum((a.amount for a in applications), Decimal(0))
        body: dict[str, Any] = {
            "type": {"value": payment_type},
            "customer": {"value": customer_number},
            "applicationDate": {"value": payment_date.isoformat()},
            "paymentRef": {"value": payment_ref},
            "paymentAmount": {"value": _money(total)},
            "hold": {"value": hold},
            "paymentLines": [
                {
                    "operation": "Insert",
                    "documentType": {"value": a.document_type},
                    "refNbr": {"value": a.ref_nbr},
                    "amountPaid": {"value": _money(a.amount)},
                }
                for a in applications
            ],
        }
        for name, value in (
            ("currency", currency),
            ("paymentMethod", payment_method),
            ("cashAccount", cash_account),
            ("invoiceText", description),
        ):
            if value is not None:
                body[name] = {"value": value}
        response = await self._send("POST", "customerpayment", idempotent=False, body=body)
        location: str = response.headers.get("Location", "")
        if location:
            return location.rstrip("/").rsplit("/", 1)[-1]
        created = _decode(response) if response.content else {}
        if isinstance(created, dict) and created.get("refNbr"):
            return str(created["refNbr"])
        raise PartnerError(response.status_code, "the created payment's number was not returned")

    async def release_payment(
        self, ref_nbr: str, *, etag: str | None = None, payment_type: str = "Payment"
    ) -> dict[str, Any]:
        """Release a payment: its applications reduce the invoices' balances.

        Never retried except on 429: after a timeout or 5xx read the payment and check
        :func:`payment_released` before releasing again. With ``etag`` the release happens
        only if the payment is unchanged (412 → :class:`ConcurrentModificationError`).
        """
        try:
            response = await self._send(
                "POST",
                f"customerpayment/{ref_nbr}/action/release",
                idempotent=False,
                if_match=_quoted(etag) if etag else None,
                body={"type": {"value": payment_type}},
            )
        except PartnerError as error:
            if error.status == 412 and etag:
                raise ConcurrentModificationError(
                    f"Payment {ref_nbr}", etag, error.message
                ) from error
            raise
        result: dict[str, Any] = _decode(response) if response.content else {}
        return result


# ------------------------------------------------------------------------------ helpers


def _decode(response: httpx.Response) -> Any:
    """The JSON body with exact numbers: integers as int, others as Decimal (never float)."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise PartnerError(response.status_code, "the answer is not JSON") from exc


def _metadata(items: list[Any]) -> dict[str, Any] | None:
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
            return dict(item["metadata"])
    return None


def _money(amount: Decimal) -> float:
    # repr of a two-decimal float is its exact decimal text on the wire
    return float(amount.quantize(CENT))


def _quoted(etag: str) -> str:
    value = etag.strip()
    return value if value.startswith(('"', "W/")) else f'"{value}"'


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        message = body.get("ExceptionMessage") or body.get("message") or body.get("Message")
        if message:
            return str(message)[:500]
    return response.text[:200]
