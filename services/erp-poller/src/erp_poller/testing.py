"""For erp-poller's tests: the service on a database, and fakes of its repositories, unit of
work and sources for fast use-case tests (importable by tests; never used in production)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from cryptography.fernet import Fernet
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import Event
from nordflow_schemas.tenant import AccountScheme, BankAccount, TenantProfile
from nordflow_schemas.testing import tenant_profile
from pydantic import SecretStr

from .adapters.repository import PgUnitOfWork
from .adapters.source_cache import SourceCache
from .adapters.sources import ClientOptions
from .app import create_app
from .config import Settings
from .deps import Deps
from .domain.connections import (
    BackfillRequest,
    Connection,
    ConnectionConfig,
    ConnectionRevision,
    ConnectionState,
    ConnectionTakenError,
    SyncRequest,
)
from .domain.documents import Document
from .domain.profiles import LegacySeller, StoredProfile
from .entrypoints.loops import Steps
from .service.polling import Schedule
from .service.ports import (
    Change,
    FetchCache,
    Listing,
    PendingDocument,
    ReceivedBatch,
    Repositories,
    UnitOfWork,
)


def now() -> dt.datetime:
    """The current time, aware."""
    return dt.datetime.now(dt.UTC)


def app_for(
    database_url: str, *, encryption_key: str | None = None, allow_internal_urls: bool = True
) -> ServiceApp[Deps]:
    """The service as ``run`` builds it, on a database (no broker: the harness needs none);
    local sandboxes are allowed as connections' addresses unless ``allow_internal_urls``."""
    return create_app(
        Settings(
            kafka_bootstrap_servers="unused:9092",
            database_url=SecretStr(database_url),
            encryption_key=SecretStr(encryption_key or Fernet.generate_key().decode()),
            allow_internal_urls=allow_internal_urls,
        )
    )


def steps_on(
    pool: asyncpg.Pool,
    box: SecretBox,
    *,
    page_size: int | None = None,
    poll_interval: dt.timedelta = dt.timedelta(0),
    overlap: dt.timedelta = dt.timedelta(seconds=120),
) -> Steps:
    """The scheduler's steps as a process of the service runs them on ``pool``: a client
    cache of its own (clients paging ``page_size`` at a time), polls due again after
    ``poll_interval``."""
    return Steps(
        Deps(
            uow=PgUnitOfWork(pool),
            box=box,
            sources=SourceCache(box, pool, ClientOptions(page_size=page_size)),
            schedule=Schedule(poll_interval=poll_interval, overlap=overlap),
        )
    )


def seller_profile(
    name: str = "Nordflow Test AB",
    *,
    country: str = "SE",
    organisation_number: str | None = "556036-0793",
    bankgiro: str | None = None,
) -> TenantProfile:
    """A tenant's profile whose seller has a name, an organisation number (and a bankgiro)."""
    base = tenant_profile(country, name=name)
    seller = base.seller.model_copy(update={"company_id": organisation_number})
    accounts: tuple[BankAccount, ...] = ()
    if bankgiro:
        accounts = (BankAccount(scheme=AccountScheme.BANKGIRO, account_id=bankgiro),)
    return base.model_copy(update={"seller": seller, "bank_accounts": accounts})


async def given_profile(
    uow: UnitOfWork, tenant_id: str, profile: TenantProfile | None = None
) -> TenantProfile:
    """The tenant has a profile (stored as erp-poller keeps it; no event is written)."""
    profile = profile or seller_profile()
    async with uow.transaction() as repos:
        await repos.profiles.save(tenant_id, profile, now())
    return profile


# ------------------------------------------------------------------------------------ fakes


@dataclass
class FakeProfileRepository:
    """Profiles and legacy sellers in dicts by tenant."""

    profiles: dict[str, StoredProfile] = field(default_factory=dict)
    legacy: dict[str, LegacySeller] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    async def get(self, tenant_id: str) -> TenantProfile | None:
        """The tenant's profile, or None."""
        stored = self.profiles.get(tenant_id)
        return None if stored is None else stored.profile

    async def stored(self, tenant_id: str) -> StoredProfile | None:
        """The tenant's profile with its revision."""
        return self.profiles.get(tenant_id)

    async def save(
        self, tenant_id: str, profile: TenantProfile, updated_at: dt.datetime
    ) -> int | None:
        """The next revision, or None when the profile is the stored one."""
        stored = self.profiles.get(tenant_id)
        if stored is not None and stored.profile == profile:
            return None
        revision = 1 if stored is None else stored.revision + 1
        self.profiles[tenant_id] = StoredProfile(tenant_id, revision, updated_at, profile)
        return revision

    async def next_legacy_seller(self) -> LegacySeller | None:
        """A seller waiting to become a profile, without a problem."""
        waiting = sorted(t for t in self.legacy if t not in self.problems)
        return self.legacy[waiting[0]] if waiting else None

    async def legacy_problem(self, tenant_id: str, problem: str) -> None:
        """Why the seller cannot become a profile."""
        self.problems[tenant_id] = problem

    async def forget_legacy_seller(self, tenant_id: str) -> None:
        """Forget the tenant's legacy seller."""
        self.legacy.pop(tenant_id, None)
        self.problems.pop(tenant_id, None)


