"""Use case: turn a fetched document into invoice.created / updated / rejected, once per version."""

from __future__ import annotations

import json
from collections.abc import Callable

import asyncpg
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import (
    ErpDocumentFetched,
    EventBody,
    InvoiceCreated,
    InvoiceRejected,
    InvoiceUpdated,
    ValidationIssue,
)
from nordflow_schemas.invoice import Invoice

from .fortnox import map_fortnox
from .sirvoy import map_sirvoy
from .validation import validate_invoice
from .visma_eaccounting import map_visma_eaccounting
from .visma_net import map_visma_net

Mapper = Callable[[ErpDocumentFetched], Invoice | list[ValidationIssue]]
MAPPERS: dict[SourceSystem, Mapper] = {
    SourceSystem.FORTNOX: map_fortnox,
    SourceSystem.VISMA_EACCOUNTING: map_visma_eaccounting,
    SourceSystem.VISMA_NET: map_visma_net,
    SourceSystem.SIRVOY: map_sirvoy,
}


def map_document(event: ErpDocumentFetched) -> Invoice | list[ValidationIssue]:
    """Map with the source's mapper, then validate; a list means rejected."""
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
    issues = validate_invoice(result)
    return issues or result


async def handle_fetched(conn: asyncpg.Connection, event: ErpDocumentFetched) -> EventBody | None:
    """Record the outcome for this version; return the event to emit (None if seen before)."""
    previous = await conn.fetchrow(
        "SELECT version, status, created_emitted FROM invoices WHERE invoice_id = $1 FOR UPDATE",
        event.invoice_id,
    )
    if previous is not None and previous["version"] == event.version:
        return None
    result = map_document(event)
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
