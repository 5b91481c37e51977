"""Push ingestion: Sirvoy webhooks, Winner order pushes and on-premise agents' batches.

Pushed documents take the same road as polled ones: each new content version is recorded in
`documents` and written to the outbox as `erp.document.fetched` in one transaction, so a
document pushed twice (a webhook redelivered, an agent's retry) emits nothing the second
time, and a poll that later reads the same content emits nothing either. A connection in
manual mode keeps what is pushed in `pending_documents` until a user's sync request calls
`release_pending`.

Winner and on-premise pushes are signed with the connection's push secret (see
`signature_headers`); Sirvoy webhooks with the connection's webhook secret, the Sirvoy way.
An on-premise connection also keeps a customer register pushed by its agent (`customers`):
SIE 4 names a voucher's customer only by its dimension-8 object, so the register supplies
what delivering the invoice needs (identifiers, e-mail, GLN, postal address).
No `from __future__ import annotations` here: FastAPI reads the routes' real annotations.
"""

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal, NamedTuple

import asyncpg
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from nordflow_connectors.sirvoy import (
    InvalidPayload,
    InvalidSignature,
    SirvoyEvent,
    verify_webhook,
)
from nordflow_runtime import outbox, telemetry
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.logs import log_context
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import envelope
from nordflow_schemas.events import DocumentKind
from opentelemetry import context as otel_context
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from . import sie
from .domain import Connection, content_version, event_subject, fetched_event
from .repository import PgDocumentRepository, _connection

log = logging.getLogger(__name__)

PoolProvider = Callable[[], asyncpg.Pool]

TIMESTAMP_HEADER = "X-Nordflow-Timestamp"
SIGNATURE_HEADER = "X-Nordflow-Signature"
BATCH_HEADER = "X-Nordflow-Batch-Id"
MAX_AGE_SECONDS = 300
# Clocks of agents' machines drift; a few seconds ahead is skew, not a forged future.
MAX_FUTURE_SKEW_SECONDS = 30
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_CUSTOMERS = 10_000  # per register push; a larger register is pushed in several requests
BATCH_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
CENT = Decimal("0.01")
EVENT_SOURCE = "/erp-poller"


# ------------------------------------------------------------------------------ signing


class SignatureError(Exception):
    """A push whose signature is missing, wrong or stale; the message never holds a secret."""


def sign(secret: str, timestamp: int, body: bytes, batch_id: str | None = None) -> str:
    """The signature header value: ``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``,
    or over ``"<timestamp>.<batch id>." + body`` when the push names its batch in a header
    (so a captured request cannot be replayed under another batch id)."""
    prefix = f"{timestamp}." if batch_id is None else f"{timestamp}.{batch_id}."
    mac = hmac.new(secret.encode(), prefix.encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def signature_headers(
    secret: str, body: bytes, *, now: float | None = None, batch_id: str | None = None
) -> dict[str, str]:
    """The headers a Winner or on-premise push carries (with ``batch_id``, that one too)."""
    timestamp = int(time.time() if now is None else now)
    headers = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body, batch_id),
    }
    if batch_id is not None:
        headers[BATCH_HEADER] = batch_id
    return headers


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signature(
    secret: SecretStr, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> None:
    """Raise `SignatureError` unless the push is signed with ``secret`` within 5 minutes.

    Several ``v1=`` values (comma separated) are accepted, for secret rotation; every one is
    compared in constant time.
    """
    stamp = (_header(headers, TIMESTAMP_HEADER) or "").strip()
    if not stamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header (unix seconds)")
    if not stamp.isdigit() or len(stamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds")
    value = _header(headers, SIGNATURE_HEADER) or ""
    candidates = [p.strip()[3:] for p in value.split(",") if p.strip().startswith("v1=")]
    if not value:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header: expected v1=<hex>")
    timestamp = int(stamp)
    batch_id = _header(headers, BATCH_HEADER)
    expected = sign(secret.get_secret_value(), timestamp, body, batch_id)[3:].encode()
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate.lower().encode())
    if not matched:
        raise SignatureError("signature does not match the body (wrong secret or altered body)")
    age = (time.time() if now is None else now) - timestamp
    if age > MAX_AGE_SECONDS:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {int(age)} s old, more than {MAX_AGE_SECONDS} s "
            "(stale or replayed)"
        )
    if age < -MAX_FUTURE_SKEW_SECONDS:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(-age)} s in the future")


# ------------------------------------------------------------------------------ documents


@dataclass(frozen=True)
class PushedDocument:
    """One document a push carries, ready to be versioned and emitted."""

    document_id: str
    document_number: str | None
    kind: DocumentKind
    payload: dict[str, Any]
    related: dict[str, dict[str, Any]]
    source_time: dt.datetime | None = None  # the source's change time, to order redeliveries
    # What the document's version covers, when more than its payload (e.g. an SIE voucher
    # with its registered customer); None: the payload.
    versioned: dict[str, Any] | None = None

    @property
    def version(self) -> str:
        """The content version: equal content (and context it depends on), equal version."""
        return content_version(self.payload if self.versioned is None else self.versioned)


