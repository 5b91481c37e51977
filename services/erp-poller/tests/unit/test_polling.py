"""The scheduler's use cases on fakes: every document carries the tenant's profile; a tenant
without one has nothing emitted and loses nothing; backfills retry, then give up."""

from __future__ import annotations

import datetime as dt
from typing import Any

from erp_poller.domain.connections import BACKFILL_ATTEMPTS, Connection, ConnectionConfig
from erp_poller.domain.documents import Document
from erp_poller.service.polling import Schedule, backfill_next, poll_next, sync_next
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
from nordflow_schemas.events import RELATED_TENANT, DocumentKind, ErpDocumentFetched

SCHEDULE = Schedule(poll_interval=dt.timedelta(0), overlap=dt.timedelta(minutes=2))
PROFILE = seller_profile("Säljare AB", bankgiro="5050-1055")


def invoice(number: str, **payload: Any) -> Document:
    return Document(
        number,
        number,
        DocumentKind.INVOICE,
        {"DocumentNumber": number, **payload},
        {"customer": {"CustomerNumber": "7"}},
    )


async def connected(
    uow: FakeUnitOfWork, tenant: str = "t-kund", mode: ConnectionMode = ConnectionMode.AUTOMATIC
) -> Connection:
    await uow.repos.connections.add(
        ConnectionConfig(
            connection_id=f"{tenant}-fx",
            tenant_id=tenant,
            system=SourceSystem.FORTNOX,
            base_url="https://api.fortnox.se/3",
            token_sealed=b"sealed",
            mode=mode,
            cutoff_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
    )
    connection = await uow.repos.connections.get(f"{tenant}-fx")
    assert connection is not None
    return connection


def state(uow: FakeUnitOfWork) -> FakeConnectionRepository:
    assert isinstance(uow.repos.connections, FakeConnectionRepository)
    return uow.repos.connections


async def test_every_document_carries_the_tenants_profile() -> None:
    uow, sources = FakeUnitOfWork(), FakeSources(FakeSource([invoice("1"), invoice("2")]))
    connection = await connected(uow)
    await given_profile(uow, connection.tenant_id, PROFILE)

    assert await poll_next(uow, sources, SCHEDULE)

    emitted = uow.outbox.of(ErpDocumentFetched)
    assert [e.source.document_id for e in emitted] == ["1", "2"]
    for event in emitted:
        assert event.related == {
            "customer": {"CustomerNumber": "7"},
            RELATED_TENANT: PROFILE.model_dump(mode="json"),
        }
    subjects = [s for e, s in uow.outbox.written if isinstance(e, ErpDocumentFetched)]
    assert subjects == ["1", "2"]


async def test_without_a_profile_a_poll_emits_nothing_and_loses_nothing() -> None:
    source = FakeSource([invoice("1")])
    uow, sources = FakeUnitOfWork(), FakeSources(source)
    connection = await connected(uow)

    assert await poll_next(uow, sources, SCHEDULE)
    [polled] = await uow.repos.connections.states()
    assert polled.last_error is not None
    assert "has no profile: set the tenant profile first" in polled.last_error
    assert polled.cursor_at is None  # the next poll starts where this one would have
    assert source.fetched == 0
    assert uow.outbox.of(ErpDocumentFetched) == []

    await given_profile(uow, connection.tenant_id, PROFILE)
    assert await poll_next(uow, sources, SCHEDULE)
    [polled] = await uow.repos.connections.states()
    assert polled.last_error is None
    assert polled.cursor_at is not None
    assert [e.source.document_id for e in uow.outbox.of(ErpDocumentFetched)] == ["1"]


async def test_without_a_profile_a_sync_request_says_so_and_a_backfill_waits() -> None:
    uow, sources = FakeUnitOfWork(), FakeSources(FakeSource([invoice("1")]))
    connection = await connected(uow, mode=ConnectionMode.MANUAL)
    requests = uow.repos.requests
    assert isinstance(requests, FakeRequestRepository)
    synced = await requests.request_sync(connection.tenant_id, connection.connection_id, 5, [])
    sync_id = synced.request_id
    since = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    backfill_id = (
        await requests.request_backfill(connection.tenant_id, connection.connection_id, since)
    ).request_id

    assert await sync_next(uow, sources)
    synced = requests.syncs[sync_id]
    assert synced.finished_at is not None
    assert synced.error is not None
    assert "set the tenant profile first" in synced.error

    assert await backfill_next(uow, sources)
    waiting = requests.backfills[backfill_id]
    assert (waiting.finished_at, waiting.attempts) == (None, 0)  # not an attempt
    assert waiting.error is not None
    assert "set the tenant profile first" in waiting.error
    assert not await backfill_next(uow, sources)  # it looks again a minute later

    await given_profile(uow, connection.tenant_id, PROFILE)
    requests.not_before[backfill_id] = dt.datetime.now(dt.UTC)
    assert await backfill_next(uow, sources)
    done = requests.backfills[backfill_id]
    assert (done.done, done.attempts, done.listed, done.emitted) == (True, 1, 1, 1)
    assert uow.outbox.of(ErpDocumentFetched)[0].related[RELATED_TENANT]["legal_name"] == (
        "Säljare AB"
    )


class Broken(FakeSource):
    async def fetch(self, change: Change, cache: FetchCache) -> Document | None:
        raise ConnectionError("lost the connection")


async def test_a_failing_backfill_is_retried_then_finished_with_its_error() -> None:
    uow, sources = FakeUnitOfWork(), FakeSources(Broken([invoice("1")]))
    connection = await connected(uow)
    await given_profile(uow, connection.tenant_id, PROFILE)
    requests = uow.repos.requests
    assert isinstance(requests, FakeRequestRepository)
    since = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    request_id = (
        await requests.request_backfill(connection.tenant_id, connection.connection_id, since)
    ).request_id
    for attempt in range(1, BACKFILL_ATTEMPTS + 1):
        requests.not_before[request_id] = dt.datetime.now(dt.UTC)
        assert await backfill_next(uow, sources)
        request = requests.backfills[request_id]
        assert request.attempts == attempt
        assert request.error == "ConnectionError: lost the connection"
        finished = attempt == BACKFILL_ATTEMPTS
        assert (request.finished_at is not None) is finished
        if not finished:  # waits 30 s per attempt made
            wait = requests.not_before[request_id] - dt.datetime.now(dt.UTC)
            assert (
                dt.timedelta(seconds=30 * attempt - 5) < wait <= dt.timedelta(seconds=30 * attempt)
            )
    assert not await backfill_next(uow, sources)