@dataclass
class _Polling:
    last_poll_at: dt.datetime | None = None
    last_error: str | None = None
    next_poll_at: dt.datetime = field(default_factory=now)
    poll_interval_seconds: int | None = None
    last_success_at: dt.datetime | None = None
    revision: int = 0
    removed: bool = False


@dataclass
class FakeConnectionRepository:
    """Connections in a dict by id (no locks: one use case at a time); a removed one stays,
    marked in its polling state."""

    profiles: FakeProfileRepository
    connections: dict[str, Connection] = field(default_factory=dict)
    polling: dict[str, _Polling] = field(default_factory=dict)

    async def add(self, config: ConnectionConfig) -> None:
        """Create or replace a connection's configuration (the cursor is kept)."""
        c = config
        old = self.connections.get(c.connection_id)
        if old is not None and (old.tenant_id, old.system) != (c.tenant_id, c.system):
            raise ConnectionTakenError(f"connection {c.connection_id!r} exists elsewhere")
        interval = c.poll_interval_seconds
        self.connections[c.connection_id] = Connection(
            connection_id=c.connection_id,
            tenant_id=c.tenant_id,
            system=c.system,
            base_url=c.base_url,
            token_sealed=c.token_sealed,
            mode=c.mode,
            cutoff_at=c.cutoff_at,
            cursor_at=None if old is None else old.cursor_at,
            updated_at=now(),
            poll_interval=dt.timedelta(seconds=interval) if interval else None,
            flow=c.flow,
        )
        polling = self.polling.setdefault(c.connection_id, _Polling())
        polling.next_poll_at = now()
        polling.poll_interval_seconds = interval
        polling.removed = False

    def live(self) -> list[Connection]:
        """The connections not removed."""
        return [c for c in self.connections.values() if not self.polling[c.connection_id].removed]

    def _state(self, connection: Connection) -> ConnectionState:
        polling = self.polling[connection.connection_id]
        return ConnectionState(
            connection_id=connection.connection_id,
            tenant_id=connection.tenant_id,
            system=connection.system,
            base_url=connection.base_url,
            mode=connection.mode,
            cutoff_at=connection.cutoff_at,
            cursor_at=connection.cursor_at,
            poll_interval_seconds=polling.poll_interval_seconds,
            last_poll_at=polling.last_poll_at,
            last_error=polling.last_error,
            next_poll_at=polling.next_poll_at,
            tenant_has_profile=connection.tenant_id in self.profiles.profiles,
            flow=connection.flow,
            last_success_at=polling.last_success_at,
        )

    async def states(self, tenant_id: str | None = None) -> list[ConnectionState]:
        """Connections with their polling state."""
        return [
            self._state(c)
            for c in sorted(self.live(), key=lambda c: c.connection_id)
            if tenant_id is None or c.tenant_id == tenant_id
        ]

    async def state(self, tenant_id: str, connection_id: str) -> ConnectionState | None:
        """One of the tenant's connections with its polling state."""
        connection = await self.get(connection_id, tenant_id)
        return None if connection is None else self._state(connection)

    async def get(self, connection_id: str, tenant_id: str | None = None) -> Connection | None:
        """A connection (only the tenant's, with ``tenant_id``)."""
        connection = self.connections.get(connection_id)
        if connection is None or tenant_id not in (None, connection.tenant_id):
            return None
        return None if self.polling[connection_id].removed else connection

    async def of_tenant(self, tenant_id: str) -> list[Connection]:
        """The tenant's connections."""
        return [c for c in self.live() if c.tenant_id == tenant_id]

    async def set_mode(self, tenant_id: str, connection_id: str, mode: ConnectionMode) -> bool:
        """Change a connection's mode; False if the tenant has no such connection."""
        connection = await self.get(connection_id, tenant_id)
        if connection is None:
            return False
        self.connections[connection_id] = dataclasses.replace(connection, mode=mode)
        self.polling[connection_id].next_poll_at = now()
        return True

    async def make_due(self, tenant_id: str, connection_id: str) -> bool:
        """Due for a poll now; False if the tenant has no such connection."""
        if await self.get(connection_id, tenant_id) is None:
            return False
        self.polling[connection_id].next_poll_at = now()
        return True

    async def remove(self, tenant_id: str, connection_id: str) -> bool:
        """Mark it removed; False if the tenant has no such connection."""
        if await self.get(connection_id, tenant_id) is None:
            return False
        self.polling[connection_id].removed = True
        return True

    async def next_revision(self, connection_id: str) -> ConnectionRevision:
        """One more revision of the published state."""
        connection, polling = self.connections[connection_id], self.polling[connection_id]
        polling.revision += 1
        return ConnectionRevision(
            connection_id=connection_id,
            tenant_id=connection.tenant_id,
            system=connection.system,
            mode=connection.mode,
            revision=polling.revision,
            last_poll_at=polling.last_poll_at,
            last_success_at=polling.last_success_at,
            last_error=polling.last_error,
            next_poll_at=polling.next_poll_at,
            removed=polling.removed,
        )

    async def unannounced(self) -> str | None:
        """A connection never published."""
        waiting = sorted(cid for cid, p in self.polling.items() if p.revision == 0)
        return waiting[0] if waiting else None

    async def claim_due(self) -> Connection | None:
        """The polling connection due first (test or automatic mode)."""
        due = [
            c
            for c in self.live()
            if c.polled
            and c.mode is not ConnectionMode.MANUAL
            and self.polling[c.connection_id].next_poll_at <= now()
        ]
        due.sort(key=lambda c: self.polling[c.connection_id].next_poll_at)
        return due[0] if due else None

    async def finish_poll(
        self,
        connection_id: str,
        *,
        cursor_at: dt.datetime | None,
        next_poll_at: dt.datetime,
        error: str | None,
    ) -> None:
        """Record the poll; the cursor advances only after a complete poll."""
        connection = self.connections[connection_id]
        if cursor_at is not None:
            self.connections[connection_id] = dataclasses.replace(connection, cursor_at=cursor_at)
        polling = self.polling[connection_id]
        polling.last_poll_at, polling.next_poll_at, polling.last_error = now(), next_poll_at, error
        if error is None:
            polling.last_success_at = polling.last_poll_at


