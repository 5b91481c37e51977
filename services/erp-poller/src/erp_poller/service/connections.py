"""Use cases of connection management: add, replace or remove a connection, switch its mode,
queue users' sync and backfill requests (the scheduler runs them, see `polling`) and poll one
now (an operator's "sync now").

Every change of a connection's published state (its configuration, mode, removal, the end of
a poll) is announced on ``connection.updated`` as its next revision, in the transaction of the
change (`announce_connection`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import ConnectionUpdated, Flow

from ..domain.connections import (
    BackfillRequest,
    ConnectionConfig,
    ConnectionInUseError,
    ConnectionState,
    InvalidInputError,
    NotFoundError,
    SyncRefusedError,
    SyncRequest,
    check_book_into,
    internal_host,
    sync_now_problem,
)
from ..domain.credentials import CredentialsError, credentials_from_token, seal_form
from .documents import release_pending
from .ports import Repositories, Secrets, UnitOfWork

REMOVED = "the connection was removed"
"""The error of its sync and backfill requests still pending when a connection is removed."""


@dataclass(frozen=True)
class ModeChanged:
    """A connection after its mode changed, and how many held-back pushes that released."""

    state: ConnectionState
    released: int


async def save_connection(
    repos: Repositories,
    secrets: Secrets,
    tenant_id: str,
    *,
    connection_id: str,
    system: SourceSystem,
    base_url: str,
    credentials: dict[str, str] | None = None,
    token: str | None = None,
    mode: ConnectionMode,
    cutoff_at: dt.datetime | None,
    poll_interval_seconds: int | None,
    allow_internal_urls: bool,
    now: dt.datetime,
    flow: Flow | None = None,
) -> ConnectionState:
    """Create or replace one of the tenant's connections (its cursor is kept).

    The credentials come by key (``credentials``) or as one text (``token``: the plain
    token of Fortnox and push systems, else the credentials' JSON object); they are checked
    for the system (`CredentialsError` names the key) and sealed. ``allow_internal_urls``
    lets a connection point at loopback or private addresses (the local sandboxes,
    operators); a tenant's API call never may.

    ``flow`` says what happens to the connection's documents (default: factored and
    distributed, booked nowhere, as before flows); its ``book_into`` must name another
    connection of the tenant whose system ledger-closer can write (``InvalidInputError`` on
    ``flow.book_into``).
    """
    flow = flow or Flow()
    target = None
    if flow.book_into is not None:
        found = await repos.connections.get(flow.book_into, tenant_id)
        target = found.system if found is not None else None
    check_book_into(connection_id, flow, target)
    if not allow_internal_urls and internal_host(base_url):
        raise InvalidInputError(
            "base_url",
            "must be the source system's public address, not a loopback, private or "
            "cluster-internal one",
        )
    if (token is None) == (credentials is None):
        raise InvalidInputError("credentials", "give `credentials` or `token`, not both")
    if token is not None:
        try:
            credentials = credentials_from_token(system, token)
        except CredentialsError:
            raise InvalidInputError(
                "token", f"{system.value}: must hold the credentials as a JSON object"
            ) from None
    assert credentials is not None
    token_url = credentials.get("token_url")
    if not allow_internal_urls and isinstance(token_url, str) and internal_host(token_url):
        raise InvalidInputError(
            "credentials.token_url",
            "must be the token endpoint's public address, not a loopback, private or "
            "cluster-internal one",
        )
    sealed = secrets.seal(seal_form(system, credentials))
    await repos.connections.add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant_id,
            system=system,
            base_url=base_url.rstrip("/"),
            token_sealed=sealed,
            mode=mode,
            cutoff_at=cutoff_at or now,
            poll_interval_seconds=poll_interval_seconds,
            flow=flow,
        )
    )
    await announce_connection(repos, connection_id, now)
    return await connection_state(repos, tenant_id, connection_id)


async def announce_connection(
    repos: Repositories, connection_id: str, now: dt.datetime
) -> ConnectionUpdated:
    """Publish the connection's state as its next revision on ``connection.updated`` (once
    this transaction commits: the change and its announcement go together)."""
    state = await repos.connections.next_revision(connection_id)
    event = state.event(now)
    await repos.outbox.add(event, subject=connection_id)
    return event


async def announce_unpublished(uow: UnitOfWork, clock: Callable[[], dt.datetime]) -> int:
    """Publish every connection whose state was never published (those added before
    ``connection.updated`` existed), one transaction each; how many. Replicas starting
    together never publish one twice; one a poll holds is published when the poll ends."""
    announced = 0
    while True:
        async with uow.transaction() as repos:
            connection_id = await repos.connections.unannounced()
            if connection_id is None:
                return announced
            await announce_connection(repos, connection_id, clock())
        announced += 1


async def connection_states(repos: Repositories, tenant_id: str) -> list[ConnectionState]:
    """The tenant's connections with their polling state."""
    return await repos.connections.states(tenant_id)


