"""A connection's flow: stored with it, checked (``book_into`` names another connection of the
tenant that can be written), and stamped on every document it emits."""

from __future__ import annotations

import datetime as dt

import pytest
from erp_poller.domain.connections import InvalidInputError
from erp_poller.domain.documents import Document
from erp_poller.service.connections import save_connection
from erp_poller.service.polling import Schedule, poll_next
from erp_poller.testing import (
    FakeSource,
    FakeSources,
    FakeUnitOfWork,
    given_profile,
    seller_profile,
)
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched, Flow

PROFILE = seller_profile("Hotell AB", bankgiro="5050-1055")

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
SCHEDULE = Schedule(poll_interval=dt.timedelta(0), overlap=dt.timedelta(minutes=2))


class Clear:
    """Secrets that seal nothing (the fakes never open them)."""

    def seal(self, value: str) -> bytes:
        return value.encode()

    def open(self, sealed: bytes) -> object:
        raise AssertionError("not opened here")


async def add(
    uow: FakeUnitOfWork,
    connection_id: str,
    system: SourceSystem,
    *,
    tenant: str = "t-hotell",
    flow: Flow | None = None,
    credentials: dict[str, str] | None = None,
) -> None:
    async with uow.transaction() as repos:
        await save_connection(
            repos,
            Clear(),  # type: ignore[arg-type]
            tenant,
            connection_id=connection_id,
            system=system,
            base_url="https://api.example.com",
            credentials=credentials if credentials is not None else {},
            mode=ConnectionMode.AUTOMATIC,
            cutoff_at=None,
            poll_interval_seconds=None,
            allow_internal_urls=False,
            now=NOW,
            flow=flow,
        )


SIRVOY = {"api_token": "a", "webhook_secret": "b"}


def invoice(number: str) -> Document:
    return Document(number, number, DocumentKind.INVOICE, {"invoiceId": number}, {})


async def test_a_connection_without_a_flow_keeps_todays_behaviour() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "h-sirvoy", SourceSystem.SIRVOY, credentials=SIRVOY)
    [state] = await uow.repos.connections.states("t-hotell")
    assert state.flow == Flow(book_into=None, factor=True, distribute=True)


async def test_book_into_names_another_writable_connection_of_the_tenant() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "h-fortnox", SourceSystem.FORTNOX, credentials={"access_token": "x"})
    await add(uow, "other-fortnox", SourceSystem.FORTNOX, tenant="t-other",
              credentials={"access_token": "x"})  # fmt: skip
    await add(uow, "h-winner", SourceSystem.WINNER, credentials={"signing_secret": "s"})
    books = Flow(book_into="h-fortnox", factor=False, distribute=False)

    await add(uow, "h-sirvoy", SourceSystem.SIRVOY, flow=books, credentials=SIRVOY)
    state = await uow.repos.connections.state("t-hotell", "h-sirvoy")
    assert state is not None
    assert state.flow == books

    refused = {
        "h-sirvoy": "another connection",
        "nowhere": "has no connection 'nowhere'",
        "other-fortnox": "has no connection 'other-fortnox'",  # another tenant's
        "h-winner": "winner, which cannot be booked into",
    }
    for target, message in refused.items():
        with pytest.raises(InvalidInputError) as caught:
            await add(uow, "h-sirvoy", SourceSystem.SIRVOY, flow=Flow(book_into=target),
                      credentials=SIRVOY)  # fmt: skip
        assert caught.value.field == "flow.book_into"
        assert message in caught.value.message


async def test_a_tripletex_connection_takes_no_credentials_and_is_never_polled() -> None:
    uow = FakeUnitOfWork()
    await add(uow, "k-tripletex", SourceSystem.TRIPLETEX)
    await add(uow, "k-winner", SourceSystem.WINNER, flow=Flow(book_into="k-tripletex"),
              credentials={"signing_secret": "s"})  # fmt: skip
    connection = await uow.repos.connections.get("k-tripletex")
    assert connection is not None
    assert not connection.polled


async def test_every_document_carries_its_connections_flow() -> None:
    uow = FakeUnitOfWork()
    sources = FakeSources(FakeSource([invoice("1"), invoice("2")]))
    await add(uow, "h-fortnox", SourceSystem.FORTNOX, credentials={"access_token": "x"})
    flow = Flow(book_into="h-fortnox", factor=False, distribute=False)
    await add(uow, "h-sirvoy", SourceSystem.SIRVOY, flow=flow, credentials=SIRVOY)
    await given_profile(uow, "t-hotell", PROFILE)
    uow.repos.connections.connections.pop("h-fortnox")  # type: ignore[attr-defined]

    assert await poll_next(uow, sources, SCHEDULE)

    emitted = uow.outbox.of(ErpDocumentFetched)
    assert [e.flow for e in emitted] == [flow, flow]
