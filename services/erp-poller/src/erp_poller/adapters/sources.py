"""Source adapters: what changed in a window, and each document with what the mapper needs.

One adapter per polled system wraps its production client from ``nordflow_connectors``. The
poller only sees `Source` (``erp_poller.service.ports``): list the changes since an instant
(a `Listing`, which may carry the server's own watermark), then fetch each change as a
`Document` — the raw payload as the source returned it, its kind, and the source's related
records the mapper reads (the tenant's profile is added when the document is emitted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from nordflow_connectors import egress
from nordflow_connectors.budget import PgRateBudget, budget_key, per_endpoint
from nordflow_connectors.client_credentials import ClientCredentialsSession
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthSession, Tokens
from nordflow_connectors.sirvoy import SirvoyClient
from nordflow_connectors.visma_eaccounting import VismaEAccountingClient
from nordflow_connectors.visma_net import VismaNetClient
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import DocumentKind
from pydantic import SecretStr

from ..domain.connections import Connection
from ..domain.credentials import (
    FortnoxOAuthCredentials,
    SirvoyCredentials,
    TokenCredentials,
    VismaEAccountingCredentials,
    VismaNetClientCredentials,
    VismaNetCredentials,
    parse_credentials,
)
from ..domain.documents import (
    Document,
    fortnox_kind,
    payment_document_id,
    sirvoy_kind,
    visma_eaccounting_kind,
    visma_net_kind,
)
from ..service.ports import Change, FetchCache, Listing, Source
from .tokens import PgTokenStore

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _changed_at(record: dict[str, Any]) -> dt.datetime | None:
    """A Sirvoy record's ``modifiedAt`` (aware), if it has a readable one."""
    raw = record.get("modifiedAt")
    try:
        moment = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00")) if raw else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


async def _with_customer(
    cache: FetchCache, number: str | None, read: Callable[[str], Awaitable[Any]]
) -> dict[str, dict[str, Any]]:
    """``related`` holding the document's customer card, read once per run (none without a
    customer number)."""
    if not number:
        return {}
    return {"customer": await cache.get(f"customer:{number}", lambda: read(number))}


# ----------------------------------------------------------------------------- Fortnox


class FortnoxSource:
    """Fortnox v3 invoices (credit invoices included) with their customer cards, and invoice
    payments (``payment:<Number>``, the invoice paid as ``related["invoice"]``): they are in
    the books already, so mapper reports them as recorded at the source and ledger-closer,
    whose own payments come back this way too, never books them again.

    ``session`` is the connection's OAuth session (None for a fixed token).
    """

    system = SourceSystem.FORTNOX

    def __init__(self, client: FortnoxClient, session: OAuthSession | None = None) -> None:
        self.client = client
        self.session = session

    def changes_since(self, since: dt.datetime) -> Listing:
        """Invoices, then invoice payments, by ``lastmodified`` (minute-grained, Stockholm)."""

        async def changes() -> AsyncIterator[Change]:
            async for item in self.client.invoices_modified_since(since):
                yield Change.of(str(item["DocumentNumber"]))
            async for item in self.client.payments_modified_since(since):
                yield Change.of(payment_document_id(item["Number"]))

        return Listing(changes())

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The invoice, rows included, and its customer card; or a payment in full."""
        if change.kind == "payment":
            payment = await self.client.payment(change.ref)
            paid = _text(payment.get("InvoiceNumber"))
            if paid is None:
                return None
            return Document(
                change.document_id,
                _text(payment.get("Number")) or change.ref,
                DocumentKind.PAYMENT,
                payment,
                {"invoice": {"document_id": paid, "document_number": paid}},
            )
        invoice = await self.client.invoice(change.ref)
        related = await _with_customer(
            cache, _text(invoice.get("CustomerNumber")), self.client.customer
        )
        number = str(invoice.get("DocumentNumber") or change.ref)
        return Document(number, number, fortnox_kind(invoice), invoice, related)

    async def aclose(self) -> None:
        """Close the client and its OAuth session."""
        await self.client.aclose()
        if self.session is not None:
            await self.session.aclose()


# ------------------------------------------------------------------- Visma eAccounting


class VismaEAccountingSource:
    """eAccounting customer invoices (``IsCreditInvoice`` for credits) with their customers.

    The watermark is the listing's ``Meta.ServerTimeUtc`` (eAccounting's own clock).
    eAccounting has no list of payments, so none are polled.
    """

    system = SourceSystem.VISMA_EACCOUNTING

    def __init__(self, client: VismaEAccountingClient, session: OAuthSession) -> None:
        self.client = client
        self.session = session

    def changes_since(self, since: dt.datetime) -> Listing:
        """Invoices by ``modifiedSinceUtc``."""
        listing = self.client.invoices_modified_since(since)

        async def changes() -> AsyncIterator[Change]:
            async for item in listing:
                yield Change.of(str(item["Id"]))

        return Listing(changes(), lambda: listing.server_time if listing.complete else None)

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The invoice and its customer card."""
        if change.kind != "invoice":
            return None
        invoice = await self.client.invoice(change.ref)
        related = await _with_customer(
            cache, _text(invoice.get("CustomerId")), self.client.customer
        )
        # A credit invoice names the one it credits by id only; the mapper needs its number
        # and date (the canonical credit note's preceding invoice).
        credited = _text(invoice.get("ReferringInvoiceId"))
        if credited and visma_eaccounting_kind(invoice) is DocumentKind.CREDIT_NOTE:
            related["credited_invoice"] = await cache.get(
                f"invoice:{credited}", lambda: self.client.invoice(credited)
            )
        return Document(
            str(invoice.get("Id") or change.ref),
            _text(invoice.get("InvoiceNumber")),
            visma_eaccounting_kind(invoice),
            invoice,
            related,
        )

    async def aclose(self) -> None:
        """Close the client and its OAuth session."""
        await self.client.aclose()
        await self.session.aclose()


