"""Use cases: a fetched document becomes invoice.created / updated / rejected once per version,
a fetched payment becomes payment.received once per payment, the tenants' reference
policies are kept, and documents' contents that came by reference (``erp.document.chunked``)
are kept, put together and purged. Repositories are passed in (``Repositories``), built on
one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from nordflow_schemas.claims import ContentMismatchError, assemble, chunk_bytes
from nordflow_schemas.events import (
    DocumentKind,
    ErpDocumentChunked,
    ErpDocumentFetched,
    EventBody,
    InvoiceCreated,
    InvoiceRejected,
    InvoiceUpdated,
    PaymentReceived,
    ValidationIssue,
)
from prometheus_client import Counter

from .domain.builder import Mapped
from .domain.claims import resolved, where
from .domain.references import TenantReferencePolicy, apply_reference
from .domain.validation import validate_invoice
from .sources import MAPPERS
from .sources.payments import NotAPayment, map_payment

log = logging.getLogger(__name__)

PAYMENTS = Counter(
    "nordflow_mapper_payments_total",
    "Payment documents by outcome (emitted, duplicate, changed, not_a_payment)",
    ["outcome"],
)


class InvoiceStatus(StrEnum):
    """The outcome of an invoice's last mapped version."""

    CREATED = "created"
    REJECTED = "rejected"


@dataclass(frozen=True)
class MappedVersion:
    """What is kept of an invoice's last mapped version."""

    version: str
    status: InvoiceStatus
    created_emitted: bool


@dataclass(frozen=True)
class MappedRow:
    """A mapped version to keep: created without ``errors``, rejected with them."""

    invoice_id: str
    tenant_id: str
    version: str
    number: str | None
    errors: tuple[ValidationIssue, ...]


class InvoiceRepository(Protocol):
    """The last mapped version of each invoice, and whether invoice.created went out."""

    async def lock(self, invoice_ids: list[str]) -> dict[str, MappedVersion]:
        """The invoices' last mapped versions, locked until the transaction ends; an invoice
        never mapped is not in the answer."""
        ...

    async def record(self, rows: list[MappedRow]) -> None:
        """Keep mapped versions (one per invoice). Once a version of an invoice was created,
        its ``created_emitted`` stays true."""
        ...


@dataclass(frozen=True)
class PaymentKey:
    """One payment document applied to one paid invoice."""

    tenant_id: str
    system: str
    connection_id: str
    payment_id: str
    invoice_id: str


@dataclass(frozen=True)
class SeenPayment:
    """An emitted payment: the version last seen, the amount emitted and the one last seen."""

    version: str
    emitted_amount: Decimal
    last_amount: Decimal


class PaymentRepository(Protocol):
    """Payments emitted as payment.received (once each) and what was seen of them since."""

    async def insert(
        self, key: PaymentKey, *, version: str, amount: Decimal, currency: str
    ) -> bool:
        """Record the payment as emitted; False if it is recorded already."""
        ...

    async def lock(self, key: PaymentKey) -> SeenPayment | None:
        """The recorded payment, locked until the transaction ends; None if there is none."""
        ...

    async def update_seen(self, key: PaymentKey, *, version: str, amount: Decimal) -> None:
        """Note a later version of a recorded payment and its amount."""
        ...


class ReferencePolicyRepository(Protocol):
    """The tenants' payment-reference policies (one per tenant)."""

    async def get(self, tenant_id: str) -> TenantReferencePolicy | None:
        """The tenant's policy, or None when it has none."""
        ...

    async def of_tenants(self, tenant_ids: list[str]) -> dict[str, TenantReferencePolicy]:
        """The policies of those tenants that have one."""
        ...

    async def save(self, policy: TenantReferencePolicy) -> None:
        """Create or replace the tenant's policy."""
        ...


@dataclass(frozen=True)
class StoredChunk:
    """One chunk of a content that came by reference, as kept."""

    tenant_id: str
    sha256: str
    index: int
    count: int
    size: int
    data: bytes


class PayloadChunkRepository(Protocol):
    """The chunks of contents that came by reference, per (tenant, SHA-256, index)."""

    async def store(self, chunks: list[StoredChunk]) -> None:
        """Keep the chunks; one kept already stays as it is (only its time moves)."""
        ...

    async def pieces(self, tenant_id: str, sha256: str, count: int) -> dict[int, bytes]:
        """The tenant's chunks of that content with an index below ``count``, by index."""
        ...

    async def purge(self, received_before: dt.datetime) -> int:
        """Delete the chunks last received before then; how many."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case of this service reads or writes, on one transaction."""

    invoices: InvoiceRepository
    payments: PaymentRepository
    policies: ReferencePolicyRepository
    chunks: PayloadChunkRepository


class PayloadPendingError(Exception):
    """A document's content has not all arrived yet (its chunks travel on another topic and
    another consumer group): not the document's fault; it is tried again until they are."""


