"""What the use cases take: the repositories (one set per transaction, from a unit of work),
the outbox, the source clients and the sealing of secrets. Adapters implement them with
PostgreSQL and the partners' APIs; ``erp_poller.testing`` with fakes."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import Event
from nordflow_schemas.tenant import TenantProfile
from pydantic import SecretStr

from ..domain.connections import (
    BackfillRequest,
    Connection,
    ConnectionConfig,
    ConnectionRevision,
    ConnectionState,
    SyncRequest,
)
from ..domain.documents import PAYMENT_PREFIX, Document
from ..domain.profiles import LegacySeller, StoredProfile

# ----------------------------------------------------------------------------- repositories


class ConnectionRepository(Protocol):
    """Tenants' connections and their polling state."""

    async def add(self, config: ConnectionConfig) -> None:
        """Create or replace a connection's configuration (the cursor is kept); a removed
        connection of the same tenant and system is added again.

        Raises ConnectionTakenError if the id belongs to another tenant or system,
        ConnectionBusyError while the connection is being polled, synced or backfilled.
        """
        ...

    async def states(self, tenant_id: str | None = None) -> list[ConnectionState]:
        """Connections with their polling state, of one tenant or (None) of all.

        Here and below, a removed connection is none (except for ``next_revision``).
        """
        ...

    async def state(self, tenant_id: str, connection_id: str) -> ConnectionState | None:
        """One of the tenant's connections with its polling state."""
        ...

    async def get(self, connection_id: str, tenant_id: str | None = None) -> Connection | None:
        """A connection as the poller sees it (its token still sealed); with ``tenant_id``,
        only if it is that tenant's."""
        ...

    async def of_tenant(self, tenant_id: str) -> list[Connection]:
        """The tenant's connections."""
        ...

    async def set_mode(self, tenant_id: str, connection_id: str, mode: ConnectionMode) -> bool:
        """Change a connection's mode; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        ...

    async def make_due(self, tenant_id: str, connection_id: str) -> bool:
        """Make the connection due for a poll now; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        ...

    async def remove(self, tenant_id: str, connection_id: str) -> bool:
        """Mark the connection removed; False if the tenant has no such connection.

        Raises ConnectionBusyError while the connection is being polled or backfilled.
        """
        ...

    async def next_revision(self, connection_id: str) -> ConnectionRevision:
        """Count one more revision of the connection's published state (removed or not) and
        return that state; the row stays locked until the transaction ends."""
        ...

    async def unannounced(self) -> str | None:
        """Lock one connection whose state was never published (none another transaction
        holds); its id."""
        ...

    async def claim_due(self) -> Connection | None:
        """Lock one due polling connection (test or automatic mode) for this transaction."""
        ...

    async def finish_poll(
        self,
        connection_id: str,
        *,
        cursor_at: dt.datetime | None,
        next_poll_at: dt.datetime,
        error: str | None,
    ) -> None:
        """Record the poll (it ended now; without ``error``, it succeeded now); the cursor
        advances only after a complete poll."""
        ...


class DocumentRepository(Protocol):
    """The last version seen of each source document (the dedupe state)."""

    async def newest_snapshot(
        self, connection_id: str, document_id: str, tenant_id: str, source_time: dt.datetime
    ) -> bool:
        """Remember the source's change time of a snapshot; False if a newer one was taken."""
        ...

    async def record_version(
        self, connection_id: str, document_id: str, tenant_id: str, invoice_id: str, version: str
    ) -> bool:
        """Remember a version; True if it is new (first sight or changed content)."""
        ...

    async def version_of(self, connection_id: str, document_id: str) -> str | None:
        """The version last emitted of a document, if any."""
        ...