@dataclass
class FakeDocumentRepository:
    """Versions and snapshot times in dicts by (connection, document)."""

    versions: dict[tuple[str, str], str] = field(default_factory=dict)
    snapshots: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)

    async def newest_snapshot(
        self, connection_id: str, document_id: str, tenant_id: str, source_time: dt.datetime
    ) -> bool:
        """False if a newer snapshot was taken."""
        key = (connection_id, document_id)
        if key in self.snapshots and self.snapshots[key] > source_time:
            return False
        self.snapshots[key] = source_time
        return True

    async def record_version(
        self, connection_id: str, document_id: str, tenant_id: str, invoice_id: str, version: str
    ) -> bool:
        """True if the version is new."""
        key = (connection_id, document_id)
        if self.versions.get(key) == version:
            return False
        self.versions[key] = version
        return True

    async def version_of(self, connection_id: str, document_id: str) -> str | None:
        """The version last emitted."""
        return self.versions.get((connection_id, document_id))


@dataclass
class FakeRequestRepository:
    """Sync and backfill requests in dicts by id."""

    connections: FakeConnectionRepository
    syncs: dict[int, SyncRequest] = field(default_factory=dict)
    backfills: dict[int, BackfillRequest] = field(default_factory=dict)
    not_before: dict[int, dt.datetime] = field(default_factory=dict)

    def _next_id(self) -> int:
        return len(self.syncs) + len(self.backfills) + 1

    async def request_sync(
        self, tenant_id: str, connection_id: str, limit: int | None, documents: Sequence[str]
    ) -> SyncRequest:
        """Queue a sync request."""
        request_id = self._next_id()
        self.syncs[request_id] = SyncRequest(
            request_id, connection_id, tenant_id, limit, tuple(documents), now()
        )
        return self.syncs[request_id]

    async def sync_request(self, tenant_id: str, request_id: int) -> SyncRequest | None:
        """A sync request of the tenant's."""
        found = self.syncs.get(request_id)
        return found if found is not None and found.tenant_id == tenant_id else None

    async def claim_sync(self) -> tuple[SyncRequest, Connection] | None:
        """The oldest pending sync request (of a connection not removed)."""
        live = {c.connection_id: c for c in self.connections.live()}
        for request in sorted(self.syncs.values(), key=lambda r: r.request_id):
            if request.finished_at is None and request.connection_id in live:
                return request, live[request.connection_id]
        return None

    async def cancel_pending(self, connection_id: str, error: str) -> int:
        """Finish the connection's unfinished requests with ``error``."""
        cancelled = 0
        for request in list(self.syncs.values()):
            if request.connection_id == connection_id and request.finished_at is None:
                await self.finish_sync(request.request_id, None, error)
                cancelled += 1
        for backfill in list(self.backfills.values()):
            if backfill.connection_id == connection_id and backfill.finished_at is None:
                await self.finish_backfill(backfill.request_id, error)
                cancelled += 1
        return cancelled

    async def finish_sync(self, request_id: int, emitted: int | None, error: str | None) -> None:
        """Record how a sync request ended."""
        self.syncs[request_id] = dataclasses.replace(
            self.syncs[request_id], finished_at=now(), emitted=emitted, error=error
        )

    async def request_backfill(
        self, tenant_id: str, connection_id: str, since: dt.datetime
    ) -> BackfillRequest:
        """Queue a backfill."""
        request_id = self._next_id()
        self.backfills[request_id] = BackfillRequest(
            request_id, connection_id, tenant_id, since, now()
        )
        self.not_before[request_id] = now()
        return self.backfills[request_id]

    async def backfill_request(self, tenant_id: str, request_id: int) -> BackfillRequest | None:
        """A backfill request of the tenant's."""
        found = self.backfills.get(request_id)
        return found if found is not None and found.tenant_id == tenant_id else None

    async def backfill_requests(
        self, tenant_id: str | None, connection_id: str | None = None
    ) -> list[BackfillRequest]:
        """Backfill requests, newest first."""
        return [
            r
            for r in sorted(self.backfills.values(), key=lambda r: -r.request_id)
            if tenant_id in (None, r.tenant_id) and connection_id in (None, r.connection_id)
        ]

    async def claim_backfill(self) -> tuple[BackfillRequest, Connection] | None:
        """The oldest due, unfinished backfill."""
        live = {c.connection_id: c for c in self.connections.live()}
        due = [
            r
            for r in self.backfills.values()
            if r.finished_at is None
            and self.not_before[r.request_id] <= now()
            and r.connection_id in live
        ]
        due.sort(key=lambda r: (self.not_before[r.request_id], r.request_id))
        if not due:
            return None
        return due[0], live[due[0].connection_id]

    def _update(self, request_id: int, **changes: Any) -> None:
        self.backfills[request_id] = dataclasses.replace(self.backfills[request_id], **changes)

    async def start_backfill(self, request_id: int) -> None:
        """Count an attempt."""
        request = self.backfills[request_id]
        self._update(
            request_id,
            attempts=request.attempts + 1,
            listed=0,
            error=None,
            started_at=request.started_at or now(),
        )

    async def backfill_progress(self, request_id: int, listed: int) -> None:
        """How many were listed so far."""
        self._update(request_id, listed=listed)

    async def count_backfill_emission(self, request_id: int) -> None:
        """One more emitted."""
        self._update(request_id, emitted=self.backfills[request_id].emitted + 1)

    async def finish_backfill(self, request_id: int, error: str | None) -> None:
        """Done, or failed for good."""
        self._update(request_id, finished_at=now(), error=error)

    async def retry_backfill(self, request_id: int, error: str, delay: dt.timedelta) -> None:
        """Try again after ``delay``."""
        self._update(request_id, error=error)
        self.not_before[request_id] = now() + delay


