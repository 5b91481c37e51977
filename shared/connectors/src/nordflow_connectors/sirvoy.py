"""Sirvoy client: booking event webhooks (verify, parse) and a catch-up poll of invoices/payments.

What Sirvoy documents (help centre, "Use booking event webhooks"; blog "Adding a booking
event webhook"): a POST of the whole booking as JSON (payload version 2.0, `generatedAt`,
`event` = new | modified | cancelled | restored) to each registered HTTPS URL whenever a
booking changes; only 200 OK counts as received, anything else is retried up to 10 times
with exponential back-off and then discarded; callbacks may arrive out of order (order them
by `generatedAt`); Sirvoy sends GET health checks; callers come from published IP ranges.

What Sirvoy does NOT document, and this module ASSUMES (confirm with Sirvoy before production):
- a signature: Sirvoy relies on HTTPS and source IPs. `verify_webhook` checks the
  conventional `X-Sirvoy-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
  Until Sirvoy confirms a scheme, receive with a secret path/IP allowlist and `parse_event`.
- an event id: v1's `callbackId` was removed from the payload after 2024-09-01, so
  `SirvoyEvent.event_id` is a hash of the payload's content. Redeliveries of one callback
  carry the same body, hence the same id; a newer snapshot of the booking gets a new one.
- whether creating an invoice or registering a payment fires a `modified` callback, and the
  fields of `invoices[]` and `payments[]` (the items below are the sandbox's design).
- any REST API: Sirvoy's support says it offers no open API. `SirvoyClient` talks to the
  read API the Nordflow sandbox designs (`/api/v1/invoices`, `/api/v1/payments`, bearer
  token, `modifiedSince`, keyset paging), so a catch-up poll finds what a missed webhook
  carried; point it at whatever read access Sirvoy grants once known.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from . import egress
from .resilience import PartnerError, SlidingWindowLimiter, send_with_retries

SIGNATURE_HEADER = "X-Sirvoy-Signature"
DEFAULT_TOLERANCE = dt.timedelta(minutes=5)
API_PATH = "/api/v1/"

SirvoyEventName = Literal["new", "modified", "cancelled", "restored"]
InvoiceType = Literal["invoice", "cashReceipt"]


# ------------------------------------------------------------------------------ errors


class SirvoyWebhookError(Exception):
    """A webhook request that must be refused (answer 4xx; Sirvoy will retry it)."""


class InvalidSignature(SirvoyWebhookError):  # noqa: N818 - the name the callers expect
    """The signature header is missing, malformed, wrong, or its timestamp is stale.

    The message says which, and never contains the secret or any signature value.
    """


class InvalidPayload(SirvoyWebhookError):  # noqa: N818 - pairs with InvalidSignature
    """The body is not a booking event this module understands (the message names fields)."""


# ------------------------------------------------------------------------------ models


def _decimal(value: Any) -> Any:
    # Sirvoy sends amounts as JSON numbers and, in rooms, as strings ("price":"2000"); a
    # float goes through its shortest repr so 1457.1 stays 1457.1, not its binary expansion.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


Money = Annotated[Decimal, BeforeValidator(_decimal)]
Text = Annotated[str, BeforeValidator(_text)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, alias_generator=to_camel
    )


class SirvoyGuest(_Model):
    """The booking's guest, as the webhook documents it."""

    first_name: str | None = None
    last_name: str | None = None
    business_name: str | None = None
    address: str | None = None
    postcode: Text | None = None
    city: str | None = None
    country: str | None = None
    phone: Text | None = None
    email: str | None = None
    language: str | None = None


class SirvoyRoom(_Model):
    """One room of a booking (Sirvoy capitalises two of its keys)."""

    room_type_name: str | None = Field(default=None, alias="RoomTypeName")
    room_name: Text | None = Field(default=None, alias="RoomName")
    arrival_date: dt.date | None = None
    departure_date: dt.date | None = None
    adults: int | None = None
    quantity: int | None = None
    price: Money | None = None
    room_total: Money | None = None


