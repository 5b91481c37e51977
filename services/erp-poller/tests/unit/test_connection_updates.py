"""connection.updated on the fakes: every change of a connection's state (added, replaced,
mode, removed, a poll's end) is published once, as its next revision, with the change; and
an operator's "sync now" polls the tenant's own connection now, or says why not."""

from __future__ import annotations

import datetime as dt

import pytest
from erp_poller.domain.connections import (
    ConnectionConfig,
    ConnectionInUseError,
    NotFoundError,
    SyncRefusedError,
)
from erp_poller.domain.documents import Document
from erp_poller.service.connections import (
    REMOVED,
    announce_unpublished,
    remove_connection,
    save_connection,
    set_mode,
    sync_now,
)
from erp_poller.service.polling import Schedule, poll_next
from erp_poller.service.ports import Change, FetchCache
from erp_poller.testing import (
    FakeConnectionRepository,
    FakeRequestRepository,
    FakeSource,
    FakeSources,
    FakeUnitOfWork,
    given_profile,
    seller_profile,
)
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import ConnectionUpdated, DocumentKind, Flow

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
HOUR = Schedule(poll_interval=dt.timedelta(hours=1), overlap=dt.timedelta(minutes=2))
TENANT = "t-kund"


class Clear:
    """Secrets that seal nothing (the fakes never open them)."""

    def seal(self, value: str) -> bytes:
        return value.encode()

    def open(self, sealed: bytes) -> object:
        raise AssertionError("not opened here")


async def add(
    uow: FakeUnitOfWork,
    connection_id: str = "k-fortnox",
    *,
    system: SourceSystem = SourceSystem.FORTNOX,
    mode: ConnectionMode = ConnectionMode.AUTOMATIC,
    tenant: str = TENANT,
    flow: Flow | None = None,
) -> None:
    credentials = {
        SourceSystem.FORTNOX: {"access_token": "x"},
        SourceSystem.WINNER: {"signing_secret": "s"},
        SourceSystem.TRIPLETEX: {},
    }[system]
    async with uow.transaction() as repos:
        await save_connection(
            repos,
            Clear(),  # type: ignore[arg-type]
            tenant,
            connection_id=connection_id,
            system=system,
            base_url="https://api.example.com",
            credentials=credentials,
            mode=mode,
            cutoff_at=None,
            poll_interval_seconds=None,
            allow_internal_urls=False,
            now=NOW,
            flow=flow,
        )


def published(uow: FakeUnitOfWork, connection_id: str = "k-fortnox") -> list[ConnectionUpdated]:
    return [e for e in uow.outbox.of(ConnectionUpdated) if e.connection_id == connection_id]


def invoice(number: str) -> Document:
    return Document(number, number, DocumentKind.INVOICE, {"DocumentNumber": number}, {})


class Refusing(FakeSource):
    """A source whose every read fails (the partner is down)."""

    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        raise ConnectionError("the partner did not answer")


async def test_each_change_is_published_once_as_the_next_revision() -> None:
    uow = FakeUnitOfWork()
    await given_profile(uow, TENANT, seller_profile())
    sources = FakeSources(FakeSource([invoice("1"), invoice("2"), invoice("3")]))

    await add(uow, mode=ConnectionMode.TEST)
    [added] = published(uow)
    assert (added.revision, added.mode, added.system) == (1, ConnectionMode.TEST, "fortnox")
    assert (added.last_poll_at, added.last_success_at, added.last_error) == (None, None, None)
    assert added.next_poll_at is not None  # due now: polled at once
    assert (added.removed, added.updated_at, added.record_key) == (False, NOW, "t-kund:k-fortnox")
    assert [s for e, s in uow.outbox.written if isinstance(e, ConnectionUpdated)] == ["k-fortnox"]

    async with uow.transaction() as repos:
        await set_mode(repos, TENANT, "k-fortnox", ConnectionMode.AUTOMATIC, NOW)
    assert [(e.revision, e.mode) for e in published(uow)][-1] == (2, ConnectionMode.AUTOMATIC)

    # One poll that emits three documents is one publication.
    assert await poll_next(uow, sources, HOUR)
    polled = published(uow)[-1]
    assert polled.revision == 3
    assert polled.last_poll_at is not None
    assert polled.last_success_at == polled.last_poll_at
    assert polled.last_error is None
    assert polled.next_poll_at is not None
    assert polled.next_poll_at > polled.last_poll_at + dt.timedelta(minutes=59)
    assert not await poll_next(uow, sources, HOUR)  # not due: nothing more is published
    assert len(published(uow)) == 3

    # Replacing it (a new flow) is published too.
    await add(uow, flow=Flow(factor=False))
    assert published(uow)[-1].revision == 4


