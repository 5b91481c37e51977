"""Emitting a document version once, and holding pushed documents back.

Every document — polled, synced, backfilled or pushed — reaches ``erp.document.fetched``
through `emit_version`: its version is recorded and the event written to the outbox in the
caller's transaction, so a crash loses nothing and nothing is emitted twice; an unchanged
version is never emitted again. The event carries the tenant's profile (see
`erp_poller.domain.profiles.tenant_related`). A document too large for its event goes by
reference: its content is written first, as ``erp.document.chunked`` events in the same
transaction, then the event that refers to it (`erp_poller.domain.claims`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from nordflow_runtime.logs import log_context
from nordflow_schemas.common import ConnectionMode
from nordflow_schemas.tenant import TenantProfile

from ..domain.claims import claim_check
from ..domain.connections import Connection
from ..domain.documents import Document, Outcome, fetched_event
from ..domain.profiles import ProfileMissingError
from .ports import Repositories

WAITING_FOR_PROFILE = "held until the tenant's profile is set (PUT /api/v1/profile); it flows then"


async def require_profile(repos: Repositories, tenant_id: str) -> TenantProfile:
    """The tenant's profile; ProfileMissingError if it has none yet."""
    profile = await repos.profiles.get(tenant_id)
    if profile is None:
        raise ProfileMissingError(tenant_id)
    return profile


async def emit_version(
    repos: Repositories,
    connection: Connection,
    profile: TenantProfile,
    document: Document,
    version: str,
    now: dt.datetime,
) -> tuple[bool, str]:
    """Record the version and, if it is new, write the event; (new, the canonical invoice id)."""
    event = fetched_event(connection, profile, document, version=version, fetched_at=now)
    new = await repos.documents.record_version(
        connection.connection_id,
        document.document_id,
        connection.tenant_id,
        event.invoice_id,
        version,
    )
    if new:
        sent, chunks = claim_check(event)
        # The chunks go first: the relay publishes in insertion order, so they reach the
        # broker ahead of the event that refers to them (a consumer still waits for any
        # that are late: they travel on another topic).
        for chunk in chunks:
            await repos.outbox.add(chunk)
        await repos.outbox.add(sent, subject=document.subject)
    return new, event.invoice_id


async def is_newest(repos: Repositories, connection: Connection, document: Document) -> bool:
    """Remember the source's change time of the document; False if a newer snapshot was taken
    already (a late webhook retry, or a poll overtaken by a webhook), so an older content is
    never emitted over a newer one."""
    if document.source_time is None:
        return True
    return await repos.documents.newest_snapshot(
        connection.connection_id, document.document_id, connection.tenant_id, document.source_time
    )


async def emit_fetched(
    repos: Repositories,
    connection: Connection,
    profile: TenantProfile,
    document: Document,
    now: dt.datetime,
) -> bool:
    """A document the poller fetched: emitted if it is the newest snapshot and a new version."""
    if not await is_newest(repos, connection, document):
        return False
    new, _ = await emit_version(repos, connection, profile, document, document.version, now)
    return new


async def ingest_documents(
    repos: Repositories,
    connection: Connection,
    profile: TenantProfile | None,
    documents: Sequence[Document],
    now: dt.datetime,
) -> list[Outcome]:
    """Pushed documents: version them, then emit (test and automatic mode) or hold them back
    (manual mode, or while the tenant has no profile)."""
    outcomes: list[Outcome] = []
    for doc in documents:
        outcome = Outcome(doc.document_id, "", doc.kind.value, doc.document_number)
        outcomes.append(outcome)
        if not await is_newest(repos, connection, doc):
            outcome.outcome = "outdated"
            outcome.reason = "a newer snapshot of this document was already received"
            continue
        version = doc.version
        if connection.mode is ConnectionMode.MANUAL or profile is None:
            emitted = await repos.documents.version_of(connection.connection_id, doc.document_id)
            if emitted == version:
                # The latest push says what was already emitted: an older pending one is void.
                await repos.pushes.drop_pending(connection.connection_id, doc.document_id)
                outcome.outcome = "unchanged"
                continue
            await repos.pushes.keep_pending(connection, doc, version)
            outcome.outcome = "pending"
            if profile is None and connection.mode is not ConnectionMode.MANUAL:
                outcome.reason = WAITING_FOR_PROFILE
            continue
        new, outcome.invoice_id = await emit_version(repos, connection, profile, doc, version, now)
        if new:
            await repos.pushes.drop_pending(connection.connection_id, doc.document_id)
        outcome.outcome = "emitted" if new else "unchanged"
    return outcomes


async def release_pending(
    repos: Repositories,
    connection: Connection,
    profile: TenantProfile,
    *,
    limit: int | None,
    documents: Sequence[str],
    now: dt.datetime,
) -> int:
    """Emit the named held-back documents, or the oldest ``limit`` of them (None: all);
    returns how many were emitted.

    Held-back rows are claimed skipping those another transaction holds, so two concurrent
    requests never emit a document twice. One whose version was emitted meanwhile is dropped.
    """
    emitted = 0
    held = await repos.pushes.claim_pending(
        connection.connection_id, documents, None if documents else limit
    )
    for pending in held:
        with log_context(connection.tenant_id, None):
            new, _ = await emit_version(
                repos, connection, profile, pending.document, pending.version, now
            )
        emitted += new
        await repos.pushes.drop_pending(connection.connection_id, pending.document.document_id)
    return emitted
