"""The claim check, producer side: an ``erp.document.fetched`` event too large to travel
whole is sent without its content, which goes ahead of it as ``erp.document.chunked`` events
(`nordflow_schemas.claims`).

The content is the JSON object ``{"payload": …, "related": …}`` — the document's payload and
the source's related records (a Sirvoy booking is often the large part), serialised by the
event's own model, so the consumer reads exactly what would have travelled inline. The
tenant's profile (``related["tenant"]``, small) stays in the event.
"""

from __future__ import annotations

from typing import Any

from nordflow_schemas.claims import cut
from nordflow_schemas.events import RELATED_TENANT, ErpDocumentChunked, ErpDocumentFetched
from pydantic import TypeAdapter

# An event body over this many bytes travels by reference: a quarter of the runtime's
# 900 KiB budget (MAX_EVENT_BYTES), so that an inline event and a chunk (256 KiB of content,
# about 342 KiB in base64) weigh about the same and no consumer ever fetches records near
# Kafka's 1 MiB limit.
CLAIM_CHECK_BYTES = 256 * 1024

_CONTENT = TypeAdapter(dict[str, Any])


def content_of(event: ErpDocumentFetched) -> bytes:
    """The bytes a reference stands for: the payload and the source's related records."""
    source_related = {k: v for k, v in event.related.items() if k != RELATED_TENANT}
    return _CONTENT.dump_json({"payload": event.payload, "related": source_related})


def claim_check(
    event: ErpDocumentFetched, limit: int = CLAIM_CHECK_BYTES
) -> tuple[ErpDocumentFetched, list[ErpDocumentChunked]]:
    """The event as it travels and the chunks to send before it: unchanged and none when its
    body is at most ``limit`` bytes; otherwise without its payload and the source's related
    records, with a reference to the chunks that carry them."""
    if len(event.model_dump_json().encode()) <= limit:
        return event, []
    ref, chunks = cut(event.tenant_id, content_of(event))
    kept = {k: v for k, v in event.related.items() if k == RELATED_TENANT}
    sent = event.model_copy(update={"payload": {}, "related": kept, "payload_ref": ref})
    return sent, chunks
