"""The writers adapter without a server: one cached writer per connection and system,
replaced when the connection changes, all closed at shutdown; refusals as the domain's
errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from ledger_closer.adapters.writers import (
    FortnoxWriter,
    TripletexWriter,
    VismaNetWriter,
    Writers,
)
from ledger_closer.domain import (
    DEFAULT_ACCOUNTS,
    AuthorizationRefusedError,
    EntryRefusedError,
    ErpEntry,
)
from ledger_closer.testing import write_connection
from nordflow_connectors.fortnox import FortnoxClient
from nordflow_connectors.oauth import OAuthError
from nordflow_connectors.resilience import PartnerError
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.events import EntryKind
from pydantic import SecretStr

SAVED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


async def test_one_writer_per_connection_until_it_is_saved_again() -> None:
    box = SecretBox(SecretStr(Fernet.generate_key().decode()))
    writers = Writers(box, pool=None)  # type: ignore[arg-type]  # no OAuth: no pool is used
    first = write_connection("acme", "c1", token_sealed=box.seal("tok-1"), updated_at=SAVED)
    other = write_connection("acme", "c2", token_sealed=box.seal("tok-2"), updated_at=SAVED)

    writer = await writers.writer_for(first)
    assert await writers.writer_for(first) is writer
    assert await writers.writer_for(other) is not writer

    changed = write_connection(
        "acme", "c1", token_sealed=box.seal("tok-3"), updated_at=SAVED + dt.timedelta(hours=1)
    )
    replaced = await writers.writer_for(changed)
    assert replaced is not writer
    assert writer.client._http.is_closed

    tripletex = write_connection(
        "acme",
        "c3",
        system="tripletex",
        token_sealed=box.seal('{"consumer_token": "c", "employee_token": "e"}'),
        updated_at=SAVED,
    )
    visma_net = write_connection(
        "acme",
        "c4",
        system="visma-net",
        token_sealed=box.seal('{"token": "t", "company_id": "1"}'),
        updated_at=SAVED,
    )
    assert isinstance(await writers.booker_for(tripletex), TripletexWriter)
    assert isinstance(await writers.writer_for(visma_net), VismaNetWriter)

    await writers.aclose()
    assert replaced.client._http.is_closed
    assert writers.writers == {}


def writer_answering(status: int, body: dict[str, Any]) -> FortnoxWriter:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json=body))
    return FortnoxWriter(
        FortnoxClient("http://fortnox.invalid", SecretStr("tok"), transport=transport)
    )


ENTRY = ErpEntry(
    key="closing:inv_1",
    kind=EntryKind.CLOSING_ENTRY,
    document_id="7",
    document_number="7",
    credit_note=False,
    amount=Decimal("10.00"),
    cash=Decimal("10.00"),
    fee=Decimal(0),
    advance=Decimal(0),
    currency="SEK",
    paid_on=dt.date(2026, 11, 24),
    account=1512,
    accounts=DEFAULT_ACCOUNTS["SE"],
    mode_of_payment="FACT",
    bookkeep=False,
)


async def create(writer: FortnoxWriter) -> str:
    return await writer.create_entry(ENTRY)


async def test_a_refusal_is_the_domains_and_a_server_error_stays_transient() -> None:
    refusing = writer_answering(400, {"ErrorInformation": {"message": "Faktura saknas"}})
    with pytest.raises(EntryRefusedError, match="ERP refused the entry: HTTP 400: Faktura saknas"):
        await create(refusing)
    failing = writer_answering(500, {"ErrorInformation": {"message": "Internt fel"}})
    with pytest.raises(PartnerError) as caught:
        await create(failing)  # a create is not retried on 5xx: the job looks up first
    assert not isinstance(caught.value, EntryRefusedError)
    await refusing.aclose()
    await failing.aclose()


class Refreshing:
    """A client whose token refresh fails with ``error``."""

    def __init__(self, error: str) -> None:
        self.error = error

    async def payments_for_invoice(self, document_number: str) -> list[dict[str, Any]]:
        raise OAuthError(400, self.error, "refresh token spent")


@pytest.mark.parametrize(
    ("error", "refused"), [("invalid_grant", True), ("temporarily_unavailable", False)]
)
async def test_a_refused_authorization_names_reauthorization(error: str, refused: bool) -> None:
    writer = FortnoxWriter(Refreshing(error))  # type: ignore[arg-type]
    if not refused:
        with pytest.raises(OAuthError):
            await writer.find_entry(ENTRY, set(), None)
        return
    with pytest.raises(AuthorizationRefusedError) as caught:
        await writer.find_entry(ENTRY, set(), None)
    assert "ERP authorization refused" in str(caught.value)
    assert "invalid_grant" in str(caught.value)
    assert "authorize ledger-closer again" in str(caught.value)