@dataclass
class Outcome:
    """What happened to one document of a push."""

    document_id: str
    outcome: str  # emitted | unchanged | pending | outdated | skipped | error | valid
    kind: str | None = None
    document_number: str | None = None
    invoice_id: str | None = None
    reason: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The response item (empty fields left out)."""
        out: dict[str, Any] = {"document_id": self.document_id, "outcome": self.outcome}
        for key in ("kind", "document_number", "invoice_id", "reason"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.errors:
            out["errors"] = self.errors
        return out


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    return dict(Counter(o.outcome for o in outcomes))


async def _is_newest(conn: asyncpg.Connection, connection: Connection, doc: PushedDocument) -> bool:
    """Remember the source's change time; False if a newer snapshot was already taken."""
    if doc.source_time is None:
        return True
    return await PgDocumentRepository(conn).newest_snapshot(
        connection.connection_id, doc.document_id, connection.tenant_id, doc.source_time
    )


async def _emit(
    conn: asyncpg.Connection,
    connection: Connection,
    *,
    document_id: str,
    document_number: str | None,
    kind: DocumentKind,
    payload: dict[str, Any],
    related: dict[str, dict[str, Any]],
    version: str,
) -> tuple[bool, str]:
    """Record the version and, if new, write the event to the outbox (caller's transaction)."""
    event = fetched_event(
        connection,
        document_id=document_id,
        document_number=document_number,
        kind=kind,
        payload=payload,
        related=related,
        version=version,
        fetched_at=dt.datetime.now(dt.UTC),
    )
    # Each document starts its own trace, as polled ones do: one invoice's journey, one trace.
    with telemetry.tracer().start_as_current_span(
        "erp.document.fetched publish",
        context=otel_context.Context(),
        attributes={
            "nordflow.tenant_id": connection.tenant_id,
            "nordflow.invoice_id": event.invoice_id,
        },
    ):
        new = await PgDocumentRepository(conn).record_version(
            connection.connection_id, document_id, connection.tenant_id, event.invoice_id, version
        )
        if new:
            subject = event_subject(kind, document_id, document_number)
            await outbox.add(conn, envelope(event, source=EVENT_SOURCE, subject=subject))
    return new, event.invoice_id


async def ingest_documents(
    conn: asyncpg.Connection, connection: Connection, documents: Sequence[PushedDocument]
) -> list[Outcome]:
    """Version, then emit (test/automatic) or keep pending (manual), in ``conn``'s transaction."""
    outcomes: list[Outcome] = []
    for doc in documents:
        outcome = Outcome(doc.document_id, "", doc.kind.value, doc.document_number)
        outcomes.append(outcome)
        if not await _is_newest(conn, connection, doc):
            outcome.outcome = "outdated"
            outcome.reason = "a newer snapshot of this document was already received"
            continue
        version = doc.version
        if connection.mode is ConnectionMode.MANUAL:
            current = await conn.fetchval(
                "SELECT version FROM documents WHERE connection_id = $1 AND document_id = $2",
                connection.connection_id,
                doc.document_id,
            )
            if current == version:
                # The latest push says what was already emitted: an older pending one is void.
                await _drop_pending(conn, connection, doc.document_id)
                outcome.outcome = "unchanged"
                continue
            await conn.execute(
                """INSERT INTO pending_documents (connection_id, document_id, tenant_id,
                       document_number, kind, payload, related, version)
                   VALUES ($1, $2, $3, $4, $5, $6::json, $7::json, $8)
                   ON CONFLICT (connection_id, document_id) DO UPDATE SET
                       document_number = EXCLUDED.document_number, kind = EXCLUDED.kind,
                       payload = EXCLUDED.payload, related = EXCLUDED.related,
                       version = EXCLUDED.version,
                       received_at = CASE
                           WHEN pending_documents.version = EXCLUDED.version
                           THEN pending_documents.received_at ELSE clock_timestamp() END""",
                connection.connection_id,
                doc.document_id,
                connection.tenant_id,
                doc.document_number,
                doc.kind.value,
                json.dumps(doc.payload),
                json.dumps(doc.related),
                version,
            )
            outcome.outcome = "pending"
            continue
        new, outcome.invoice_id = await _emit(
            conn,
            connection,
            document_id=doc.document_id,
            document_number=doc.document_number,
            kind=doc.kind,
            payload=doc.payload,
            related=doc.related,
            version=version,
        )
        if new:
            await _drop_pending(conn, connection, doc.document_id)
        outcome.outcome = "emitted" if new else "unchanged"
    return outcomes


async def _drop_pending(conn: asyncpg.Connection, connection: Connection, document_id: str) -> None:
    await conn.execute(
        "DELETE FROM pending_documents WHERE connection_id = $1 AND document_id = $2",
        connection.connection_id,
        document_id,
    )