# ---------------------------------------------------------------------------- Visma.net


def _customer_number(invoice: dict[str, Any]) -> str | None:
    customer = invoice.get("customer")
    if isinstance(customer, dict):
        return _text(customer.get("number") or customer.get("id"))
    return _text(invoice.get("customerNumber") or customer)


def _value(raw: Any) -> Any:
    return raw.get("value") if isinstance(raw, dict) else raw


def _applied(payment: dict[str, Any]) -> list[str]:
    """The reference numbers of the documents a Visma.net payment is applied to."""
    refs = [
        str(_value(line.get("refNbr")))
        for line in payment.get("paymentLines") or []
        if isinstance(line, dict) and _value(line.get("refNbr"))
    ]
    return list(dict.fromkeys(refs))


class VismaNetSource:
    """Visma.net customer invoices and credit notes with their customers, and customer
    payments: one document per invoice a payment is applied to (``payment:<refNbr>@<invoice>``,
    that invoice as ``related["invoice"]``)."""

    system = SourceSystem.VISMA_NET

    def __init__(
        self, client: VismaNetClient, session: ClientCredentialsSession | None = None
    ) -> None:
        self.client = client
        self.session = session

    def changes_since(self, since: dt.datetime) -> Listing:
        """Invoices, then payments, by ``lastModifiedDateTime >=``."""

        async def changes() -> AsyncIterator[Change]:
            async for item in self.client.invoices_modified_since(since):
                yield Change.of(str(item["referenceNumber"]))
            async for item in self.client.payments_modified_since(since):
                # One document per invoice the payment is applied to: a payment of several
                # invoices pays each its own share.
                for invoice in _applied(item):
                    yield Change.of(payment_document_id(f"{item['refNbr']}@{invoice}"))

        return Listing(changes())

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The invoice and its customer card, or the payment and the invoice it pays."""
        if change.kind == "payment":
            return await self._payment(change)
        invoice = await self.client.invoice(change.ref)
        related = await _with_customer(cache, _customer_number(invoice), self.client.customer)
        kind = visma_net_kind(invoice)
        if kind is DocumentKind.CREDIT_NOTE:
            # Its original: the first invoice it is applied to (for the original's date when
            # `origInvoiceDate` was left at its default).
            original = next(
                (
                    str(_value(a.get("refNbr")))
                    for a in invoice.get("applications") or []
                    if isinstance(a, dict)
                    and str(_value(a.get("docType")) or "").lower() == "invoice"
                    and _value(a.get("refNbr"))
                ),
                None,
            )
            if original:
                related["credited_invoice"] = await cache.get(
                    f"invoice:{original}", lambda: self.client.invoice(original)
                )
        number = str(invoice.get("referenceNumber") or change.ref)
        return Document(number, number, kind, invoice, related)

    async def _payment(self, change: Change) -> Document | None:
        """The payment's share of one invoice (``payment:<refNbr>@<invoice>``); a payment
        named without its invoice (a user's sync) gives its first invoice's share."""
        ref, _, invoice = change.ref.partition("@")
        payment = await self.client.payment(ref)
        applied = _applied(payment)
        if not applied or (invoice and invoice not in applied):
            return None  # applied to no document (yet), or no longer to this one
        invoice = invoice or applied[0]
        return Document(
            payment_document_id(f"{ref}@{invoice}"),
            _text(payment.get("refNbr")) or ref,
            DocumentKind.PAYMENT,
            payment,
            {"invoice": {"document_id": invoice, "document_number": invoice}},
        )

    async def aclose(self) -> None:
        """Close the client and its token session."""
        await self.client.aclose()
        if self.session is not None:
            await self.session.aclose()


# ------------------------------------------------------------------------------- Sirvoy


class SirvoySource:
    """Sirvoy invoices, cash receipts and credit invoices with their booking, and payments
    registered on an invoice (with that invoice as ``related["invoice"]``).

    The watermark is the earlier ``serverTime`` of the two listings.
    """

    system = SourceSystem.SIRVOY

    def __init__(self, client: SirvoyClient) -> None:
        self.client = client

    def changes_since(self, since: dt.datetime) -> Listing:
        """Invoices, then payments, by ``modifiedSince``."""
        invoices = self.client.invoice_records_modified_since(since)
        payments = self.client.payment_records_modified_since(since)

        async def changes() -> AsyncIterator[Change]:
            async for item in invoices:
                yield Change.of(str(item["invoiceId"]))
            async for item in payments:
                yield Change.of(payment_document_id(item["paymentId"]))

        def watermark() -> dt.datetime | None:
            if not (invoices.complete and payments.complete):
                return None
            if invoices.server_time is None or payments.server_time is None:
                return None
            return min(invoices.server_time, payments.server_time)

        return Listing(changes(), watermark)

    async def _booking(self, booking_id: Any, cache: FetchCache) -> dict[str, Any] | None:
        booking = _text(booking_id)
        if booking is None:
            return None
        return await cache.get(f"booking:{booking}", lambda: self.client.booking_record(booking))

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The invoice with its booking, or the payment with the invoice it pays."""
        if change.kind == "payment":
            return await self._payment(change, cache)
        invoice = await self.client.invoice_record(change.ref)
        related: dict[str, dict[str, Any]] = {}
        booking = await self._booking(invoice.get("bookingId"), cache)
        if booking is not None:
            related["booking"] = booking
        return Document(
            str(invoice.get("invoiceId") or change.ref),
            _text(invoice.get("invoiceNumber")),
            sirvoy_kind(invoice),
            invoice,
            related,
            _changed_at(invoice),
        )

    async def _payment(self, change: Change, cache: FetchCache) -> Document | None:
        payment = await self.client.payment_record(change.ref)
        invoice_id = _text(payment.get("invoiceId"))
        if invoice_id is None:
            return None  # a booking prepayment: it flows once it is put on an invoice
        invoice = await cache.get(
            f"invoice:{invoice_id}", lambda: self.client.invoice_record(invoice_id)
        )
        related: dict[str, dict[str, Any]] = {
            "invoice": {
                "document_id": invoice_id,
                "document_number": _text(invoice.get("invoiceNumber")),
            },
        }
        booking = await self._booking(payment.get("bookingId"), cache)
        if booking is not None:
            related["booking"] = booking
        return Document(
            change.document_id,
            change.ref,
            DocumentKind.PAYMENT,
            payment,
            related,
            _changed_at(payment),
        )

    async def aclose(self) -> None:
        """Close the client."""
        await self.client.aclose()


# ------------------------------------------------------------------------------ factory


@dataclass(frozen=True)
class ClientOptions:
    """Tuning for the clients (tests page small; None keeps each API's usual page size), and
    whether they may reach internal addresses (``ALLOW_INTERNAL_URLS``: local sandboxes;
    None follows the process's policy, ``nordflow_connectors.egress.allow_internal``)."""

    page_size: int | None = None
    allow_internal: bool | None = None


def open_source(
    connection: Connection,
    box: SecretBox,
    pool: asyncpg.Pool,
    options: ClientOptions = ClientOptions(),
) -> Source:
    """The adapter for a connection, its credentials opened and checked.

    Raises `CredentialsError` (naming the key) when the stored credentials do not fit the
    system, and ValueError for a push system (Winner, on-premise), which is never polled.
    """
    if not connection.polled:
        raise ValueError(
            f"{connection.system.value} connections are not polled (their documents are "
            "pushed, or they are only booked into)"
        )
    credentials = parse_credentials(connection.system, box.open(connection.token_sealed))
    size = options.page_size

    def guarded() -> httpx.AsyncHTTPTransport:
        # Base URLs and token URLs are the tenant's: only public addresses, after DNS.
        return egress.guarded_transport(allow=options.allow_internal)

    if isinstance(credentials, VismaEAccountingCredentials | FortnoxOAuthCredentials):
        initial = Tokens(
            access_token=SecretStr(""),  # expired at once: the first use refreshes
            refresh_token=credentials.refresh_token,
            expires_at=EPOCH,
        )
        session = OAuthSession(
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            PgTokenStore(pool, box, connection.connection_id, connection.tenant_id, initial),
            transport=guarded(),
        )
        if isinstance(credentials, FortnoxOAuthCredentials):
            fortnox = FortnoxClient(
                connection.base_url,
                session,
                page_size=size or 100,
                limiter=fortnox_budget(pool, connection.connection_id),
                transport=guarded(),
            )
            return FortnoxSource(fortnox, session)
        client = VismaEAccountingClient(
            connection.base_url,
            session,
            page_size=size or 200,
            limiter_for=per_endpoint(
                pool, "visma-eaccounting", credentials.client_id, *VISMA_EACCOUNTING_BUDGET
            ),
            transport=guarded(),
        )
        return VismaEAccountingSource(client, session)
    if isinstance(credentials, VismaNetClientCredentials):
        tokens = ClientCredentialsSession(
            credentials.token_url,
            credentials.client_id,
            credentials.client_secret,
            scope=credentials.scope,
            tenant_id=credentials.tenant_id,
            transport=guarded(),
        )
        return VismaNetSource(
            VismaNetClient(
                connection.base_url,
                tokens,
                credentials.company_id,
                api_timezone=credentials.api_timezone,
                page_size=size or 100,
                transport=guarded(),
            ),
            tokens,
        )
    if isinstance(credentials, VismaNetCredentials):
        return VismaNetSource(
            VismaNetClient(
                connection.base_url,
                credentials.token,
                credentials.company_id,
                api_timezone=credentials.api_timezone,
                page_size=size or 100,
                transport=guarded(),
            )
        )
    if isinstance(credentials, SirvoyCredentials):
        return SirvoySource(
            SirvoyClient(
                connection.base_url,
                credentials.api_token,
                page_size=size or 100,
                transport=guarded(),
            )
        )
    assert isinstance(credentials, TokenCredentials)
    return FortnoxSource(
        FortnoxClient(
            connection.base_url,
            credentials.token,
            page_size=size or 100,
            limiter=fortnox_budget(pool, connection.connection_id),
            transport=guarded(),
        )
    )


# eAccounting's 600 calls a minute per client and endpoint, shared with every replica (and
# ledger-closer, when it writes with the same OAuth client).
VISMA_EACCOUNTING_BUDGET = (600, 60.0)


def fortnox_budget(pool: asyncpg.Pool, connection_id: str) -> PgRateBudget:
    """Fortnox's 25 calls per 5 s of the company, shared with ledger-closer (which names the
    company by the same connection id) and every replica of both."""
    return PgRateBudget(pool, budget_key("fortnox", connection_id), 25, 5.0)