class PayloadMismatchError(Exception):
    """A document's chunks do not make the content referred to (size or SHA-256 differ, a
    chunk is no base64, the content is not payload and related): it can never be read as it
    is; the message names the content, the document and why."""


async def store_chunks(chunks: PayloadChunkRepository, events: list[ErpDocumentChunked]) -> None:
    """Keep the chunks of a consumed batch (once each per tenant, SHA-256 and index).
    `PayloadMismatchError` for a chunk whose data is no base64 or more than its size."""
    kept: list[StoredChunk] = []
    for event in events:
        try:
            data = chunk_bytes(event)
        except ContentMismatchError as exc:
            raise PayloadMismatchError(str(exc)) from exc
        if not data or len(data) > event.size:
            raise PayloadMismatchError(
                f"chunk {event.index} of content {event.sha256} has {len(data)} bytes, "
                f"the content {event.size}"
            )
        kept.append(
            StoredChunk(event.tenant_id, event.sha256, event.index, event.count, event.size, data)
        )
    await chunks.store(kept)


async def resolve_payloads(
    chunks: PayloadChunkRepository, events: list[ErpDocumentFetched]
) -> list[ErpDocumentFetched]:
    """The events with every content that came by reference put together from the tenant's
    own chunks and checked (size, SHA-256), so they read as if it had travelled inline; the
    others unchanged. `PayloadPendingError` while a chunk is missing, `PayloadMismatchError`
    when the chunks do not make the content referred to."""
    out: list[ErpDocumentFetched] = []
    for event in events:
        ref = event.payload_ref
        if ref is None:
            out.append(event)
            continue
        pieces = await chunks.pieces(event.tenant_id, ref.sha256, ref.chunks)
        if len(pieces) < ref.chunks:
            raise PayloadPendingError(
                f"{where(event)}: {len(pieces)} of {ref.chunks} chunks have arrived"
            )
        try:
            out.append(resolved(event, assemble(ref, pieces)))
        except ContentMismatchError as exc:
            raise PayloadMismatchError(f"{where(event)}: {exc}") from exc
    return out


async def purge_payloads(chunks: PayloadChunkRepository, now: dt.datetime, days: int) -> int:
    """Delete the chunks not received for ``days`` days; how many."""
    return await chunks.purge(now - dt.timedelta(days=days))


class UnreadablePayment(Exception):  # noqa: N818 (a payment, not an error, is what it names)
    """A payment document whose data cannot be read; the message names every problem."""


def map_document(event: ErpDocumentFetched, policy: TenantReferencePolicy | None = None) -> Mapped:
    """Map with the source's mapper, apply the tenant's reference policy, validate.

    A list means rejected. Pure: the caller looks the tenant's ``policy`` up.
    """
    mapper = MAPPERS.get(event.source.system)
    if mapper is None:
        return [
            ValidationIssue(
                field="source.system",
                rule="NF-SOURCE",
                message=f"no mapping for source system {event.source.system.value!r} yet",
            )
        ]
    result = mapper(event)
    if isinstance(result, list):
        return result
    with_reference = apply_reference(result, policy)
    if isinstance(with_reference, ValidationIssue):
        # The reference could not be generated: report it with everything else.
        return [*validate_invoice(result), with_reference]
    issues = validate_invoice(with_reference, policy.policy if policy else None)
    return issues or with_reference


async def handle_fetched(repos: Repositories, event: ErpDocumentFetched) -> EventBody | None:
    """Record the outcome for this version; return the event to emit (None if seen before)."""
    [outgoing] = await handle_fetched_batch(repos, [event])
    return outgoing


async def handle_fetched_batch(
    repos: Repositories, events: list[ErpDocumentFetched]
) -> list[EventBody | None]:
    """Record each document's outcome; the event to emit for each (None if seen before).

    ``invoice.rejected`` lists every issue; otherwise ``invoice.created`` the first time a
    version of the invoice is valid, ``invoice.updated`` after that. A payment document goes
    to ``handle_payment``. The batch's invoices and its tenants' policies are read, and its
    outcomes kept, with one statement each; documents of one invoice are taken in order.
    """
    invoice_ids = [e.invoice_id for e in events if e.kind is not DocumentKind.PAYMENT]
    known = await repos.invoices.lock(sorted(set(invoice_ids))) if invoice_ids else {}
    tenants = sorted({e.tenant_id for e in events if e.kind is not DocumentKind.PAYMENT})
    policies = await repos.policies.of_tenants(tenants) if tenants else {}
    kept: dict[str, MappedRow] = {}
    out: list[EventBody | None] = []
    for event in events:
        if event.kind is DocumentKind.PAYMENT:
            out.append(await handle_payment(repos.payments, event))
            continue
        previous = known.get(event.invoice_id)
        if previous is not None and previous.version == event.version:
            out.append(None)
            continue
        outgoing, row = _outcome(event, previous, policies.get(event.tenant_id))
        known[event.invoice_id] = MappedVersion(
            version=row.version,
            status=InvoiceStatus.REJECTED if row.errors else InvoiceStatus.CREATED,
            created_emitted=(previous is not None and previous.created_emitted) or not row.errors,
        )
        kept[event.invoice_id] = row
        out.append(outgoing)
    if kept:
        await repos.invoices.record(list(kept.values()))
    return out


