"""The claim check, read side (pure): an ``erp.document.fetched`` whose content came as
``erp.document.chunked`` events is made whole again from that content, which the caller put
together and checked (`nordflow_schemas.claims.assemble`)."""

from __future__ import annotations

import json
from typing import Any

from nordflow_schemas.claims import ContentMismatchError
from nordflow_schemas.events import ErpDocumentFetched


def where(event: ErpDocumentFetched) -> str:
    """The content's and its document's names, for messages."""
    ref = event.payload_ref
    sha = ref.sha256 if ref is not None else "-"
    return (
        f"content {sha} of {event.source.system.value} document {event.source.document_id} "
        f"(tenant {event.tenant_id})"
    )


def resolved(event: ErpDocumentFetched, content: bytes) -> ErpDocumentFetched:
    """The event as if its content had travelled inline: the content's payload, and its
    related records under the event's own (the tenant's profile). `ContentMismatchError`
    when the content is not the JSON object of payload and related it must be."""
    try:
        parsed: Any = json.loads(content)
    except ValueError:
        parsed = None
    if (
        not isinstance(parsed, dict)
        or not isinstance(parsed.get("payload"), dict)
        or not isinstance(parsed.get("related"), dict)
    ):
        raise ContentMismatchError(f"{where(event)}: not a JSON object of payload and related")
    return ErpDocumentFetched.model_validate(
        {
            **event.model_dump(mode="json", exclude={"payload", "related", "payload_ref"}),
            "payload": parsed["payload"],
            "related": {**parsed["related"], **event.related},
        }
    )