async def release_pending(
    pool: asyncpg.Pool,
    connection: Connection,
    *,
    limit: int | None,
    documents: Sequence[str],
    committed: Callable[[], None],
) -> int:
    """A user's sync request on a pushed connection: emit the named pending documents, or the
    oldest ``limit`` of them; returns how many were emitted.

    One transaction; rows are claimed with SKIP LOCKED, so two concurrent requests never emit
    a document twice. A pending document whose version was emitted meanwhile is dropped.
    """
    emitted = 0
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT document_id, document_number, kind, payload::text AS payload,
                      related::text AS related, version
               FROM pending_documents
               WHERE connection_id = $1 AND (cardinality($2::text[]) = 0 OR document_id = ANY($2))
               ORDER BY received_at, document_id
               LIMIT $3
               FOR UPDATE SKIP LOCKED""",
            connection.connection_id,
            list(documents),
            limit if not documents else None,
        )
        for row in rows:
            with log_context(connection.tenant_id, None):
                new, _ = await _emit(
                    conn,
                    connection,
                    document_id=row["document_id"],
                    document_number=row["document_number"],
                    kind=DocumentKind(row["kind"]),
                    payload=json.loads(row["payload"]),
                    related=json.loads(row["related"]),
                    version=row["version"],
                )
            emitted += new
            await _drop_pending(conn, connection, row["document_id"])
    if emitted:
        committed()
    return emitted


# ------------------------------------------------------------------------------- sirvoy


def _invoice_ref(invoices: Sequence[Mapping[str, Any]], invoice_id: Any) -> dict[str, Any]:
    number = next(
        (str(i.get("invoiceNumber")) for i in invoices if i.get("invoiceId") == invoice_id), None
    )
    return {"document_id": str(invoice_id), "document_number": number}


def sirvoy_documents(
    connection: Connection, raw: Mapping[str, Any], parsed_event: SirvoyEvent
) -> list[PushedDocument]:
    """The invoices, credit invoices and payments of one booking event.

    Payloads are the objects exactly as Sirvoy sent them: the sandbox's webhook and its read
    API (`GET /invoices/{id}`, `GET /payments/{id}`) serialise them with one function, so a
    poll after a webhook finds the same content version and emits nothing.
    """
    # The booking as the read API's GET /bookings/{id} answers it: the event minus its envelope.
    booking = {k: v for k, v in raw.items() if k not in {"version", "generatedAt", "event"}}
    raw_invoices = [i for i in raw.get("invoices") or [] if isinstance(i, dict)]
    raw_payments = [p for p in raw.get("payments") or [] if isinstance(p, dict)]
    generated = parsed_event.generated_at
    docs: list[PushedDocument] = []
    for obj, model in zip(raw_invoices, parsed_event.booking.invoices, strict=True):
        docs.append(
            PushedDocument(
                document_id=str(model.invoice_id),
                document_number=str(model.invoice_number),
                kind=DocumentKind.CREDIT_NOTE if model.is_credit_invoice else DocumentKind.INVOICE,
                payload=dict(obj),
                related={"seller": connection.seller, "booking": booking},
                source_time=model.modified_at or generated,
            )
        )
    for raw_payment, payment in zip(raw_payments, parsed_event.booking.payments, strict=True):
        if payment.invoice_id is None:
            continue  # a booking prepayment: it flows once it is put on an invoice (as polled)
        related: dict[str, dict[str, Any]] = {
            "seller": connection.seller,
            "booking": booking,
            "invoice": _invoice_ref(raw_invoices, payment.invoice_id),
        }
        docs.append(
            PushedDocument(
                document_id=f"payment:{payment.payment_id}",
                document_number=str(payment.payment_id),
                kind=DocumentKind.PAYMENT,
                payload=dict(raw_payment),
                related=related,
                source_time=payment.modified_at or generated,
            )
        )
    return docs


# ------------------------------------------------------------------------------- winner

Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=18, decimal_places=6)]
Rate = Annotated[Decimal, Field(ge=0, lt=100, allow_inf_nan=False, max_digits=8)]
Text = Annotated[str, Field(min_length=1, max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AddressIn(_In):
    """A postal address."""

    lines: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=4)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country_code: str = Field(default="SE", pattern=r"^[A-Z]{2}$")


class WinnerCustomer(_In):
    """Winner's customer card (upserted in the accounting system by its number)."""

    customer_number: Text
    name: Text
    type: Literal["private", "company"] = "private"
    organisation_number: str | None = Field(default=None, max_length=20)
    vat_number: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    address: AddressIn = AddressIn()


class WinnerProject(_In):
    """The kitchen project, number and name as in Winner, linked to the customer."""

    number: Text
    name: Text


class WinnerLine(_In):
    """One quote line; ``amount`` is the line total (VAT excluded unless the quote says so)."""

    description: Text
    amount: Money
    vat_rate: Rate = Decimal(25)
    product_group: str | None = Field(default=None, max_length=100)
    article_number: str | None = Field(default=None, max_length=50)


class WinnerPart(_In):
    """One instalment of the project's payment calendar: it becomes one order."""

    part: int = Field(ge=1, le=99)
    percent: Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False, max_digits=8)]
    label: str | None = Field(default=None, max_length=100)
    due_date: dt.date | None = None