class RequestRepository(Protocol):
    """Users' sync and backfill requests."""

    async def request_sync(
        self, tenant_id: str, connection_id: str, limit: int | None, documents: Sequence[str]
    ) -> SyncRequest:
        """Queue a sync request."""
        ...

    async def sync_request(self, tenant_id: str, request_id: int) -> SyncRequest | None:
        """A sync request of the tenant's."""
        ...

    async def claim_sync(self) -> tuple[SyncRequest, Connection] | None:
        """Lock the oldest pending sync request and its connection for this transaction."""
        ...

    async def finish_sync(self, request_id: int, emitted: int | None, error: str | None) -> None:
        """Record how a sync request ended."""
        ...

    async def cancel_pending(self, connection_id: str, error: str) -> int:
        """Finish the connection's unfinished sync and backfill requests with ``error``; how
        many."""
        ...

    async def request_backfill(
        self, tenant_id: str, connection_id: str, since: dt.datetime
    ) -> BackfillRequest:
        """Queue a backfill from ``since``."""
        ...

    async def backfill_request(self, tenant_id: str, request_id: int) -> BackfillRequest | None:
        """A backfill request of the tenant's, with its progress."""
        ...

    async def backfill_requests(
        self, tenant_id: str | None, connection_id: str | None = None
    ) -> list[BackfillRequest]:
        """Backfill requests, newest first (an operator's view when ``tenant_id`` is None)."""
        ...

    async def claim_backfill(self) -> tuple[BackfillRequest, Connection] | None:
        """Lock the connection of the oldest due, unfinished backfill for this transaction."""
        ...

    async def start_backfill(self, request_id: int) -> None:
        """Count an attempt and start its listing count afresh."""
        ...

    async def backfill_progress(self, request_id: int, listed: int) -> None:
        """How many documents the running attempt listed so far."""
        ...

    async def count_backfill_emission(self, request_id: int) -> None:
        """One more version emitted (counted in the emission's own transaction)."""
        ...

    async def finish_backfill(self, request_id: int, error: str | None) -> None:
        """Done, or failed for good."""
        ...

    async def retry_backfill(self, request_id: int, error: str, delay: dt.timedelta) -> None:
        """Failed this time: keep the error, try again after ``delay``."""
        ...


@dataclass(frozen=True)
class PendingDocument:
    """A pushed document held back (manual mode, or no profile yet) and its version."""

    document: Document
    version: str


@dataclass(frozen=True)
class ReceivedBatch:
    """An on-premise batch received before: its body's digest and the answer it got."""

    body_sha256: str
    response: dict[str, Any]


class PushRepository(Protocol):
    """What pushes leave behind: held-back documents, received batches, customer registers."""

    async def keep_pending(self, connection: Connection, document: Document, version: str) -> None:
        """Hold a document back (replacing an older pending version of it)."""
        ...

    async def drop_pending(self, connection_id: str, document_id: str) -> None:
        """Forget a held-back document."""
        ...

    async def claim_pending(
        self, connection_id: str, documents: Sequence[str], limit: int | None
    ) -> list[PendingDocument]:
        """Lock the named held-back documents, or the oldest ``limit`` (None: all), skipping
        those another transaction holds."""
        ...

    async def received_batch(self, connection_id: str, batch_id: str) -> ReceivedBatch | None:
        """A batch received before, with the answer it got."""
        ...

    async def claim_batch(
        self, connection_id: str, batch_id: str, tenant_id: str, body_sha256: str
    ) -> bool:
        """Record a batch as received; False if it was (waits for a concurrent receipt)."""
        ...

    async def answer_batch(
        self, connection_id: str, batch_id: str, response: dict[str, Any]
    ) -> None:
        """Keep the answer a received batch got (for its replays)."""
        ...

    async def registered_customers(
        self, connection: Connection, numbers: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The register entries of these customer numbers (unknown ones are left out)."""
        ...

    async def upsert_customers(
        self, connection: Connection, customers: Sequence[tuple[str, dict[str, Any]]]
    ) -> dict[str, int]:
        """Insert or replace entries by number; counts of created, updated and unchanged."""
        ...


class ProfileRepository(Protocol):
    """The tenants' profiles (erp-poller's authoritative copy) and the sellers connections
    carried before profiles existed."""

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's profile, or None."""
        ...

    async def stored(self, tenant_id: str) -> StoredProfile | None:
        """The tenant's profile with its revision."""
        ...

    async def save(
        self, tenant_id: str, profile: TenantProfile, updated_at: dt.datetime
    ) -> int | None:
        """Store the profile as a new revision (1 for a new tenant); its revision, or None
        when it equals the stored one (nothing changes)."""
        ...

    async def next_legacy_seller(self) -> LegacySeller | None:
        """Lock one seller still waiting to become a profile (none with a problem)."""
        ...

    async def legacy_problem(self, tenant_id: str, problem: str) -> None:
        """Why the tenant's legacy seller cannot become a profile (an operator sets one)."""
        ...

    async def forget_legacy_seller(self, tenant_id: str) -> None:
        """The tenant has a profile: its legacy seller is of no further use."""
        ...