async def test_a_failed_poll_publishes_its_short_reason_and_keeps_the_last_success() -> None:
    uow = FakeUnitOfWork()
    await given_profile(uow, TENANT, seller_profile())
    await add(uow)
    assert await poll_next(uow, FakeSources(FakeSource([invoice("1")])), HOUR)
    succeeded = published(uow)[-1]
    assert succeeded.last_success_at is not None

    await add(uow)  # due again now
    assert await poll_next(uow, FakeSources(Refusing([invoice("1")])), HOUR)
    failed = published(uow)[-1]
    [state] = await uow.repos.connections.states(TENANT)
    assert failed.last_error == state.last_error == "ConnectionError: the partner did not answer"
    assert failed.last_success_at == succeeded.last_success_at  # the last success stays
    assert failed.last_poll_at is not None
    assert succeeded.last_poll_at is not None
    assert failed.last_poll_at >= succeeded.last_poll_at
    assert failed.revision == succeeded.revision + 2


async def test_without_a_profile_the_poll_publishes_what_is_missing() -> None:
    uow = FakeUnitOfWork()
    await add(uow)
    assert await poll_next(uow, FakeSources(FakeSource([invoice("1")])), HOUR)
    failed = published(uow)[-1]
    assert failed.last_error is not None
    assert failed.last_error.startswith("ProfileMissingError: tenant 't-kund' has no profile")
    assert failed.last_success_at is None


async def test_a_removed_connection_is_published_gone_and_comes_back_with_a_higher_revision() -> (
    None
):
    uow = FakeUnitOfWork()
    await given_profile(uow, TENANT, seller_profile())
    await add(uow)
    requests = uow.repos.requests
    assert isinstance(requests, FakeRequestRepository)
    pending = await requests.request_sync(TENANT, "k-fortnox", 5, [])

    async with uow.transaction() as repos:
        await remove_connection(repos, TENANT, "k-fortnox", NOW)
    gone = published(uow)[-1]
    assert (gone.revision, gone.removed, gone.next_poll_at) == (2, True, None)
    assert await uow.repos.connections.states(TENANT) == []
    assert await uow.repos.connections.get("k-fortnox") is None
    assert not await poll_next(uow, FakeSources(FakeSource([invoice("1")])), HOUR)
    assert requests.syncs[pending.request_id].error == REMOVED
    async with uow.transaction() as repos:
        with pytest.raises(NotFoundError):
            await remove_connection(repos, TENANT, "k-fortnox", NOW)
        with pytest.raises(NotFoundError):
            await sync_now(repos, TENANT, "k-fortnox", NOW)
        with pytest.raises(NotFoundError):
            await set_mode(repos, TENANT, "k-fortnox", ConnectionMode.MANUAL, NOW)
    assert len(published(uow)) == 2

    # Added again: the control panel keeps the newest revision, so it must be higher.
    await add(uow)
    back = published(uow)[-1]
    assert (back.revision, back.removed) == (3, False)
    assert [s.connection_id for s in await uow.repos.connections.states(TENANT)] == ["k-fortnox"]