class WinnerOrderPush(_In):
    """An accepted Winner quote, to be invoiced as one order per payment-calendar part."""

    quote_number: str = Field(pattern=r"^[A-Za-z0-9._/-]{1,50}$")
    order_date: dt.date
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    customer: WinnerCustomer
    project: WinnerProject
    line_mode: Literal["total", "product_groups"] = Field(
        description="One total line (fixed product number) or one line per product group"
    )
    total_article_number: str | None = Field(default=None, max_length=50)
    prices_include_vat: bool = False
    lines: list[WinnerLine] = Field(min_length=1, max_length=500)
    payment_calendar: list[WinnerPart] = Field(default_factory=list, max_length=20)
    payment_terms_days: int = Field(default=30, ge=0, le=365)
    reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    credited_order_id: str | None = Field(
        default=None, max_length=60, description="Set on a credit order: the order it credits"
    )

    @field_validator("payment_calendar")
    @classmethod
    def _calendar(cls, parts: list[WinnerPart]) -> list[WinnerPart]:
        if parts and sum(p.percent for p in parts) != 100:
            raise ValueError("the parts' percent must add up to 100")
        if len({p.part for p in parts}) != len(parts):
            raise ValueError("part numbers must be unique")
        return sorted(parts, key=lambda p: p.part)

    @model_validator(mode="after")
    def _mode(self) -> "WinnerOrderPush":
        if self.line_mode == "total" and not self.total_article_number:
            raise ValueError("total_article_number is required when line_mode is 'total'")
        if self.line_mode == "product_groups":
            missing = [i for i, line in enumerate(self.lines) if not line.product_group]
            if missing:
                raise ValueError(f"lines {missing} need a product_group (line_mode product_groups)")
        return self


class _OrderLine(NamedTuple):
    article_number: str | None
    product_group: str | None
    description: str
    amount: Decimal
    vat_rate: Decimal


def _split(amount: Decimal, percents: Sequence[Decimal]) -> list[Decimal]:
    """Shares of ``amount`` by percent, to the öre; the last takes the remainder (exact sum)."""
    shares = [(amount * p / 100).quantize(CENT, rounding=ROUND_HALF_UP) for p in percents[:-1]]
    return [*shares, amount - sum(shares, Decimal(0))]


def winner_documents(connection: Connection, push: WinnerOrderPush) -> list[PushedDocument]:
    """One order per payment-calendar part (``<quote>-<part>``), its lines split by percent."""
    parts = push.payment_calendar or [WinnerPart(part=1, percent=Decimal(100))]
    if push.line_mode == "total":
        by_rate: dict[Decimal, Decimal] = {}
        for line in push.lines:
            by_rate[line.vat_rate] = by_rate.get(line.vat_rate, Decimal(0)) + line.amount
        base = [
            _OrderLine(
                push.total_article_number,
                None,
                f"Enligt offert {push.quote_number}",
                amount,
                rate,
            )
            for rate, amount in by_rate.items()
        ]
    else:
        base = [
            _OrderLine(
                line.article_number or line.product_group,
                line.product_group,
                line.description,
                line.amount,
                line.vat_rate,
            )
            for line in push.lines
        ]
    shares = [_split(line.amount, [p.percent for p in parts]) for line in base]
    documents: list[PushedDocument] = []
    for index, part in enumerate(parts):
        # A credit order is a document of its own, never a new version of the order it
        # credits (which may carry the same quote number).
        credit = "C" if push.credited_order_id else ""
        order_id = f"{push.quote_number}-{credit}{part.part}"
        lines: list[dict[str, Any]] = []
        for order_line, split in zip(base, shares, strict=True):
            amount = split[index]
            if amount == 0:
                continue
            label = f" ({part.label})" if part.label and push.line_mode == "total" else ""
            lines.append(
                {
                    "line_id": str(len(lines) + 1),
                    "article_number": order_line.article_number,
                    "product_group": order_line.product_group,
                    "description": f"{order_line.description}{label}",
                    "quantity": "1",
                    "unit_price": format(amount, "f"),
                    "amount": format(amount, "f"),
                    "vat_rate": format(order_line.vat_rate, "f"),
                }
            )
        due = part.due_date or push.order_date + dt.timedelta(days=push.payment_terms_days)
        payload = {
            "order_id": order_id,
            "quote_number": push.quote_number,
            "part": part.part,
            "parts": len(parts),
            "part_label": part.label,
            "percent": format(part.percent, "f"),
            "order_date": push.order_date.isoformat(),
            "due_date": due.isoformat(),
            "currency": push.currency,
            "prices_include_vat": push.prices_include_vat,
            "customer": push.customer.model_dump(mode="json"),
            "project": push.project.model_dump(mode="json"),
            "lines": lines,
            "reference": push.reference,
            "note": push.note,
            "credited_order_id": push.credited_order_id,
        }
        documents.append(
            PushedDocument(
                document_id=order_id,
                document_number=order_id,
                kind=DocumentKind.ORDER,
                payload=payload,
                related={"seller": connection.seller},
            )
        )
    return documents


# ------------------------------------------------------------------------- JSON batches


class ElectronicAddressIn(_In):
    """A PEPPOL participant id: ISO 6523 scheme (0007, 0088, 0192 ...) and value."""

    scheme: str = Field(pattern=r"^\d{4}$")
    value: Text