class SirvoyRecipient(_Model):
    """Who an invoice is addressed to (ASSUMED shape)."""

    name: str | None = None
    business_name: str | None = None
    organisation_number: Text | None = None
    address: str | None = None
    postcode: Text | None = None
    city: str | None = None
    country: str | None = None
    email: str | None = None


class SirvoyInvoiceRow(_Model):
    """One invoice line; `unit_price` and `amount` include VAT (ASSUMED shape)."""

    description: str
    quantity: Money
    unit_price: Money
    vat_rate: Money
    account_code: Text | None = None
    amount: Money
    vat_amount: Money


class SirvoyPaymentRef(_Model):
    """A payment as listed on the invoice it pays (ASSUMED shape)."""

    payment_id: int
    amount: Money
    method: str | None = None
    provider: str | None = None
    provider_reference: str | None = None


class SirvoyPayment(_Model):
    """A payment on a booking or an invoice (ASSUMED shape).

    `provider` names the online payment solution that took it (e.g. "stripe"); Sirvoy voids
    a wrong payment instead of deleting it (its amount becomes zero).
    """

    payment_id: int
    booking_id: int | None = None
    invoice_id: int | None = None
    amount: Money
    currency: str | None = None
    payment_date: dt.date
    method: str | None = None
    provider: str | None = None
    provider_reference: str | None = None
    voided: bool = False
    modified_at: AwareDatetime | None = None


class SirvoyInvoice(_Model):
    """An invoice, cash receipt ("kontantfaktura") or credit invoice (ASSUMED shape).

    A credit invoice names the document it credits in `credited_invoice_id`.
    """

    invoice_id: int
    invoice_number: Text
    booking_id: int | None = None
    type: InvoiceType
    is_credit_invoice: bool = False
    credited_invoice_id: int | None = None
    credited_invoice_number: Text | None = None
    invoice_date: dt.date
    due_date: dt.date | None = None
    currency: str
    recipient: SirvoyRecipient = SirvoyRecipient()
    rows: tuple[SirvoyInvoiceRow, ...] = ()
    total_amount: Money
    total_vat: Money
    paid_amount: Money = Decimal(0)
    balance: Money = Decimal(0)
    payments: tuple[SirvoyPaymentRef, ...] = ()
    modified_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _credit_names_original(self) -> SirvoyInvoice:
        if self.is_credit_invoice and self.credited_invoice_id is None:
            raise ValueError("a credit invoice must name its original in creditedInvoiceId")
        return self

    @property
    def is_cash_invoice(self) -> bool:
        """A cash receipt: paid when issued (Fortnox `InvoiceType=CASHINVOICE`)."""
        return self.type == "cashReceipt"

    @property
    def external_payment_provider(self) -> str | None:
        """The online payment provider (e.g. "stripe") that paid this document, if any."""
        providers = sorted({p.provider.lower() for p in self.payments if p.provider})
        return providers[0] if providers else None

    @property
    def paid_via_external_provider(self) -> bool:
        """A cash invoice paid through e.g. Stripe: skip it, the provider's payout is booked.

        The Sirvoy → Fortnox rule: "Om en kontantfaktura är kopplad till en extern betalning
        tex Stripe hoppas den över då Stripe betalningen redan är bokförd".
        """
        return self.is_cash_invoice and self.external_payment_provider is not None


class SirvoyBooking(_Model):
    """The booking snapshot a webhook carries (documented fields), invoices and payments too."""

    property_id: int
    booking_id: int
    channel_booking_id: Text | None = None
    booking_date: AwareDatetime | None = None
    arrival_date: dt.date | None = None
    departure_date: dt.date | None = None
    cancelled: bool = False
    guest: SirvoyGuest = SirvoyGuest()
    guest_reference: Text | None = None
    booking_source: str | None = None
    rooms: tuple[SirvoyRoom, ...] = ()
    currency: str | None = None
    total_price: Money | None = None
    total_price_including_surcharges: Money | None = None
    payments: tuple[SirvoyPayment, ...] = ()
    invoices: tuple[SirvoyInvoice, ...] = ()


