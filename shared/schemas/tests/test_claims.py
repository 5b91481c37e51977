"""The claim check's wire format: cutting a content into chunks and putting it together."""

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nordflow_schemas.claims import ContentMismatchError, assemble, chunk_bytes, cut
from nordflow_schemas.envelope import decode, encode, envelope
from nordflow_schemas.events import CHUNK_BYTES, ErpDocumentChunked
from nordflow_schemas.topics import ERP_DOCUMENT_CHUNKED


@settings(max_examples=60, deadline=None)
@given(content=st.binary(min_size=1, max_size=5000), size=st.integers(1, 700))
def test_any_content_cut_and_put_together_is_the_same(content: bytes, size: int) -> None:
    ref, chunks = cut("acme", content, chunk_bytes=size)
    assert ref.sha256 == hashlib.sha256(content).hexdigest()
    assert ref.size == len(content)
    assert ref.chunks == len(chunks) == -(-len(content) // size)
    assert [c.index for c in chunks] == list(range(ref.chunks))
    assert {(c.tenant_id, c.sha256, c.size, c.count) for c in chunks} == {
        ("acme", ref.sha256, ref.size, ref.chunks)
    }
    pieces = {c.index: chunk_bytes(c) for c in chunks}
    assert assemble(ref, pieces) == content
    # Any order of arrival makes the same content.
    assert assemble(ref, dict(reversed(pieces.items()))) == content


def test_a_large_content_makes_chunks_that_fit_the_event_budget() -> None:
    content = bytes(range(256)) * (6 * 1024 + 1)  # 1.5 MiB and a bit
    ref, chunks = cut("acme", content)
    assert ref.chunks == 7
    assert all(len(chunk_bytes(c)) <= CHUNK_BYTES for c in chunks)
    for chunk in chunks:
        key, value, headers = encode(envelope(chunk, source="/erp-poller"))
        assert key == f"acme:{ref.sha256}".encode()
        assert len(value) < 360 * 1024  # base64 of 256 KiB plus the fields
        assert decode(value, headers).body == chunk
    assert envelope(chunks[0], source="/x").topic == ERP_DOCUMENT_CHUNKED.name


def test_a_tampered_or_short_content_is_refused_with_its_reason() -> None:
    content = b"x" * 1000
    ref, chunks = cut("acme", content, chunk_bytes=300)
    pieces = {c.index: chunk_bytes(c) for c in chunks}
    with pytest.raises(ContentMismatchError, match="do not match their SHA-256"):
        assemble(ref, pieces | {1: b"y" * 300})
    with pytest.raises(ContentMismatchError, match="make 999 bytes, 1000 referenced"):
        assemble(ref, pieces | {3: pieces[3][:-1]})
    with pytest.raises(ValueError, match=r"chunks \[2\] .* missing"):
        assemble(ref, {i: p for i, p in pieces.items() if i != 2})


def test_a_chunk_whose_data_is_no_base64_is_a_mismatch() -> None:
    good = cut("acme", b"hello", chunk_bytes=5)[1][0]
    # Valid for the model's pattern, but a length no base64 has.
    bad = ErpDocumentChunked.model_validate(good.model_dump() | {"data": "aGVsb"})
    with pytest.raises(ContentMismatchError, match="chunk 0"):
        chunk_bytes(bad)
    assert base64.b64decode(good.data) == b"hello"


def test_nothing_to_cut_and_chunks_too_large_are_refused() -> None:
    with pytest.raises(ValueError, match="empty content"):
        cut("acme", b"")
    with pytest.raises(ValueError, match="a chunk holds"):
        cut("acme", b"x", chunk_bytes=CHUNK_BYTES + 1)