@dataclass
class FakePushRepository:
    """Held-back documents, received batches and customer registers in dicts."""

    pending: dict[tuple[str, str], PendingDocument] = field(default_factory=dict)
    batches: dict[tuple[str, str], ReceivedBatch] = field(default_factory=dict)
    customers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    async def keep_pending(self, connection: Connection, document: Document, version: str) -> None:
        """Hold a document back (a new version goes to the end of the queue)."""
        key = (connection.connection_id, document.document_id)
        old = self.pending.get(key)
        if old is not None and old.version == version:
            return  # unchanged: it keeps its place
        self.pending.pop(key, None)
        self.pending[key] = PendingDocument(document, version)

    async def drop_pending(self, connection_id: str, document_id: str) -> None:
        """Forget a held-back document."""
        self.pending.pop((connection_id, document_id), None)

    async def claim_pending(
        self, connection_id: str, documents: Sequence[str], limit: int | None
    ) -> list[PendingDocument]:
        """The named held-back documents, or the oldest ``limit``."""
        held = [
            p
            for (cid, did), p in self.pending.items()
            if cid == connection_id and (not documents or did in documents)
        ]
        return held if limit is None else held[:limit]

    async def received_batch(self, connection_id: str, batch_id: str) -> ReceivedBatch | None:
        """A batch received before."""
        return self.batches.get((connection_id, batch_id))

    async def claim_batch(
        self, connection_id: str, batch_id: str, tenant_id: str, body_sha256: str
    ) -> bool:
        """Record a batch as received; False if it was."""
        if (connection_id, batch_id) in self.batches:
            return False
        self.batches[(connection_id, batch_id)] = ReceivedBatch(body_sha256, {})
        return True

    async def answer_batch(
        self, connection_id: str, batch_id: str, response: dict[str, Any]
    ) -> None:
        """Keep a batch's answer."""
        received = self.batches[(connection_id, batch_id)]
        self.batches[(connection_id, batch_id)] = ReceivedBatch(received.body_sha256, response)

    async def registered_customers(
        self, connection: Connection, numbers: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The register entries of these numbers."""
        found = ((n, self.customers.get((connection.connection_id, n))) for n in numbers)
        return {n: card for n, card in found if card is not None}

    async def upsert_customers(
        self, connection: Connection, customers: Sequence[tuple[str, dict[str, Any]]]
    ) -> dict[str, int]:
        """Insert or replace entries by number."""
        result = {"created": 0, "updated": 0, "unchanged": 0}
        for number, card in customers:
            key = (connection.connection_id, number)
            old = self.customers.get(key)
            result["created" if old is None else "unchanged" if old == card else "updated"] += 1
            self.customers[key] = card
        return result


@dataclass
class FakeOutbox:
    """The events written, in order, with their subjects."""

    written: list[tuple[Event, str | None]] = field(default_factory=list)

    async def add(self, event: Event, *, subject: str | None = None) -> None:
        """Keep the event."""
        self.written.append((event, subject))

    def of(self, event_type: type[Event]) -> list[Any]:
        """The events of one type, in order."""
        return [e for e, _ in self.written if isinstance(e, event_type)]


def fake_repositories() -> Repositories:
    """Empty fakes of every repository."""
    profiles = FakeProfileRepository()
    connections = FakeConnectionRepository(profiles)
    return Repositories(
        connections=connections,
        documents=FakeDocumentRepository(),
        requests=FakeRequestRepository(connections),
        pushes=FakePushRepository(),
        profiles=profiles,
        outbox=FakeOutbox(),
    )


@dataclass
class FakeUnitOfWork:
    """Every transaction on the same fakes (nothing is rolled back)."""

    repos: Repositories = field(default_factory=fake_repositories)
    transactions: int = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repositories]:
        """The fakes."""
        self.transactions += 1
        yield self.repos

    @property
    def outbox(self) -> FakeOutbox:
        """What was written to the outbox."""
        assert isinstance(self.repos.outbox, FakeOutbox)
        return self.repos.outbox


class FakeSource:
    """A source system holding documents: every one is listed as changed, each fetched as it
    is (``fetched`` counts the reads)."""

    def __init__(
        self, documents: Iterable[Document] = (), system: SourceSystem = SourceSystem.FORTNOX
    ) -> None:
        self.system = system
        self.documents = {d.document_id: d for d in documents}
        self.fetched = 0
        self.closed = False

    def changes_since(self, since: dt.datetime) -> Listing:
        """Every document."""

        async def changes() -> AsyncIterator[Change]:
            for document_id in list(self.documents):
                yield Change.of(document_id)

        return Listing(changes())

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        """The document as it is now."""
        self.fetched += 1
        return self.documents.get(change.document_id)

    async def aclose(self) -> None:
        """Nothing to close."""
        self.closed = True


@dataclass
class FakeSources:
    """One fake source for every connection."""

    source: FakeSource = field(default_factory=FakeSource)

    async def source_for(self, connection: Connection) -> FakeSource:
        """The fake source."""
        return self.source
