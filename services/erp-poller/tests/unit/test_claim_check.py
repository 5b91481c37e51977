"""The claim check on fakes: a document whose event would be over CLAIM_CHECK_BYTES goes out as
erp.document.chunked events, written before the event that refers to them and in its
transaction; small ones travel inline."""

from __future__ import annotations

import datetime as dt
import json

from erp_poller.domain.claims import CLAIM_CHECK_BYTES, claim_check, content_of
from erp_poller.domain.connections import Connection, ConnectionConfig
from erp_poller.domain.documents import Document
from erp_poller.service.documents import ingest_documents
from erp_poller.testing import FakeUnitOfWork, seller_profile
from nordflow_runtime.outbox import MAX_EVENT_BYTES
from nordflow_schemas.claims import assemble, chunk_bytes
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import (
    CHUNK_BYTES,
    RELATED_TENANT,
    DocumentKind,
    ErpDocumentChunked,
    ErpDocumentFetched,
)

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
PROFILE = seller_profile("Kök AB")


def big_order(number: str, size: int) -> Document:
    lines = [{"description": f"rad {i} " + "x" * 90, "quantity": "1"} for i in range(size // 100)]
    return Document(
        number,
        number,
        DocumentKind.ORDER,
        {"order_id": number, "lines": lines},
        {"customer": {"name": "Åsa", "notes": "y" * 2000}},
    )


async def connection_of(uow: FakeUnitOfWork) -> Connection:
    await uow.repos.connections.add(
        ConnectionConfig(
            connection_id="c1",
            tenant_id="t-kok",
            system=SourceSystem.WINNER,
            base_url="https://push.invalid",
            token_sealed=b"sealed",
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=NOW,
        )
    )
    await uow.repos.profiles.save("t-kok", PROFILE, NOW)
    connection = await uow.repos.connections.get("c1")
    assert connection is not None
    return connection


async def test_a_large_document_goes_as_chunks_then_a_reference() -> None:
    uow = FakeUnitOfWork()
    connection = await connection_of(uow)
    doc = big_order("Q1", 1_500_000)  # 1.5 MB: over the event budget inline

    [outcome] = await ingest_documents(uow.repos, connection, PROFILE, [doc], NOW)

    assert outcome.outcome == "emitted"
    written = [event for event, _ in uow.outbox.written]
    *chunks, event = written
    assert isinstance(event, ErpDocumentFetched)
    assert all(isinstance(c, ErpDocumentChunked) for c in chunks)  # every chunk first
    ref = event.payload_ref
    assert ref is not None
    assert ref.size > MAX_EVENT_BYTES
    assert ref.chunks == len(chunks) == -(-ref.size // CHUNK_BYTES)
    assert event.payload == {}
    assert set(event.related) == {RELATED_TENANT}  # the profile stays in the event
    assert len(event.model_dump_json()) < CLAIM_CHECK_BYTES
    pieces = {}
    for chunk in chunks:
        assert isinstance(chunk, ErpDocumentChunked)
        assert (chunk.tenant_id, chunk.sha256, chunk.count) == ("t-kok", ref.sha256, ref.chunks)
        pieces[chunk.index] = chunk_bytes(chunk)
    content = json.loads(assemble(ref, pieces))
    assert content == {"payload": doc.payload, "related": doc.related}


async def test_a_small_document_travels_inline() -> None:
    uow = FakeUnitOfWork()
    connection = await connection_of(uow)
    doc = big_order("Q2", 5_000)

    await ingest_documents(uow.repos, connection, PROFILE, [doc], NOW)

    [(event, _)] = uow.outbox.written
    assert isinstance(event, ErpDocumentFetched)
    assert event.payload_ref is None
    assert event.payload == doc.payload
    assert event.related["customer"] == doc.related["customer"]


async def test_the_same_version_again_sends_nothing() -> None:
    uow = FakeUnitOfWork()
    connection = await connection_of(uow)
    doc = big_order("Q3", 600_000)

    await ingest_documents(uow.repos, connection, PROFILE, [doc], NOW)
    sent = len(uow.outbox.written)
    [again] = await ingest_documents(uow.repos, connection, PROFILE, [doc], NOW)

    assert again.outcome == "unchanged"
    assert len(uow.outbox.written) == sent  # the chunks and the event, once
    assert len(uow.outbox.of(ErpDocumentFetched)) == 1


def test_the_reference_reads_back_as_the_inline_event() -> None:
    doc = big_order("Q4", 400_000)
    inline = ErpDocumentFetched.model_validate(
        {
            "tenant_id": "t-kok",
            "invoice_id": "inv_1",
            "source": {"system": "winner", "connection_id": "c1", "document_id": "Q4"},
            "kind": "order",
            "version": "v1",
            "fetched_at": NOW,
            "payload": {**doc.payload, "amount": "12.50", "when": "2025-03-10"},
            "related": {**doc.related, RELATED_TENANT: PROFILE.model_dump(mode="json")},
        }
    )
    sent, chunks = claim_check(inline)
    assert sent.payload_ref is not None
    content = json.loads(assemble(sent.payload_ref, {c.index: chunk_bytes(c) for c in chunks}))
    rebuilt = sent.model_copy(
        update={
            "payload": content["payload"],
            "related": {**content["related"], **sent.related},
            "payload_ref": None,
        }
    )
    # Exactly what would have travelled: equal as the consumer decodes it.
    assert ErpDocumentFetched.model_validate_json(rebuilt.model_dump_json()) == inline
    assert content_of(inline) == content_of(rebuilt)
    assert claim_check(inline, 10 * CLAIM_CHECK_BYTES) == (inline, [])