async def connection_state(
    repos: Repositories, tenant_id: str, connection_id: str
) -> ConnectionState:
    """One of the tenant's connections; NotFoundError if it has none of that id."""
    state = await repos.connections.state(tenant_id, connection_id)
    if state is None:
        raise NotFoundError(f"no connection {connection_id!r}")
    return state


async def set_mode(
    repos: Repositories,
    tenant_id: str,
    connection_id: str,
    mode: ConnectionMode,
    now: dt.datetime,
) -> ModeChanged:
    """Switch the mode: test (nothing written downstream), manual (on request), automatic.

    Switching to automatic lets pushed documents held back in manual mode flow at once (once
    the tenant has a profile).
    """
    if not await repos.connections.set_mode(tenant_id, connection_id, mode):
        raise NotFoundError(f"no connection {connection_id!r}")
    await announce_connection(repos, connection_id, now)
    released = 0
    if mode is ConnectionMode.AUTOMATIC:
        connection = await repos.connections.get(connection_id, tenant_id)
        profile = await repos.profiles.get(tenant_id)
        if connection is not None and profile is not None:
            released = await release_pending(
                repos, connection, profile, limit=None, documents=(), now=now
            )
    return ModeChanged(await connection_state(repos, tenant_id, connection_id), released)


async def remove_connection(
    repos: Repositories, tenant_id: str, connection_id: str, now: dt.datetime
) -> None:
    """Remove one of the tenant's connections: it is no longer polled, synced, backfilled or
    pushed to, its pending sync and backfill requests end with an error, and
    ``connection.updated`` says ``removed``. Adding it again (same tenant and system) brings
    it back with its cursor and the versions it has seen (nothing is emitted twice).

    Refused (`ConnectionInUseError`) while another connection of the tenant books into it.
    """
    await connection_state(repos, tenant_id, connection_id)
    booking = sorted(
        c.connection_id
        for c in await repos.connections.of_tenant(tenant_id)
        if c.flow.book_into == connection_id
    )
    if booking:
        raise ConnectionInUseError(
            f"connection {connection_id!r} is booked into by {', '.join(booking)}: change "
            "their flow first"
        )
    if not await repos.connections.remove(tenant_id, connection_id):
        raise NotFoundError(f"no connection {connection_id!r}")
    await repos.requests.cancel_pending(connection_id, REMOVED)
    await announce_connection(repos, connection_id, now)


async def sync_now(
    repos: Repositories, tenant_id: str, connection_id: str, now: dt.datetime
) -> ConnectionState:
    """Poll one of the tenant's connections now (an operator's "sync now"): it becomes due at
    once, so the scheduler polls it next, from its cursor, as any poll; the poll's end is
    announced on ``connection.updated``.

    ``NotFoundError`` when the tenant has no such connection (another tenant's is none);
    ``SyncRefusedError`` when polling does not apply: manual mode flows only what a sync
    request names, push connections and booking targets are never polled;
    ``ConnectionBusyError`` while a poll, sync or backfill of it runs.
    """
    connection = await repos.connections.get(connection_id, tenant_id)
    if connection is None:
        raise NotFoundError(f"no connection {connection_id!r}")
    problem = sync_now_problem(connection)
    if problem is not None:
        raise SyncRefusedError(problem)
    if not await repos.connections.make_due(tenant_id, connection_id):
        raise NotFoundError(f"no connection {connection_id!r}")
    await announce_connection(repos, connection_id, now)
    return await connection_state(repos, tenant_id, connection_id)


async def request_sync(
    repos: Repositories,
    tenant_id: str,
    connection_id: str,
    limit: int | None,
    documents: Sequence[str],
) -> SyncRequest:
    """Queue a sync of the next ``limit`` documents or the named ones (any mode)."""
    if limit is None and not documents:
        raise InvalidInputError("limit", "give `limit` or `documents`")
    await connection_state(repos, tenant_id, connection_id)
    return await repos.requests.request_sync(tenant_id, connection_id, limit, documents)


async def request_backfill(
    repos: Repositories, tenant_id: str, connection_id: str, since: dt.datetime
) -> BackfillRequest:
    """Queue a re-read of everything modified since ``since``."""
    await connection_state(repos, tenant_id, connection_id)
    return await repos.requests.request_backfill(tenant_id, connection_id, since)


R = TypeVar("R", SyncRequest, BackfillRequest)


def _of_connection(request: R | None, connection_id: str, what: str) -> R:
    if request is None or request.connection_id != connection_id:
        raise NotFoundError(f"no {what}")
    return request


async def sync_request(
    repos: Repositories, tenant_id: str, connection_id: str, request_id: int
) -> SyncRequest:
    """A sync request of the tenant's connection, and its outcome once done."""
    found = await repos.requests.sync_request(tenant_id, request_id)
    return _of_connection(found, connection_id, f"sync request {request_id}")


async def backfill_request(
    repos: Repositories, tenant_id: str, connection_id: str, request_id: int
) -> BackfillRequest:
    """A backfill request of the tenant's connection, with its progress."""
    found = await repos.requests.backfill_request(tenant_id, request_id)
    return _of_connection(found, connection_id, f"backfill request {request_id}")
