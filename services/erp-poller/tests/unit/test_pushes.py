"""Pushed documents on fakes: held back while the tenant has no profile, released when it
gets one (test and automatic mode); manual mode keeps them until a sync request."""

from __future__ import annotations

import datetime as dt

from erp_poller.domain.connections import Connection, ConnectionConfig
from erp_poller.domain.documents import Document
from erp_poller.service.connections import set_mode
from erp_poller.service.documents import WAITING_FOR_PROFILE, ingest_documents
from erp_poller.service.profiles import set_profile
from erp_poller.testing import FakePushRepository, FakeUnitOfWork, seller_profile
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import RELATED_TENANT, DocumentKind, ErpDocumentFetched

NOW = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
PROFILE = seller_profile("Kök AB")


def order(number: str) -> Document:
    return Document(number, number, DocumentKind.ORDER, {"order_id": number}, {})


async def push_connection(
    uow: FakeUnitOfWork, connection_id: str, mode: ConnectionMode
) -> Connection:
    await uow.repos.connections.add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id="t-kok",
            system=SourceSystem.WINNER,
            base_url="https://push.invalid",
            token_sealed=b"sealed",
            mode=mode,
            cutoff_at=NOW,
        )
    )
    connection = await uow.repos.connections.get(connection_id)
    assert connection is not None
    return connection


def pending(uow: FakeUnitOfWork) -> set[tuple[str, str]]:
    assert isinstance(uow.repos.pushes, FakePushRepository)
    return set(uow.repos.pushes.pending)


async def test_pushes_wait_for_the_profile_and_flow_once_it_is_set() -> None:
    uow = FakeUnitOfWork()
    automatic = await push_connection(uow, "auto", ConnectionMode.AUTOMATIC)
    manual = await push_connection(uow, "manual", ConnectionMode.MANUAL)

    held = await ingest_documents(uow.repos, automatic, None, [order("Q1-1"), order("Q1-2")], NOW)
    kept = await ingest_documents(uow.repos, manual, None, [order("Q2-1")], NOW)

    assert [(o.outcome, o.reason) for o in held] == [("pending", WAITING_FOR_PROFILE)] * 2
    assert [o.outcome for o in kept] == ["pending"]
    assert uow.outbox.written == []

    await set_profile(uow.repos, "t-kok", PROFILE, NOW)
    released = uow.outbox.of(ErpDocumentFetched)
    assert [e.source.document_id for e in released] == ["Q1-1", "Q1-2"]
    assert all(e.related[RELATED_TENANT] == PROFILE.model_dump(mode="json") for e in released)
    assert pending(uow) == {("manual", "Q2-1")}  # manual mode: until a sync request


async def test_switching_to_automatic_without_a_profile_releases_nothing_yet() -> None:
    uow = FakeUnitOfWork()
    manual = await push_connection(uow, "manual", ConnectionMode.MANUAL)
    await ingest_documents(uow.repos, manual, None, [order("Q2-1")], NOW)

    changed = await set_mode(uow.repos, "t-kok", "manual", ConnectionMode.AUTOMATIC, NOW)
    assert changed.released == 0
    assert not changed.state.tenant_has_profile
    assert pending(uow) == {("manual", "Q2-1")}

    await set_profile(uow.repos, "t-kok", PROFILE, NOW)
    assert [e.source.document_id for e in uow.outbox.of(ErpDocumentFetched)] == ["Q2-1"]
    assert pending(uow) == set()


async def test_with_a_profile_pushes_flow_at_once_and_once() -> None:
    uow = FakeUnitOfWork()
    automatic = await push_connection(uow, "auto", ConnectionMode.AUTOMATIC)
    await set_profile(uow.repos, "t-kok", PROFILE, NOW)
    first = await ingest_documents(uow.repos, automatic, PROFILE, [order("Q1-1")], NOW)
    again = await ingest_documents(uow.repos, automatic, PROFILE, [order("Q1-1")], NOW)
    assert [o.outcome for o in first + again] == ["emitted", "unchanged"]
    assert len(uow.outbox.of(ErpDocumentFetched)) == 1
