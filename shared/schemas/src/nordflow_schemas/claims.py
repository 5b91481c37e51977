"""The claim check's wire format: a content too large for its event, cut into
``erp.document.chunked`` events and put together again (pure; both sides use it).

A content is any bytes. It is cut into pieces of at most ``CHUNK_BYTES``, in order; each
chunk carries the tenant, the SHA-256 and size of the whole content, its index and the
count, and its bytes in base64. The event that refers to the content carries a
``PayloadRef`` (sha256, size, chunks). Whoever puts it together takes chunks 0 … count-1
of the same tenant and SHA-256, and checks the size and the SHA-256 of the result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping

from .events import CHUNK_BYTES, ErpDocumentChunked, PayloadRef


class ContentMismatchError(ValueError):
    """Chunks that do not make the content referred to (size or SHA-256 differ, a chunk of
    another count or size, bytes that are no base64)."""


def cut(
    tenant_id: str, content: bytes, chunk_bytes: int = CHUNK_BYTES
) -> tuple[PayloadRef, list[ErpDocumentChunked]]:
    """The reference to ``content`` and its chunks, in order."""
    if not 0 < chunk_bytes <= CHUNK_BYTES:
        raise ValueError(f"a chunk holds 1 to {CHUNK_BYTES} bytes, not {chunk_bytes}")
    if not content:
        raise ValueError("an empty content needs no claim check")
    sha256 = hashlib.sha256(content).hexdigest()
    pieces = [content[i : i + chunk_bytes] for i in range(0, len(content), chunk_bytes)]
    ref = PayloadRef(sha256=sha256, size=len(content), chunks=len(pieces))
    chunks = [
        ErpDocumentChunked(
            tenant_id=tenant_id,
            sha256=sha256,
            size=len(content),
            index=index,
            count=len(pieces),
            data=base64.b64encode(piece).decode("ascii"),
        )
        for index, piece in enumerate(pieces)
    ]
    return ref, chunks


def chunk_bytes(chunk: ErpDocumentChunked) -> bytes:
    """A chunk's bytes; `ContentMismatchError` when its data is no base64."""
    try:
        return base64.b64decode(chunk.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContentMismatchError(f"chunk {chunk.index} of {chunk.sha256}: {exc}") from None


def assemble(ref: PayloadRef, pieces: Mapping[int, bytes]) -> bytes:
    """The content ``ref`` refers to from its chunks' bytes by index (every index from 0 to
    ``ref.chunks`` - 1 must be there: the caller waits until they are); raises
    `ContentMismatchError` when they do not make it."""
    missing = [i for i in range(ref.chunks) if i not in pieces]
    if missing:
        raise ValueError(f"chunks {missing[:5]} of {ref.sha256} are missing")
    content = b"".join(pieces[i] for i in range(ref.chunks))
    if len(content) != ref.size:
        raise ContentMismatchError(
            f"content {ref.sha256}: its {ref.chunks} chunks make {len(content)} bytes, "
            f"{ref.size} referenced"
        )
    if hashlib.sha256(content).hexdigest() != ref.sha256:
        raise ContentMismatchError(
            f"content {ref.sha256}: its {ref.chunks} chunks do not match their SHA-256"
        )
    return content
