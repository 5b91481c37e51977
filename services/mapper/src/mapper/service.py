"""Use case: turn a fetched document into invoice.created / updated / rejected, once per version,
and a fetched payment into payment.received, once per payment.
"""

from __future__ import annotations

import json
import logging

import asyncpg
from nordflow_runtime.consumer import PermanentError
from nordflow_schemas.events import (
    DocumentKind,
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
from .domain.references import TenantReferencePolicy, apply_reference, load_policy
from .domain.validation import validate_invoice
from .sources import MAPPERS
from .sources.payments import NotAPayment, map_payment

log = logging.getLogger(__name__)

PAYMENTS = Counter(
    "nordflow_mapper_payments_total",
    "Payment documents by outcome (emitted, duplicate, changed, not_a_payment)",
    ["outcome"],
)


def map_document(event: ErpDocumentFetched, policy: TenantReferencePolicy | None = None) -> Mapped:
    """Map with the source's mapper, apply the tenant's reference policy, validate.

    A list means rejected. Pure: the caller looks the tenant's `policy` up.
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


async def handle_fetched(conn: asyncpg.Connection, event: ErpDocumentFetched) -> EventBody | None:
    """Record the outcome for this version; return the event to emit (None if seen before)."""
    if event.kind is DocumentKind.PAYMENT:
        return await handle_payment(conn, event)
    previous = await conn.fetchrow(
        "SELECT version, status, created_emitted FROM invoices WHERE invoice_id = $1 FOR UPDATE",
        event.invoice_id,
    )
    if previous is not None and previous["version"] == event.version:
        return None
    result = map_document(event, await load_policy(conn, event.tenant_id))
    tenant, invoice_id, test = event.tenant_id, event.invoice_id, event.test_mode
    outgoing: EventBody
    if isinstance(result, list):
        status, number = "rejected", event.source.document_number
        errors = json.dumps([i.model_dump() for i in result])
        outgoing = InvoiceRejected(
            tenant_id=tenant,
            invoice_id=invoice_id,
            test_mode=test,
            source=event.source,
            version=event.version,
            errors=tuple(result),
        )
    else:
        status, number, errors = "created", result.number, None
        first = previous is None or not previous["created_emitted"]
        cls = InvoiceCreated if first else InvoiceUpdated
        outgoing = cls(
            tenant_id=tenant,
            invoice_id=invoice_id,
            test_mode=test,
            version=event.version,
            invoice=result,
        )
    await conn.execute(
        """INSERT INTO invoices (invoice_id, tenant_id, version, status, number, errors,
                                created_emitted)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $4 = 'created')
           ON CONFLICT (invoice_id) DO UPDATE SET version = EXCLUDED.version,
               status = EXCLUDED.status, number = EXCLUDED.number, errors = EXCLUDED.errors,
               created_emitted = invoices.created_emitted OR EXCLUDED.created_emitted,
               updated_at = now()""",
        event.invoice_id,
        event.tenant_id,
        event.version,
        status,
        number,
        errors,
    )
    return outgoing


async def handle_payment(conn: asyncpg.Connection, event: ErpDocumentFetched) -> EventBody | None:
    """payment.received the first time a payment document carries money; None afterwards.

    A payment is emitted once per (payment document, paid invoice). A later version of the
    same payment emits nothing: when its amount changed (corrected or voided in the source),
    the change is recorded (``payments.last_amount``), logged as a warning and counted
    (``nordflow_mapper_payments_total{outcome="changed"}``), because the source already
    booked it and payment.received has no correction semantics. A version that carries no
    money yet (Visma.net on hold, a voided or zero payment seen first) emits nothing and
    records nothing, so the first version with money is the one emitted.

    Payment data that cannot be read is no invoice to reject: it raises PermanentError
    naming every field, so the record goes to the dead-letter topic (``mapper dlq list``).
    """
    result = map_payment(event)
    if isinstance(result, list):
        problems = "; ".join(f"{i.field} ({i.rule}): {i.message}" for i in result)
        raise PermanentError(
            f"payment document {event.source.document_id} of {event.source.system.value} "
            f"connection {event.source.connection_id} cannot be mapped: {problems}"
        )
    if isinstance(result, NotAPayment):
        log.info("payment document %s not emitted: %s", event.source.document_id, result.reason)
        PAYMENTS.labels("not_a_payment").inc()
        return None
    key = (
        event.tenant_id,
        event.source.system.value,
        event.source.connection_id,
        result.payment_id,
        result.invoice_id,
    )
    if result.amount == 0:
        previous = await _record_change(conn, event, result)
        if previous is None:
            log.info("payment %s has amount 0: not emitted", result.payment_id)
            PAYMENTS.labels("not_a_payment").inc()
        return None
    inserted = await conn.fetchval(
        """INSERT INTO payments (tenant_id, system, connection_id, payment_id, invoice_id,
                                 version, emitted_amount, last_amount, currency)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
           ON CONFLICT DO NOTHING RETURNING true""",
        *key,
        event.version,
        result.amount,
        result.currency,
    )
    if inserted:
        PAYMENTS.labels("emitted").inc()
        return result
    await _record_change(conn, event, result)
    return None


async def _record_change(
    conn: asyncpg.Connection, event: ErpDocumentFetched, payment: PaymentReceived
) -> asyncpg.Record | None:
    """Update an emitted payment's last seen version and amount; warn when the amount moved."""
    row = await conn.fetchrow(
        """SELECT version, emitted_amount, last_amount FROM payments
           WHERE tenant_id = $1 AND system = $2 AND connection_id = $3 AND payment_id = $4
             AND invoice_id = $5 FOR UPDATE""",
        event.tenant_id,
        event.source.system.value,
        event.source.connection_id,
        payment.payment_id,
        payment.invoice_id,
    )
    if row is None:
        return None
    if row["version"] == event.version:
        PAYMENTS.labels("duplicate").inc()
        return row
    await conn.execute(
        """UPDATE payments SET version = $6, last_amount = $7, updated_at = now()
           WHERE tenant_id = $1 AND system = $2 AND connection_id = $3 AND payment_id = $4
             AND invoice_id = $5""",
        event.tenant_id,
        event.source.system.value,
        event.source.connection_id,
        payment.payment_id,
        payment.invoice_id,
        event.version,
        payment.amount,
    )
    if payment.amount != row["emitted_amount"]:
        PAYMENTS.labels("changed").inc()
        log.warning(
            "payment %s on invoice %s changed in the source from %s to %s %s after "
            "payment.received was emitted; no second event is emitted",
            payment.payment_id,
            payment.invoice_id,
            row["emitted_amount"],
            payment.amount,
            payment.currency,
        )
    else:
        PAYMENTS.labels("duplicate").inc()
    return row
