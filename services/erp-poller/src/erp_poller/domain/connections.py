"""Connections: what a tenant connects, what the poller reads, where a poll window starts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from nordflow_connectors.egress import url_problem
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import ConnectionUpdated, Flow

POLLED_SYSTEMS = frozenset(
    {
        SourceSystem.FORTNOX,
        SourceSystem.VISMA_EACCOUNTING,
        SourceSystem.VISMA_NET,
        SourceSystem.SIRVOY,
    }
)
"""Systems erp-poller reads by API; the others (Winner, on-premise agents) push to it."""

WRITABLE_SYSTEMS = frozenset(
    {
        SourceSystem.FORTNOX,
        SourceSystem.VISMA_EACCOUNTING,
        SourceSystem.VISMA_NET,
        SourceSystem.TRIPLETEX,
    }
)
"""Accounting systems ledger-closer writes into: what a flow's ``book_into`` may name."""

TARGET_ONLY_SYSTEMS = frozenset({SourceSystem.TRIPLETEX})
"""Systems a connection names only to book into: nothing is read from them (yet)."""

BACKFILL_ATTEMPTS = 3
"""A failing backfill is tried this many times, then finished with its error."""


class ConnectionBusyError(Exception):
    """The connection is being polled, synced or backfilled (its row is locked) right now."""


class ConnectionTakenError(PermissionError):
    """The connection id belongs to another tenant or another source system."""


class InvalidInputError(ValueError):
    """A value a user gave breaks a rule; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFoundError(LookupError):
    """No such connection (of the tenant, or of the system a push names), or request."""


class ConnectionInUseError(Exception):
    """The connection cannot be removed: another connection of the tenant books into it."""


class SyncRefusedError(Exception):
    """Sync now does not apply to the connection (its mode or system); the message says why."""


@dataclass(frozen=True)
class ConnectionConfig:
    """What a connection is configured with; adding one again replaces it (not its cursor)."""

    connection_id: str
    tenant_id: str
    system: SourceSystem
    base_url: str
    token_sealed: bytes
    mode: ConnectionMode
    cutoff_at: dt.datetime
    poll_interval_seconds: int | None = None
    flow: Flow = field(default_factory=Flow)


@dataclass(frozen=True)
class Connection:
    """A tenant's connection to one source system (the token stays sealed here)."""

    connection_id: str
    tenant_id: str
    system: SourceSystem
    base_url: str
    token_sealed: bytes
    mode: ConnectionMode
    cutoff_at: dt.datetime
    cursor_at: dt.datetime | None
    updated_at: dt.datetime | None = None  # changes whenever the configuration is replaced
    poll_interval: dt.timedelta | None = None  # its own schedule; None: the service's default
    flow: Flow = field(default_factory=Flow)  # what happens to its documents (every event)

    @property
    def polled(self) -> bool:
        """Whether the poller reads this connection (push systems deliver on their own)."""
        return self.system in POLLED_SYSTEMS


@dataclass(frozen=True)
class ConnectionState:
    """A connection and its polling state as operators and tenants see it (never the token)."""

    connection_id: str
    tenant_id: str
    system: SourceSystem
    base_url: str
    mode: ConnectionMode
    cutoff_at: dt.datetime
    cursor_at: dt.datetime | None
    poll_interval_seconds: int | None
    last_poll_at: dt.datetime | None
    last_error: str | None
    next_poll_at: dt.datetime
    tenant_has_profile: bool
    flow: Flow = field(default_factory=Flow)
    last_success_at: dt.datetime | None = None


@dataclass(frozen=True)
class ConnectionRevision:
    """A connection's state as ``connection.updated`` publishes it, at one revision (never
    its credentials, base URL or cursor)."""

    connection_id: str
    tenant_id: str
    system: SourceSystem
    mode: ConnectionMode
    revision: int
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None
    next_poll_at: dt.datetime
    removed: bool = False

    @property
    def polled(self) -> bool:
        """Whether the scheduler polls it: a polled system in test or automatic mode."""
        return (
            not self.removed
            and self.mode is not ConnectionMode.MANUAL
            and self.system in POLLED_SYSTEMS
        )

    def event(self, updated_at: dt.datetime) -> ConnectionUpdated:
        """The ``connection.updated`` of this revision; a connection that is not polled
        (manual, pushed, a booking target, removed) has no next poll."""
        return ConnectionUpdated(
            tenant_id=self.tenant_id,
            connection_id=self.connection_id,
            system=self.system,
            mode=self.mode,
            revision=self.revision,
            last_poll_at=self.last_poll_at,
            last_success_at=self.last_success_at,
            last_error=self.last_error,
            next_poll_at=self.next_poll_at if self.polled else None,
            removed=self.removed,
            updated_at=updated_at,
        )