class Outbox(Protocol):
    """Events to publish, written in the transaction of the change they announce."""

    async def add(self, event: Event, *, subject: str | None = None) -> None:
        """Publish ``event`` once this transaction commits."""
        ...


@dataclass(frozen=True)
class Repositories:
    """Everything a use case reads or writes, on one transaction."""

    connections: ConnectionRepository
    documents: DocumentRepository
    requests: RequestRepository
    pushes: PushRepository
    profiles: ProfileRepository
    outbox: Outbox


class UnitOfWork(Protocol):
    """Transactions: a poll commits each document in one of its own while it holds the
    connection in another; most use cases take the `Repositories` of one."""

    def transaction(self) -> AbstractAsyncContextManager[Repositories]:
        """Repositories on a new transaction, committed when the block ends without error."""
        ...


class Secrets(Protocol):
    """Seals secrets before they are stored and opens them where they are used."""

    def seal(self, secret: str) -> bytes:
        """Ciphertext for storage."""
        ...

    def open(self, sealed: bytes) -> SecretStr:
        """The secret again (raises ValueError if it cannot be opened)."""
        ...


# ---------------------------------------------------------------------------------- sources

ChangeKind = Literal["invoice", "payment"]


@dataclass(frozen=True)
class Change:
    """One listed document: its id in our events, and the source's own id to fetch it by."""

    document_id: str
    ref: str
    kind: ChangeKind = "invoice"

    @classmethod
    def of(cls, document_id: str) -> Change:
        """The change for a document id as events carry it (``payment:<id>`` for payments)."""
        if document_id.startswith(PAYMENT_PREFIX):
            return cls(document_id, document_id.removeprefix(PAYMENT_PREFIX), "payment")
        return cls(document_id, document_id, "invoice")


class Listing:
    """The changes of one window; ``watermark`` is the server's "now" at its start, if the
    source tells it (else None: the poller's own start time is the cursor)."""

    def __init__(
        self,
        changes: AsyncIterator[Change],
        watermark: Callable[[], dt.datetime | None] = lambda: None,
    ) -> None:
        self._changes = changes
        self._watermark = watermark

    def __aiter__(self) -> AsyncIterator[Change]:
        return self._changes

    @property
    def watermark(self) -> dt.datetime | None:
        """Read it once the listing was iterated to the end."""
        return self._watermark()


@dataclass
class FetchCache:
    """Records read once per run (customers, bookings), by ``kind:id``."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def get(self, key: str, read: Callable[[], Any]) -> dict[str, Any]:
        """The cached record, reading it on first use."""
        if key not in self.records:
            self.records[key] = await read()
        return self.records[key]


class Source(Protocol):
    """What polling, syncs and backfills need from a source system."""

    system: SourceSystem

    def changes_since(self, since: dt.datetime) -> Listing:
        """Documents modified at or after ``since`` (oldest first where the source sorts)."""
        ...

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The full document; None if it is not one that flows (e.g. an unapplied payment)."""
        ...

    async def aclose(self) -> None:
        """Close the clients."""
        ...


class Sources(Protocol):
    """The source of each connection (clients reused across runs)."""

    async def source_for(self, connection: Connection) -> Source:
        """The connection's source, opened on first use or after its configuration changed."""
        ...