@dataclass(frozen=True)
class SirvoyEvent:
    """One booking event webhook, parsed.

    `event_id` is stable across redeliveries of the same callback (dedupe on it);
    `generated_at` orders snapshots of one booking, which Sirvoy may deliver out of order.
    """

    event_id: str
    event: SirvoyEventName
    version: str
    generated_at: dt.datetime | None
    booking: SirvoyBooking

    @property
    def property_id(self) -> int:
        """The Sirvoy property (account) the booking belongs to."""
        return self.booking.property_id

    @property
    def booking_id(self) -> int:
        """The booking's id."""
        return self.booking.booking_id

    @property
    def invoices(self) -> tuple[SirvoyInvoice, ...]:
        """Invoices and cash receipts on the booking, credit invoices excluded."""
        return tuple(i for i in self.booking.invoices if not i.is_credit_invoice)

    @property
    def credit_invoices(self) -> tuple[SirvoyInvoice, ...]:
        """Credit invoices on the booking; each names its original."""
        return tuple(i for i in self.booking.invoices if i.is_credit_invoice)

    @property
    def payments(self) -> tuple[SirvoyPayment, ...]:
        """Payments on the booking and its invoices."""
        return self.booking.payments


class _Stamp(BaseModel):
    """Parses one ISO 8601 instant that must carry a UTC offset."""

    at: AwareDatetime