class BuyerIn(_In):
    """The invoice's buyer."""

    name: Text
    party_type: Literal["company", "private"] = "company"
    company_id: str | None = Field(default=None, max_length=20)
    vat_id: str | None = Field(default=None, max_length=20)
    customer_number: str | None = Field(default=None, max_length=50)
    email: str | None = Field(default=None, max_length=200)
    electronic_address: ElectronicAddressIn | None = None
    address: AddressIn = AddressIn()


class LineIn(_In):
    """One line; ``net_amount`` defaults to quantity x unit_price."""

    description: Text
    quantity: Money
    unit_price: Money
    vat_rate: Rate
    vat_category: Literal["S", "Z", "E", "AE", "K", "G", "O"] | None = None
    net_amount: Money | None = None
    unit_code: str = Field(default="C62", max_length=3)
    article_number: str | None = Field(default=None, max_length=50)
    account_number: str | None = Field(default=None, max_length=20)


class TotalsIn(_In):
    """The source's totals, checked against the lines by the mapper."""

    net: Money | None = None
    vat: Money | None = None
    rounding: Money | None = None
    payable: Money


class PaymentIn(_In):
    """How to pay."""

    reference: str | None = Field(default=None, max_length=35, description="OCR / KID")
    terms: str | None = Field(default=None, max_length=100)
    method: str | None = Field(default=None, max_length=50)
    account_id: str | None = Field(default=None, max_length=50)
    account_scheme: str | None = Field(default=None, max_length=20)


class PrecedingIn(_In):
    """The invoice a credit note credits."""

    number: Text
    document_id: str | None = Field(default=None, max_length=200)
    issue_date: dt.date | None = None


class JsonInvoice(_In):
    """An on-premise invoice or credit note (amounts positive on credit notes too)."""

    issue_date: dt.date
    due_date: dt.date | None = None
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    buyer: BuyerIn
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    totals: TotalsIn | None = None
    payment: PaymentIn | None = None
    buyer_reference: str | None = Field(default=None, max_length=200)
    order_reference: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    preceding_invoice: PrecedingIn | None = None


class BatchDocument(_In):
    """One document of a JSON batch."""

    document_id: str = Field(pattern=r"^[^\s]{1,200}$")
    document_number: str | None = Field(default=None, max_length=100)
    kind: Literal["invoice", "credit_note"]
    invoice: JsonInvoice

    @model_validator(mode="after")
    def _credit_names_original(self) -> "BatchDocument":
        if self.kind == "credit_note" and self.invoice.preceding_invoice is None:
            raise ValueError("a credit note must name the invoice it credits (preceding_invoice)")
        return self