@dataclass(frozen=True)
class SyncRequest:
    """A user's request to fetch the next ``limit`` documents, or the named ones, now."""

    request_id: int
    connection_id: str
    tenant_id: str
    limit: int | None
    documents: tuple[str, ...]
    requested_at: dt.datetime
    finished_at: dt.datetime | None = None
    emitted: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class BackfillRequest:
    """A user's request to re-read everything modified since ``since``, and its progress."""

    request_id: int
    connection_id: str
    tenant_id: str
    since: dt.datetime
    requested_at: dt.datetime
    started_at: dt.datetime | None = None
    attempts: int = 0
    listed: int = 0  # by the running (or last) attempt
    emitted: int = 0  # over all attempts
    finished_at: dt.datetime | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """Finished without error."""
        return self.finished_at is not None and self.error is None


def check_book_into(connection_id: str, flow: Flow, target: SourceSystem | None) -> None:
    """A flow's ``book_into`` must name another connection of the same tenant (``target``: the
    system of the tenant's connection of that id, None when it has none) of a system
    ledger-closer can write; raises ``InvalidInputError`` on field ``flow.book_into``."""
    if flow.book_into is None:
        return
    if flow.book_into == connection_id:
        raise InvalidInputError("flow.book_into", "must name another connection, not this one")
    if target is None:
        raise InvalidInputError(
            "flow.book_into", f"the tenant has no connection {flow.book_into!r}"
        )
    system = target
    if system not in WRITABLE_SYSTEMS:
        writable = ", ".join(sorted(s.value for s in WRITABLE_SYSTEMS))
        raise InvalidInputError(
            "flow.book_into",
            f"connection {flow.book_into!r} is {system.value}, which cannot be booked into "
            f"(only {writable})",
        )


def sync_now_problem(connection: Connection) -> str | None:
    """Why "sync now" (poll the connection at once) does not apply to it, or None.

    Manual mode flows only what a sync request names (a number of documents or their ids),
    which "sync now" does not say; push connections (Winner, on-premise) and booking targets
    (Tripletex) are never polled.
    """
    cid, system = connection.connection_id, connection.system.value
    if connection.system in TARGET_ONLY_SYSTEMS:
        return f"connection {cid!r} is {system}: a connection to book into, never read"
    if connection.mode is ConnectionMode.MANUAL:
        return (
            f"connection {cid!r} is in manual mode: only what a sync request names flows "
            f"(a limit or document ids: POST /api/v1/connections/{cid}/sync, or "
            "`erp-poller connections sync`)"
        )
    if not connection.polled:
        return f"connection {cid!r} is {system}: its documents are pushed, nothing is polled"
    return None


def backfill_retry_delay(attempts: int) -> dt.timedelta | None:
    """How long a failed backfill waits before its next attempt; None: it is finished."""
    if attempts >= BACKFILL_ATTEMPTS:
        return None
    return dt.timedelta(seconds=30 * attempts)


def window_start(connection: Connection, overlap: dt.timedelta) -> dt.datetime:
    """Where the next poll starts: the last poll's start minus the overlap, never before cut-off.

    Timestamps in ERPs are often minute-grained and written late; re-reading an overlap and
    deduplicating by version is what guarantees nothing written near the watermark is missed.
    """
    if connection.cursor_at is None:
        return connection.cutoff_at
    return max(connection.cutoff_at, connection.cursor_at - overlap)


def internal_host(url: str) -> bool:
    """Whether a URL names this machine or a private network by literal address or name: a
    tenant must not make the poller call into the cluster (its errors come back to them).

    The form only, for a 422 on the field; every connection is checked again on the address
    it resolves to (``nordflow_connectors.egress``)."""
    return url_problem(url) is not None