# ------------------------------------------------------------------------------ webhook


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _signature_parts(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature(f"malformed {SIGNATURE_HEADER} header: expected t=<unix>,v1=<hex>")
    return timestamp, signatures


def verify_webhook(
    secret: SecretStr,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: dt.datetime | None = None,
    tolerance: dt.timedelta = DEFAULT_TOLERANCE,
) -> SirvoyEvent:
    """Check the (ASSUMED, see the module docstring) signature of a callback, then parse it.

    ``body`` must be the raw request body, byte for byte. Several ``v1=`` values are
    accepted (secret rotation). Raises `InvalidSignature` when the header is missing or
    malformed, no signature matches, or the timestamp is further than ``tolerance`` from
    ``now`` (a replay); `InvalidPayload` when the signed body is not a booking event.
    """
    header = _header(headers, SIGNATURE_HEADER)
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = _signature_parts(header)
    key = secret.get_secret_value().encode()
    expected = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    # Compare against every candidate so the time taken does not depend on which matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.strip().lower().encode())
    if not matched:
        raise InvalidSignature("signature does not match the body (wrong secret or altered body)")
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    skew = abs(moment.timestamp() - timestamp)
    if skew > tolerance.total_seconds():
        raise InvalidSignature(
            f"signature timestamp is {int(skew)} s away from now, beyond the "
            f"{int(tolerance.total_seconds())} s tolerance (stale or replayed)"
        )
    return parse_event(body)


def event_id_of(payload: Mapping[str, Any]) -> str:
    """A stable id for one callback: the SHA-256 of its canonical JSON (see the docstring)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sirvoy-" + hashlib.sha256(canonical.encode()).hexdigest()


# Sirvoy's pages write both "canceled" and "cancelled"; accept either spelling.
_EVENT_NAMES: dict[str, SirvoyEventName] = {
    "new": "new",
    "modified": "modified",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "restored": "restored",
}


def _event_name(raw: Any) -> SirvoyEventName:
    name = _EVENT_NAMES.get(str(raw).lower())
    if name is None:
        raise InvalidPayload(f"event: unknown value {str(raw)[:40]!r}")
    return name


def _problems(exc: ValidationError) -> str:
    # Field locations and messages only: never the input values (guest data).
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(root)'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def parse_event(body: bytes) -> SirvoyEvent:
    """Parse a booking event body (signed or not) into a `SirvoyEvent`."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayload("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidPayload("body is not a JSON object")
    if "event" not in payload:
        raise InvalidPayload("event: field required")
    try:
        booking = SirvoyBooking.model_validate(payload)
        # v2.0 has `generatedAt`; v1.0 had `generatedTime` (removed after 2024-09-01).
        stamp = payload.get("generatedAt") or payload.get("generatedTime")
        generated = _Stamp.model_validate({"at": stamp}).at if stamp else None
    except ValidationError as exc:
        raise InvalidPayload(_problems(exc)) from exc
    return SirvoyEvent(
        event_id=event_id_of(payload),
        event=_event_name(payload["event"]),
        version=str(payload.get("version") or ""),
        generated_at=generated,
        booking=booking,
    )


# ------------------------------------------------------------------------------- client

M = TypeVar("M", SirvoyInvoice, SirvoyPayment)


def _modified_since_param(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("modified-since must be an aware datetime")
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class SirvoyChanges:
    """What a catch-up poll found, and the watermark to poll from next time.

    ``server_time`` is the server's clock when the poll began; poll again from it (minus
    a small overlap, deduplicating by content) so nothing committed meanwhile is missed.
    """

    invoices: tuple[SirvoyInvoice, ...]
    payments: tuple[SirvoyPayment, ...]
    server_time: dt.datetime

    @property
    def credit_invoices(self) -> tuple[SirvoyInvoice, ...]:
        """The credit invoices among ``invoices``."""
        return tuple(i for i in self.invoices if i.is_credit_invoice)


class RecordListing(AsyncIterator[dict[str, Any]]):
    """Raw records of one resource changed at or after ``since``, exactly as the API sent them.

    A poller emits what the source returned, so it reads these rather than the parsed models.
    ``server_time`` is the first page's ``meta.serverTime`` (None until that page is read, or if
    the server sends none): nothing committed after it is missing from the listing.
    """

    def __init__(self, client: SirvoyClient, path: str, since: dt.datetime | None) -> None:
        self.server_time: dt.datetime | None = None
        self.complete = False
        self._client = client
        self._path = path
        self._since = since
        self._items = self._generate()

    def __aiter__(self) -> RecordListing:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._items.__anext__()

    async def _generate(self) -> AsyncIterator[dict[str, Any]]:
        params = {"modifiedSince": _modified_since_param(self._since)} if self._since else {}
        async for items, meta in self._client._pages(self._path, params):
            if self.server_time is None and meta.get("serverTime"):
                self.server_time = _Stamp.model_validate({"at": meta["serverTime"]}).at
            for item in items:
                yield item
        self.complete = True


class SirvoyClient:
    """Reads one Sirvoy account's invoices and payments (ASSUMED API, see the docstring).

    Reads are retried on 429/5xx/timeouts with jittered back-off, honouring Retry-After.
    Sirvoy documents no rate limit; pass ``rate_limit`` (calls per ``rate_window`` seconds)
    to pace the client anyway.
    """

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        timeout: float = 15.0,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        page_size: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = egress.client(
            base_url=base_url.rstrip("/") + API_PATH,
            timeout=timeout,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token.get_secret_value()}",
                "Accept": "application/json",
            },
        )
        self._limiter = SlidingWindowLimiter(rate_limit, rate_window) if rate_limit else None
        self._page_size = page_size

    def __repr__(self) -> str:
        return f"SirvoyClient({str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> SirvoyClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        async def send() -> httpx.Response:
            if self._limiter is None:
                return await self._http.get(path, params=params)
            slot = await self._limiter.acquire()
            try:
                return await self._http.get(path, params=params)
            finally:
                self._limiter.done(slot)

        response = await send_with_retries(send)
        if response.status_code >= 400:
            raise PartnerError(response.status_code, _error_message(response))
        body: dict[str, Any] = response.json()
        return body

    async def _pages(
        self, path: str, params: dict[str, str]
    ) -> AsyncIterator[tuple[list[dict[str, Any]], dict[str, Any]]]:
        cursor: str | None = None
        while True:
            query = {**params, "pageSize": str(self._page_size)}
            if cursor:
                query["cursor"] = cursor
            body = await self._get(path, query)
            meta = body.get("meta", {})
            yield list(body.get("data", [])), meta
            cursor = meta.get("nextCursor")
            if not cursor:
                return

    async def _listing(
        self, path: str, model: type[M], since: dt.datetime | None, server_times: list[dt.datetime]
    ) -> AsyncIterator[M]:
        params = {"modifiedSince": _modified_since_param(since)} if since else {}
        async for items, meta in self._pages(path, params):
            if not server_times and meta.get("serverTime"):
                server_times.append(_Stamp.model_validate({"at": meta["serverTime"]}).at)
            for item in items:
                yield model.model_validate(item)

    def invoices_modified_since(
        self, since: dt.datetime | None = None
    ) -> AsyncIterator[SirvoyInvoice]:
        """Invoices, cash receipts and credit invoices changed at or after ``since``."""
        return self._listing("invoices", SirvoyInvoice, since, [])

    def payments_modified_since(
        self, since: dt.datetime | None = None
    ) -> AsyncIterator[SirvoyPayment]:
        """Payments changed at or after ``since`` (voided ones included, amount zero)."""
        return self._listing("payments", SirvoyPayment, since, [])

    async def changes_since(self, since: dt.datetime | None = None) -> SirvoyChanges:
        """The catch-up poll: everything changed at or after ``since``, and the next watermark."""
        started = dt.datetime.now(dt.UTC)  # only if the server sends no serverTime
        invoice_times: list[dt.datetime] = []
        payment_times: list[dt.datetime] = []
        invoices = [i async for i in self._listing("invoices", SirvoyInvoice, since, invoice_times)]
        payments = [p async for p in self._listing("payments", SirvoyPayment, since, payment_times)]
        # The earlier of the two listings' start: nothing changed after it is unseen.
        starts = invoice_times + payment_times
        return SirvoyChanges(tuple(invoices), tuple(payments), min(starts) if starts else started)

    def invoice_records_modified_since(self, since: dt.datetime | None = None) -> RecordListing:
        """Raw invoices, cash receipts and credit invoices changed at or after ``since``."""
        return RecordListing(self, "invoices", since)

    def payment_records_modified_since(self, since: dt.datetime | None = None) -> RecordListing:
        """Raw payments changed at or after ``since`` (voided ones included, amount zero)."""
        return RecordListing(self, "payments", since)

    async def invoice_record(self, invoice_id: int | str) -> dict[str, Any]:
        """One invoice as the API sent it."""
        return await self._get(f"invoices/{invoice_id}")

    async def payment_record(self, payment_id: int | str) -> dict[str, Any]:
        """One payment as the API sent it."""
        return await self._get(f"payments/{payment_id}")

    async def booking_record(self, booking_id: int | str) -> dict[str, Any]:
        """One booking as the API sent it (the webhook's shape, invoices and payments included)."""
        return await self._get(f"bookings/{booking_id}")

    async def invoice(self, invoice_id: int) -> SirvoyInvoice:
        """One invoice, cash receipt or credit invoice."""
        return SirvoyInvoice.model_validate(await self._get(f"invoices/{invoice_id}"))

    async def payment(self, payment_id: int) -> SirvoyPayment:
        """One payment."""
        return SirvoyPayment.model_validate(await self._get(f"payments/{payment_id}"))

    async def booking(self, booking_id: int) -> SirvoyBooking:
        """The booking in the webhook's shape, invoices and payments included."""
        return SirvoyBooking.model_validate(await self._get(f"bookings/{booking_id}"))


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or response.text[:200])
    except (ValueError, AttributeError):
        return response.text[:200]