class BatchIn(BaseModel):
    """The envelope of a JSON batch; its documents are validated one by one."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str | None = Field(default=None, pattern=BATCH_ID.pattern)
    documents: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": _field(e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def json_batch_documents(
    connection: Connection, batch_id: str, batch: BatchIn
) -> tuple[list[PushedDocument], list[Outcome]]:
    """The documents of a JSON batch, or (nothing, every problem) if any is invalid."""
    docs: list[PushedDocument] = []
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for index, raw in enumerate(batch.documents):
        raw_id = str(raw.get("document_id") or f"#{index}")
        try:
            doc = BatchDocument.model_validate(raw)
        except ValidationError as exc:
            outcomes.append(
                Outcome(
                    raw_id,
                    "error",
                    errors=[
                        {"field": f"documents[{index}].{e['field']}", "message": e["message"]}
                        for e in _errors(exc)
                    ],
                )
            )
            continue
        if doc.document_id in seen:
            outcomes.append(
                Outcome(
                    doc.document_id,
                    "error",
                    errors=[
                        {
                            "field": f"documents[{index}].document_id",
                            "message": "appears twice in the batch",
                        }
                    ],
                )
            )
            continue
        seen.add(doc.document_id)
        outcomes.append(Outcome(doc.document_id, "valid", doc.kind, doc.document_number))
        docs.append(
            PushedDocument(
                document_id=doc.document_id,
                document_number=doc.document_number or doc.document_id,
                kind=DocumentKind(doc.kind),
                payload=dict(raw["invoice"]),
                related={
                    "seller": connection.seller,
                    "batch": {"batch_id": batch_id, "format": "json"},
                },
            )
        )
    if any(o.outcome == "error" for o in outcomes):
        return [], outcomes
    return docs, []


def sie_batch_documents(
    connection: Connection,
    batch_id: str,
    parsed: sie.SieFile,
    customers: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[list[PushedDocument], list[Outcome]]:
    """Each customer invoice voucher becomes a document; the others are reported as skipped.

    ``customers`` are the register entries of the vouchers' dimension-8 objects (see
    `registered_customers`): a voucher whose customer is registered carries the entry in
    ``related["customer"]``, and its version covers the entry, so a voucher pushed again
    after its customer was registered or changed flows again. Without an entry the document
    and its version are what they were before the register existed.
    """
    register = customers or {}
    docs: list[PushedDocument] = []
    skipped: list[Outcome] = []
    for voucher in parsed.vouchers:
        kind, reason = sie.invoice_kind(voucher)
        voucher_id = voucher.voucher_id or f"line-{voucher.line}"
        if kind is None:
            skipped.append(Outcome(voucher_id, "skipped", reason=reason))
            continue
        if not voucher.number:
            skipped.append(
                Outcome(
                    voucher_id,
                    "skipped",
                    reason="the voucher has no number, so it cannot be told apart across files",
                )
            )
            continue
        invoice_number = next(
            (obj for t in voucher.transactions for dim, obj in t.objects if dim == "10"), None
        )
        payload = parsed.voucher_json(voucher)
        related: dict[str, dict[str, Any]] = {
            "seller": connection.seller,
            "batch": {"batch_id": batch_id, "format": "sie4i"},
        }
        number = sie.customer_object(voucher)
        card = register.get(number) if number is not None else None
        if card is not None:
            related["customer"] = card
        docs.append(
            PushedDocument(
                document_id=parsed.document_id(voucher),
                document_number=invoice_number or voucher.voucher_id,
                kind=DocumentKind(kind),
                payload=payload,
                related=related,
                versioned=None if card is None else {"voucher": payload, "customer": card},
            )
        )
    return docs, skipped


# --------------------------------------------------------------------- customer register

# Deliberately loose: the address must reach a mail server, not satisfy RFC 5322 in full.
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def gln_is_valid(value: str) -> bool:
    """A GS1 Global Location Number: 13 digits, the last a GS1 mod-10 check digit."""
    if len(value) != 13 or not value.isdigit() or not value.isascii():
        return False
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(value[:12]))
    return (10 - weighted % 10) % 10 == int(value[12])


class CustomerAddressIn(_In):
    """A registered customer's postal address; without a country the seller's is meant."""

    lines: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=4)
    postal_code: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=100)
    country_code: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")

    @field_validator("postal_code", "city", "country_code", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class RegisteredCustomer(_In):
    """One customer of an on-premise ERP's register, by the number its SIE files give the
    customer's dimension-8 (kund) object."""

    customer_number: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    type: Literal["company", "private"]
    organisation_number: str | None = Field(
        default=None, max_length=20, description="Org. no., or a private customer's personal no."
    )
    vat_number: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200, pattern=EMAIL)
    gln: str | None = Field(
        default=None, description="GS1 GLN: the PEPPOL electronic address (scheme 0088)"
    )
    address: CustomerAddressIn

    @field_validator("organisation_number", "vat_number", "email", "gln", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        # ERP exports write an empty field for "none".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gln")
    @classmethod
    def _gln(cls, value: str | None) -> str | None:
        if value is not None and not gln_is_valid(value):
            raise ValueError("a GLN is 13 digits with a valid GS1 check digit")
        return value


class CustomerRegisterIn(BaseModel):
    """A push of (part of) a connection's customer register: upserted by customer number."""

    model_config = ConfigDict(extra="forbid")

    customers: list[RegisteredCustomer] = Field(max_length=MAX_CUSTOMERS)


def duplicate_customers(register: CustomerRegisterIn) -> list[dict[str, Any]]:
    """422 details for customer numbers given twice: which entry would win is not obvious."""
    first: dict[str, int] = {}
    problems: list[dict[str, Any]] = []
    for index, customer in enumerate(register.customers):
        seen = first.setdefault(customer.customer_number, index)
        if seen != index:
            problems.append(
                {
                    "loc": ["body", "customers", index, "customer_number"],
                    "msg": f"{customer.customer_number!r} is given twice (also customers[{seen}])",
                    "type": "duplicate",
                }
            )
    return problems


async def upsert_customers(
    conn: asyncpg.Connection, connection: Connection, customers: Sequence[RegisteredCustomer]
) -> dict[str, int]:
    """Insert or replace each entry by customer number (one statement); counts of
    ``created``, ``updated`` and ``unchanged`` entries. Customers missing from a push stay."""
    ordered = sorted(customers, key=lambda c: c.customer_number)  # one lock order: no deadlock
    rows = await conn.fetch(
        """INSERT INTO customers (connection_id, customer_number, tenant_id, customer)
           SELECT $1, c.number, $2, c.card::jsonb
           FROM unnest($3::text[], $4::text[]) AS c(number, card)
           ON CONFLICT (connection_id, customer_number) DO UPDATE
               SET customer = EXCLUDED.customer, updated_at = now()
               WHERE customers.customer IS DISTINCT FROM EXCLUDED.customer
           RETURNING (xmax = 0) AS created""",
        connection.connection_id,
        connection.tenant_id,
        [c.customer_number for c in ordered],
        [json.dumps(c.model_dump(mode="json")) for c in ordered],
    )
    created = sum(1 for row in rows if row["created"])
    return {
        "created": created,
        "updated": len(rows) - created,
        "unchanged": len(ordered) - len(rows),
    }


async def registered_customers(
    conn: asyncpg.Connection, connection: Connection, numbers: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The register entries of these customer numbers (unknown ones are left out)."""
    rows = await conn.fetch(
        """SELECT customer_number, customer::text AS customer FROM customers
           WHERE connection_id = $1 AND tenant_id = $2 AND customer_number = ANY($3::text[])""",
        connection.connection_id,
        connection.tenant_id,
        sorted(set(numbers)),
    )
    return {row["customer_number"]: json.loads(row["customer"]) for row in rows}


# --------------------------------------------------------------------------------- API


async def _body(request: Request) -> bytes:
    """The raw body, refused with 413 beyond `MAX_BODY_BYTES` (before reading it, if declared)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body exceeds {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _unprocessable(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=422)


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(422, "body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(422, "body must be a JSON object")
    return data


def build_ingest_api(
    pool_provider: PoolProvider, box: SecretBox, wake: Callable[[], None]
) -> APIRouter:
    """The /api/v1/ingest routes.

    ``pool_provider`` is asked at request time (the service opens the pool later); ``wake`` is
    called after a transaction that wrote events committed (pass the service's
    ``committed``, so the outbox relay publishes at once).
    """
    router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])

    async def connection_for(connection_id: str, system: SourceSystem) -> Connection:
        row = await pool_provider().fetchrow(
            "SELECT * FROM connections WHERE connection_id = $1", connection_id
        )
        if row is None or row["system"] != system.value:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no {system.value} connection {connection_id!r}"
            )
        return _connection(row)

    def push_secret(connection: Connection) -> SecretStr:
        try:
            return box.open(connection.token_sealed)
        except ValueError:
            log.error("push secret of %s cannot be decrypted", connection.connection_id)
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "the connection's push secret is not usable"
            ) from None

    def check_signature(connection: Connection, request: Request, body: bytes) -> None:
        try:
            verify_signature(push_secret(connection), request.headers, body)
        except SignatureError as exc:
            log.warning("refused push to %s: %s", connection.connection_id, exc)
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None

    async def ingest(connection: Connection, docs: Sequence[PushedDocument]) -> list[Outcome]:
        async with pool_provider().acquire() as conn, conn.transaction():
            outcomes = await ingest_documents(conn, connection, docs)
        if any(o.outcome == "emitted" for o in outcomes):
            wake()
        return outcomes

    @router.post("/sirvoy/{connection_id}")
    async def sirvoy_webhook(connection_id: str, request: Request) -> JSONResponse:
        """A Sirvoy booking event webhook; its invoices and payments become documents."""
        body = await _body(request)
        connection = await connection_for(connection_id, SourceSystem.SIRVOY)
        with log_context(connection.tenant_id, None):
            secret: Any = None
            try:
                credentials = json.loads(box.open(connection.token_sealed).get_secret_value())
                secret = (
                    credentials.get("webhook_secret") if isinstance(credentials, dict) else None
                )
            except ValueError:
                secret = None
            if not isinstance(secret, str) or not secret:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED, "the connection has no usable webhook_secret"
                )
            try:
                event = verify_webhook(SecretStr(secret), request.headers, body)
            except InvalidSignature as exc:
                log.warning("refused Sirvoy webhook for %s: %s", connection_id, exc)
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
            except InvalidPayload as exc:
                raise HTTPException(422, f"not a Sirvoy booking event: {exc}") from None
            outcomes = await ingest(
                connection, sirvoy_documents(connection, json.loads(body), event)
            )
            log.info(
                "Sirvoy %s event %s for booking %s: %s",
                event.event,
                event.event_id[:20],
                event.booking_id,
                _counts(outcomes),
            )
            return JSONResponse(
                {
                    "event_id": event.event_id,
                    "documents": [o.as_json() for o in outcomes],
                    "counts": _counts(outcomes),
                }
            )

    @router.post("/winner/{connection_id}")
    async def winner_push(connection_id: str, request: Request) -> JSONResponse:
        """An accepted Winner quote: one order document per payment-calendar part."""
        body = await _body(request)
        connection = await connection_for(connection_id, SourceSystem.WINNER)
        with log_context(connection.tenant_id, None):
            check_signature(connection, request, body)
            try:
                push = WinnerOrderPush.model_validate(_json_object(body))
            except ValidationError as exc:
                return _unprocessable(_validation_detail(exc))
            outcomes = await ingest(connection, winner_documents(connection, push))
            log.info("Winner quote %s: %s", push.quote_number, _counts(outcomes))
            return JSONResponse(
                {
                    "quote_number": push.quote_number,
                    "documents": [o.as_json() for o in outcomes],
                    "counts": _counts(outcomes),
                }
            )

    @router.post("/batches/{connection_id}")
    async def batch_push(connection_id: str, request: Request) -> JSONResponse:
        """An on-premise agent's batch (JSON or SIE 4i): all or nothing, idempotent by id."""
        body = await _body(request)
        connection = await connection_for(connection_id, SourceSystem.ON_PREMISE)
        with log_context(connection.tenant_id, None):
            check_signature(connection, request, body)
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            header_id = (request.headers.get(BATCH_HEADER) or "").strip() or None
            if header_id is not None and not BATCH_ID.match(header_id):
                return _unprocessable(
                    [{"loc": ["header", BATCH_HEADER], "msg": "1-128 of A-Z a-z 0-9 . _ : -"}]
                )
            if media == "application/json":
                try:
                    batch = BatchIn.model_validate(_json_object(body))
                except ValidationError as exc:
                    return _unprocessable(_validation_detail(exc))
                if header_id and batch.batch_id and header_id != batch.batch_id:
                    return _unprocessable(
                        [{"loc": ["body", "batch_id"], "msg": f"differs from {BATCH_HEADER}"}]
                    )
                batch_id = header_id or batch.batch_id
                if batch_id is None:
                    return _unprocessable(
                        [{"loc": ["body", "batch_id"], "msg": f"give batch_id or {BATCH_HEADER}"}]
                    )
                replay = await replayed(connection, batch_id, body)
                if replay is not None:
                    return replay
                docs, problems = json_batch_documents(connection, batch_id, batch)
            elif media == "text/plain":
                batch_id = header_id or hashlib.sha256(body).hexdigest()
                replay = await replayed(connection, batch_id, body)
                if replay is not None:
                    return replay
                try:
                    parsed = sie.parse(body)
                except sie.SieError as exc:
                    return _unprocessable(
                        [{"loc": ["body", "line", exc.line], "msg": exc.reason, "type": "sie"}]
                    )
                named = {n for v in parsed.vouchers if (n := sie.customer_object(v))}
                async with pool_provider().acquire() as conn:
                    cards = await registered_customers(conn, connection, named)
                if named - cards.keys():
                    log.info(
                        "batch %s: %d of %d customers are not in the register",
                        batch_id,
                        len(named - cards.keys()),
                        len(named),
                    )
                docs, problems = sie_batch_documents(connection, batch_id, parsed, cards)
            else:
                raise HTTPException(
                    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    "send application/json (JSON batch) or text/plain (SIE 4i, CP437)",
                )
            if any(p.outcome == "error" for p in problems):
                return JSONResponse(
                    {
                        "batch_id": batch_id,
                        "accepted": False,
                        "documents": [p.as_json() for p in problems],
                        "counts": _counts(problems),
                    },
                    status_code=422,
                )
            return await accept(connection, batch_id, body, docs, problems)

    @router.put("/customers/{connection_id}")
    async def customer_register_push(connection_id: str, request: Request) -> JSONResponse:
        """An on-premise agent's customer register (or part of it), upserted by number; SIE
        batches pushed afterwards carry each voucher's registered customer."""
        body = await _body(request)
        connection = await connection_for(connection_id, SourceSystem.ON_PREMISE)
        with log_context(connection.tenant_id, None):
            check_signature(connection, request, body)
            try:
                register = CustomerRegisterIn.model_validate(_json_object(body))
            except ValidationError as exc:
                return _unprocessable(_validation_detail(exc))
            duplicates = duplicate_customers(register)
            if duplicates:
                return _unprocessable(duplicates)
            async with pool_provider().acquire() as conn, conn.transaction():
                counts = await upsert_customers(conn, connection, register.customers)
            log.info("customer register of %s: %s", connection.connection_id, counts)
            return JSONResponse(
                {
                    "connection_id": connection.connection_id,
                    "received": len(register.customers),
                    **counts,
                }
            )

    async def replayed(connection: Connection, batch_id: str, body: bytes) -> JSONResponse | None:
        row = await pool_provider().fetchrow(
            "SELECT body_sha256, status_code, response::text AS response FROM received_batches "
            "WHERE connection_id = $1 AND batch_id = $2",
            connection.connection_id,
            batch_id,
        )
        if row is None:
            return None
        if row["body_sha256"] != hashlib.sha256(body).hexdigest():
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"batch {batch_id!r} was received with other content"
            )
        log.info("batch %s received again: answering the first result", batch_id)
        return JSONResponse(
            {**json.loads(row["response"]), "replayed": True}, status_code=row["status_code"]
        )

    async def accept(
        connection: Connection,
        batch_id: str,
        body: bytes,
        docs: Sequence[PushedDocument],
        skipped: Sequence[Outcome],
    ) -> JSONResponse:
        digest = hashlib.sha256(body).hexdigest()
        async with pool_provider().acquire() as conn, conn.transaction():
            # The row lock serialises concurrent pushes of one batch: the second waits,
            # finds the first committed, and answers its result.
            claimed = await conn.fetchval(
                """INSERT INTO received_batches (connection_id, batch_id, tenant_id,
                           body_sha256, status_code, response)
                       VALUES ($1, $2, $3, $4, 200, '{}') ON CONFLICT DO NOTHING RETURNING true""",
                connection.connection_id,
                batch_id,
                connection.tenant_id,
                digest,
            )
            if claimed:
                outcomes = [*await ingest_documents(conn, connection, docs), *skipped]
                response = {
                    "batch_id": batch_id,
                    "accepted": True,
                    "replayed": False,
                    "documents": [o.as_json() for o in outcomes],
                    "counts": _counts(outcomes),
                }
                await conn.execute(
                    "UPDATE received_batches SET response = $3::jsonb "
                    "WHERE connection_id = $1 AND batch_id = $2",
                    connection.connection_id,
                    batch_id,
                    json.dumps(response),
                )
        if not claimed:
            again = await replayed(connection, batch_id, body)
            assert again is not None  # the conflicting row is committed
            return again
        if any(o.outcome == "emitted" for o in outcomes):
            wake()
        log.info("batch %s on %s: %s", batch_id, connection.connection_id, response["counts"])
        return JSONResponse(response)

    return router