def _outcome(
    event: ErpDocumentFetched,
    previous: MappedVersion | None,
    policy: TenantReferencePolicy | None,
) -> tuple[EventBody, MappedRow]:
    result = map_document(event, policy)
    outgoing: EventBody
    if isinstance(result, list):
        number, errors = event.source.document_number, tuple(result)
        outgoing = InvoiceRejected(
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            test_mode=event.test_mode,
            source=event.source,
            version=event.version,
            errors=errors,
        )
    else:
        number, errors = result.number, ()
        first = previous is None or not previous.created_emitted
        outgoing = (InvoiceCreated if first else InvoiceUpdated)(
            tenant_id=event.tenant_id,
            invoice_id=event.invoice_id,
            test_mode=event.test_mode,
            version=event.version,
            invoice=result,
            flow=event.flow,
            source_kind=event.kind,
        )
    row = MappedRow(event.invoice_id, event.tenant_id, event.version, number, errors)
    return outgoing, row


async def handle_payment(
    payments: PaymentRepository, event: ErpDocumentFetched
) -> PaymentReceived | None:
    """payment.received the first time a payment document carries money; None afterwards.

    A payment is emitted once per (payment document, paid invoice). A later version of the
    same payment emits nothing: when its amount changed (corrected or voided in the source),
    the change is recorded (``last_amount``), logged as a warning and counted
    (``nordflow_mapper_payments_total{outcome="changed"}``), because the source already
    booked it and payment.received has no correction semantics. A version that carries no
    money yet (Visma.net on hold, a voided or zero payment seen first) emits nothing and
    records nothing, so the first version with money is the one emitted.

    Payment data that cannot be read is no invoice to reject: ``UnreadablePayment`` names
    every field (the consumer dead-letters the record).
    """
    result = map_payment(event)
    if isinstance(result, list):
        problems = "; ".join(f"{i.field} ({i.rule}): {i.message}" for i in result)
        raise UnreadablePayment(
            f"payment document {event.source.document_id} of {event.source.system.value} "
            f"connection {event.source.connection_id} cannot be mapped: {problems}"
        )
    if isinstance(result, NotAPayment):
        log.info("payment document %s not emitted: %s", event.source.document_id, result.reason)
        PAYMENTS.labels("not_a_payment").inc()
        return None
    key = PaymentKey(
        tenant_id=event.tenant_id,
        system=event.source.system.value,
        connection_id=event.source.connection_id,
        payment_id=result.payment_id,
        invoice_id=result.invoice_id,
    )
    if result.amount == 0:
        if await _record_change(payments, key, event.version, result) is None:
            log.info("payment %s has amount 0: not emitted", result.payment_id)
            PAYMENTS.labels("not_a_payment").inc()
        return None
    if await payments.insert(
        key, version=event.version, amount=result.amount, currency=result.currency
    ):
        PAYMENTS.labels("emitted").inc()
        return result
    await _record_change(payments, key, event.version, result)
    return None


async def _record_change(
    payments: PaymentRepository, key: PaymentKey, version: str, payment: PaymentReceived
) -> SeenPayment | None:
    """Update an emitted payment's last seen version and amount; warn when the amount moved."""
    seen = await payments.lock(key)
    if seen is None:
        return None
    if seen.version == version:
        PAYMENTS.labels("duplicate").inc()
        return seen
    await payments.update_seen(key, version=version, amount=payment.amount)
    if payment.amount != seen.emitted_amount:
        PAYMENTS.labels("changed").inc()
        log.warning(
            "payment %s on invoice %s changed in the source from %s to %s %s after "
            "payment.received was emitted; no second event is emitted",
            payment.payment_id,
            payment.invoice_id,
            seen.emitted_amount,
            payment.amount,
            payment.currency,
        )
    else:
        PAYMENTS.labels("duplicate").inc()
    return seen


async def set_reference_policy(
    policies: ReferencePolicyRepository, policy: TenantReferencePolicy
) -> None:
    """Create or replace a tenant's policy (it applies to versions mapped from then on)."""
    await policies.save(policy)


async def reference_policy(
    policies: ReferencePolicyRepository, tenant_id: str
) -> TenantReferencePolicy | None:
    """The tenant's policy, or None (the seller country's defaults apply)."""
    return await policies.get(tenant_id)
