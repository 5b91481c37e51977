"""The claim check's read side on fakes: chunks kept once per (tenant, SHA-256, index), a
document that came by reference put together from its own tenant's chunks and mapped as if
inline, waiting while a chunk is missing, refused when the chunks do not make the content,
and purged after the retention."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from mapper.domain.claims import resolved
from mapper.service import (
    PayloadMismatchError,
    PayloadPendingError,
    handle_fetched_batch,
    purge_payloads,
    resolve_payloads,
    store_chunks,
)
from mapper.testing import FakePayloadChunks, by_reference, fake_repositories, fetched
from mapper.testing import fortnox_invoice as fortnox
from nordflow_schemas.claims import ContentMismatchError
from nordflow_schemas.common import SourceSystem
from nordflow_schemas.events import ErpDocumentChunked, ErpDocumentFetched, InvoiceCreated

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def large(tenant: str = "acme") -> ErpDocumentFetched:
    """A Fortnox invoice with a 300 kB customer note among its related records."""
    return fetched(
        SourceSystem.FORTNOX,
        fortnox("12345"),
        related={"customer": {"Name": "Åsa", "Comments": "x" * 300_000}},
        tenant_id=tenant,
        document_id="12345",
    )


async def test_a_document_by_reference_maps_as_if_inline() -> None:
    repos = fake_repositories()
    inline = large()
    sent, chunks = by_reference(inline)
    assert len(chunks) == 5

    await store_chunks(repos.chunks, list(reversed(chunks)))  # any order
    [whole] = await resolve_payloads(repos.chunks, [sent])

    assert whole == inline
    [created] = await handle_fetched_batch(repos, [whole])
    assert isinstance(created, InvoiceCreated)
    [direct] = await handle_fetched_batch(fake_repositories(), [inline])
    assert created.model_dump(exclude={"invoice"}) == direct.model_dump(exclude={"invoice"})


async def test_chunks_delivered_twice_are_kept_once() -> None:
    repos = fake_repositories()
    inline = large()
    sent, chunks = by_reference(inline)
    await store_chunks(repos.chunks, chunks)
    await store_chunks(repos.chunks, chunks + chunks[:2])
    assert len(repos.chunks.rows) == len(chunks)
    assert await resolve_payloads(repos.chunks, [sent]) == [inline]


async def test_a_document_waits_while_a_chunk_is_missing() -> None:
    repos = fake_repositories()
    sent, chunks = by_reference(large())
    await store_chunks(repos.chunks, chunks[:-1])
    with pytest.raises(PayloadPendingError, match="4 of 5 chunks have arrived"):
        await resolve_payloads(repos.chunks, [sent])
    await store_chunks(repos.chunks, chunks[-1:])
    assert (await resolve_payloads(repos.chunks, [sent]))[0].payload == fortnox("12345")


async def test_another_tenants_chunks_never_satisfy_a_reference() -> None:
    repos = fake_repositories()
    theirs, chunks = by_reference(large("other"))
    ours = theirs.model_copy(update={"tenant_id": "acme"})  # the same content, referenced
    await store_chunks(repos.chunks, chunks)
    with pytest.raises(PayloadPendingError, match="0 of 5 chunks"):
        await resolve_payloads(repos.chunks, [ours])
    [whole] = await resolve_payloads(repos.chunks, [theirs])
    assert whole.tenant_id == "other"


def tampered(chunk: ErpDocumentChunked) -> ErpDocumentChunked:
    data = chunk.data
    flipped = ("B" if data[10] == "A" else "A") + data[11:]
    return chunk.model_copy(update={"data": data[:10] + flipped})


async def test_a_tampered_chunk_is_a_mismatch_naming_the_document() -> None:
    repos = fake_repositories()
    sent, chunks = by_reference(large())
    await store_chunks(repos.chunks, [tampered(chunks[0]), *chunks[1:]])
    with pytest.raises(PayloadMismatchError, match=r"document 12345 .* do not match their SHA-256"):
        await resolve_payloads(repos.chunks, [sent])


async def test_a_chunk_that_is_no_base64_or_too_long_is_refused() -> None:
    repos = fake_repositories()
    _, [chunk, *_] = by_reference(large())
    with pytest.raises(PayloadMismatchError, match="chunk 0"):
        await store_chunks(repos.chunks, [chunk.model_copy(update={"data": "QUJDR"})])
    with pytest.raises(PayloadMismatchError, match="has 65536 bytes, the content 10"):
        await store_chunks(repos.chunks, [chunk.model_copy(update={"size": 10})])
    assert repos.chunks.rows == {}


def test_content_that_is_not_payload_and_related_is_a_mismatch() -> None:
    sent, _ = by_reference(large())
    for content in (b"[1]", b"not json", json.dumps({"payload": {}}).encode()):
        with pytest.raises(ContentMismatchError, match="not a JSON object of payload"):
            resolved(sent, content)


async def test_purge_deletes_only_chunks_past_their_retention() -> None:
    times = iter([NOW - dt.timedelta(days=50)] * 5 + [NOW - dt.timedelta(days=10)] * 5)
    chunks = FakePayloadChunks(clock=lambda: next(times))
    _, old = by_reference(large("old"))
    sent, recent = by_reference(large("recent"))
    await store_chunks(chunks, old)
    await store_chunks(chunks, recent)

    assert await purge_payloads(chunks, NOW, 45) == 5
    assert {t for t, _, _ in chunks.rows} == {"recent"}
    assert len(await resolve_payloads(chunks, [sent])) == 1


def test_the_reference_reads_back_as_sent() -> None:
    sent, chunks = by_reference(large())
    ref = sent.payload_ref
    assert ref is not None
    body: dict[str, Any] = sent.model_dump(mode="json")
    assert body["payload"] == {}
    assert body["payload_ref"] == {"sha256": ref.sha256, "size": ref.size, "chunks": 5}
    assert {c.record_key for c in chunks} == {f"acme:{ref.sha256}"}