async def test_a_connection_booked_into_is_not_removed() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "k-tripletex", system=SourceSystem.TRIPLETEX, mode=ConnectionMode.MANUAL)
    await add(uow, "k-winner", system=SourceSystem.WINNER, flow=Flow(book_into="k-tripletex"))
    async with uow.transaction() as repos:
        with pytest.raises(ConnectionInUseError, match="booked into by k-winner"):
            await remove_connection(repos, TENANT, "k-tripletex", NOW)
        await remove_connection(repos, TENANT, "k-winner", NOW)
        await remove_connection(repos, TENANT, "k-tripletex", NOW)  # once nothing books in
    assert [e.removed for e in published(uow, "k-tripletex")] == [False, True]


async def test_sync_now_makes_the_tenants_polled_connection_due_at_once() -> None:
    uow = FakeUnitOfWork()
    await given_profile(uow, TENANT, seller_profile())
    sources = FakeSources(FakeSource([invoice("1")]))
    await add(uow)
    assert await poll_next(uow, sources, HOUR)
    assert not await poll_next(uow, sources, HOUR)  # due in an hour

    async with uow.transaction() as repos:
        state = await sync_now(repos, TENANT, "k-fortnox", NOW)
    assert state.next_poll_at <= dt.datetime.now(dt.UTC)
    assert published(uow)[-1].revision == 3  # due now
    assert await poll_next(uow, sources, HOUR)
    assert published(uow)[-1].revision == 4  # and how the poll ended


async def test_sync_now_refuses_another_tenants_connection_and_what_is_not_polled() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "theirs", tenant="t-other")
    await add(uow, "k-manual", mode=ConnectionMode.MANUAL)
    await add(uow, "k-winner", system=SourceSystem.WINNER)
    await add(uow, "k-tripletex", system=SourceSystem.TRIPLETEX)
    before = len(uow.outbox.written)
    connections = uow.repos.connections
    assert isinstance(connections, FakeConnectionRepository)
    due = {cid: p.next_poll_at for cid, p in connections.polling.items()}
    async with uow.transaction() as repos:
        with pytest.raises(NotFoundError):
            await sync_now(repos, TENANT, "theirs", NOW)
        with pytest.raises(NotFoundError):
            await sync_now(repos, TENANT, "nothing-of-that-id", NOW)
        refused = {}
        for cid in ("k-manual", "k-winner", "k-tripletex"):
            with pytest.raises(SyncRefusedError) as caught:
                await sync_now(repos, TENANT, cid, NOW)
            refused[cid] = str(caught.value)
    assert "manual mode" in refused["k-manual"]
    assert "/api/v1/connections/k-manual/sync" in refused["k-manual"]
    assert "pushed" in refused["k-winner"]
    assert "book into" in refused["k-tripletex"]
    assert len(uow.outbox.written) == before  # nothing changed, nothing published
    assert {cid: p.next_poll_at for cid, p in connections.polling.items()} == due


async def test_what_is_not_polled_has_no_next_poll() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "k-manual", mode=ConnectionMode.MANUAL)
    await add(uow, "k-winner", system=SourceSystem.WINNER)
    await add(uow, "k-test", mode=ConnectionMode.TEST)
    assert published(uow, "k-manual")[0].next_poll_at is None
    assert published(uow, "k-winner")[0].next_poll_at is None
    assert published(uow, "k-test")[0].next_poll_at is not None


async def test_connections_never_published_are_published_once_at_start_up() -> None:
    uow = FakeUnitOfWork()
    for cid, tenant in (("k-a", TENANT), ("k-b", "t-other")):
        # Stored as before connection.updated existed: never published.
        await uow.repos.connections.add(
            ConnectionConfig(
                connection_id=cid,
                tenant_id=tenant,
                system=SourceSystem.FORTNOX,
                base_url="https://api.example.com",
                token_sealed=b"sealed",
                mode=ConnectionMode.MANUAL,
                cutoff_at=NOW,
            )
        )

    assert await announce_unpublished(uow, lambda: NOW) == 2
    assert await announce_unpublished(uow, lambda: NOW) == 0
    assert [(e.tenant_id, e.revision) for e in uow.outbox.of(ConnectionUpdated)] == [
        (TENANT, 1),
        ("t-other", 1),
    ]
