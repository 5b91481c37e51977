"""The claim check through mapper's consumer on the real PostgreSQL (ServiceHarness: the
runtime's batch and record-by-record processing, inbox, outbox, dead letters): a document
that came by reference is mapped once from mapper's own chunks, whatever the order and the
copies; a tampered chunk dead-letters the document with its reason; another tenant's chunks
never satisfy a reference."""

from __future__ import annotations

import asyncio

import pytest
from mapper.deps import Deps
from mapper.testing import by_reference, fetched, fortnox_invoice
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import Envelope, envelope
from nordflow_schemas.events import ErpDocumentChunked, ErpDocumentFetched, InvoiceCreated
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration


def large(tenant: str, number: str = "12345") -> ErpDocumentFetched:
    """A Fortnox invoice whose related customer carries a 700 kB note (over the budget)."""
    return fetched(
        SourceSystem.FORTNOX,
        fortnox_invoice(number),
        related={"customer": {"Name": "Åsa", "Comments": "x" * 700_000}},
        tenant_id=tenant,
        invoice_id=canonical_invoice_id(tenant, "fortnox", "c1", number),
        document_id=number,
        document_number=number,
    )


def sent(tenant: str) -> tuple[Envelope[ErpDocumentFetched], list[Envelope[ErpDocumentChunked]]]:
    event, chunks = by_reference(large(tenant), chunk_bytes=256 * 1024)
    return (
        envelope(event, source="/erp-poller", subject="fortnox/12345"),
        [envelope(c, source="/erp-poller") for c in chunks],
    )


async def created(harness: ServiceHarness[Deps], tenant: str) -> list[InvoiceCreated]:
    return [e for e in (await harness.emitted()).of(InvoiceCreated) if e.tenant_id == tenant]


async def test_chunks_then_the_reference_twice_map_once(harness: ServiceHarness[Deps]) -> None:
    tenant = new_tenant()
    event, chunks = sent(tenant)
    assert len(chunks) == 3

    await harness.deliver(*chunks)
    await harness.deliver(*chunks[:2])  # a relay sent them again: the inbox drops them
    copies = [envelope(c.body, source="/erp-poller") for c in chunks]  # the same content again
    await harness.deliver(*copies)
    stored = await harness.pool.fetchval(
        "SELECT count(*) FROM payload_chunks WHERE tenant_id = $1", tenant
    )
    assert stored == 3
    out = await harness.deliver(event, event)

    [invoice] = out.of(InvoiceCreated)
    assert invoice.invoice.number == "12345"
    assert out.dead_letters == []
    assert (await harness.deliver(event)).events == []
    assert len(await created(harness, tenant)) == 1


async def test_the_reference_before_its_chunks_waits_and_maps_once(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    event, chunks = sent(tenant)

    waiting = asyncio.create_task(harness.deliver(event))
    await asyncio.sleep(1.5)  # past the batch's tries: record by record, waiting uncounted
    assert not waiting.done()
    await harness.deliver(*chunks[::-1])
    await asyncio.wait_for(waiting, timeout=30)

    assert len(await created(harness, tenant)) == 1
    assert (await harness.emitted()).dead_letters == []


async def test_a_tampered_chunk_dead_letters_the_document_with_its_reason(
    harness: ServiceHarness[Deps],
) -> None:
    tenant = new_tenant()
    event, chunks = sent(tenant)
    body = chunks[1].body
    data = body.data[:100] + ("B" if body.data[100] == "A" else "A") + body.data[101:]
    bad = envelope(body.model_copy(update={"data": data}), source="/erp-poller")

    await harness.deliver(chunks[0], bad, chunks[2])
    out = await harness.deliver(event)

    assert out.of(InvoiceCreated) == []
    [letter] = out.dead_letters
    assert letter.origin_topic == "erp.document.fetched"
    assert letter.event_id == f"dlq:mapper:{event.id}"
    ref = event.body.payload_ref
    assert ref is not None
    assert f"content {ref.sha256} of fortnox document 12345 (tenant {tenant})" in letter.reason
    assert "do not match their SHA-256" in letter.reason


async def test_another_tenants_chunks_never_satisfy_a_reference(
    harness: ServiceHarness[Deps],
) -> None:
    owner, other = new_tenant(), new_tenant()
    theirs, chunks = sent(owner)
    # The same content referred to by another tenant's document.
    ours = envelope(
        theirs.body.model_copy(
            update={
                "tenant_id": other,
                "invoice_id": canonical_invoice_id(other, "fortnox", "c1", "12345"),
            }
        ),
        source="/erp-poller",
    )
    await harness.deliver(*chunks)

    waiting = asyncio.create_task(harness.deliver(ours))
    await asyncio.sleep(2)
    assert not waiting.done()  # still waiting for chunks of its own tenant
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await created(harness, other) == []
    await harness.deliver(theirs)
    assert len(await created(harness, owner)) == 1
