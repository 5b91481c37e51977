"""service.post_entry on fakes: one payment per entry, adoption after an unknown outcome, the
account and mode, and the entries that can never be written."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from ledger_closer.domain import (
    DEFAULT_ACCOUNTS,
    AccountRole,
    EntryRefusedError,
    PlannedEntry,
    UnpostableError,
    WriteConnection,
    WriteConnectionMissingError,
)
from ledger_closer.service import Repositories, post_entry
from ledger_closer.testing import (
    ErpUnavailableError,
    FakeConnectionRepository,
    FakeEntryRepository,
    FakeLedgerWriters,
    fake_repositories,
    source,
    write_connection,
)
from nordflow_schemas.events import EntryKind, LedgerEntryPosted

NOW = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)
TENANT = "acme"


def entry(
    *,
    invoice_id: str = "inv_1",
    amount: Decimal = Decimal("1250.00"),
    role: AccountRole = AccountRole.FACTORING,
    document_number: str | None = "7",
    connection_id: str = "conn-1",
) -> PlannedEntry:
    return PlannedEntry(
        invoice_id=invoice_id,
        kind=EntryKind.CLOSING_ENTRY
        if role is AccountRole.FACTORING
        else EntryKind.INVOICE_PAYMENT,
        source=source(connection_id, document_number),
        amount=amount,
        currency="SEK",
        paid_on=dt.date(2026, 11, 24),
        account_role=role,
    )


def setup(connection: WriteConnection | None = None) -> tuple[Repositories, FakeLedgerWriters]:
    repos = fake_repositories(connections=[connection or write_connection(TENANT)])
    return repos, FakeLedgerWriters()


def rows(repos: Repositories) -> dict[str, dict[str, object]]:
    assert isinstance(repos.entries, FakeEntryRepository)
    return repos.entries.rows


async def post(
    repos: Repositories,
    writers: FakeLedgerWriters,
    planned: PlannedEntry,
    key: str = "closing:inv_1",
) -> LedgerEntryPosted:
    return await post_entry(
        repos, writers, entry_key=key, tenant_id=TENANT, entry=planned, clock=lambda: NOW
    )


async def test_an_entry_is_created_once_and_announced() -> None:
    repos, writers = setup()

    posted = await post(repos, writers, entry())

    [payment] = writers.ledger().of("7")
    assert payment["Amount"] == 1250.0
    assert payment["PaymentDate"] == "2026-11-24"
    assert (payment["ModeOfPayment"], payment["ModeOfPaymentAccount"]) == ("FACT", 1512)
    assert posted.erp_reference == str(payment["Number"])
    assert posted.entry_kind is EntryKind.CLOSING_ENTRY
    assert (posted.tenant_id, posted.invoice_id, posted.account) == (TENANT, "inv_1", "1512")
    assert (posted.amount, posted.currency, posted.posted_at) == (Decimal("1250.00"), "SEK", NOW)
    assert posted.source == source("conn-1", "7")
    row = rows(repos)["closing:inv_1"]
    assert row["erp_reference"] == posted.erp_reference
    assert row["adopted"] is False
    assert row["attempts"] == 0
    assert row["posted_at"] == NOW
    assert isinstance(repos.connections, FakeConnectionRepository)
    assert repos.connections.locked == ["conn-1"]  # its writes, one at a time


async def test_a_reported_payment_goes_on_the_bank_account_with_the_connections_mode() -> None:
    accounts = dataclasses.replace(DEFAULT_ACCOUNTS["SE"], bank=1940)
    repos, writers = setup(write_connection(TENANT, mode_of_payment="BG", accounts=accounts))

    posted = await post(repos, writers, entry(role=AccountRole.BANK), key="payment:p1")

    [payment] = writers.ledger().of("7")
    assert (payment["ModeOfPayment"], payment["ModeOfPaymentAccount"]) == ("BG", 1940)
    assert posted.account == "1940"
    assert posted.entry_kind is EntryKind.INVOICE_PAYMENT


async def test_a_create_applied_but_answered_with_an_error_is_adopted_not_doubled() -> None:
    repos, writers = setup()
    writers.ledger().fail_after_apply = 1

    with pytest.raises(ErpUnavailableError):
        await post(repos, writers, entry())
    # The intent was recorded before the call and outlives the failed attempt, unreferenced.
    assert rows(repos)["closing:inv_1"]["erp_reference"] is None

    posted = await post(repos, writers, entry())

    [payment] = writers.ledger().of("7")
    assert writers.ledger().creates == 1
    assert posted.erp_reference == str(payment["Number"])
    row = rows(repos)["closing:inv_1"]
    assert row["adopted"] is True
    assert row["attempts"] == 1


async def test_a_payment_recorded_as_another_entry_is_not_adopted() -> None:
    """Two equal payments on one invoice the same day are two entries, two ERP payments."""
    repos, writers = setup()
    bank = entry(role=AccountRole.BANK, amount=Decimal("100.00"))
    first = await post(repos, writers, bank, key="payment:p1")
    second = await post(repos, writers, bank, key="payment:p2")
    assert first.erp_reference != second.erp_reference
    assert len(writers.ledger().of("7")) == 2
    assert writers.ledger().creates == 2


async def test_a_matching_payment_registered_by_hand_is_adopted() -> None:
    repos, writers = setup()
    by_hand = writers.ledger().add("7", Decimal("1250.00"), dt.date(2026, 11, 24))

    posted = await post(repos, writers, entry())

    assert posted.erp_reference == str(by_hand["Number"])
    assert writers.ledger().creates == 0
    assert rows(repos)["closing:inv_1"]["adopted"] is True


async def test_a_payment_with_another_detail_is_not_adopted() -> None:
    repos, writers = setup()
    writers.ledger().add("7", Decimal("1250.00"), dt.date(2026, 11, 23))
    await post(repos, writers, entry())
    assert writers.ledger().creates == 1
    assert len(writers.ledger().of("7")) == 2


async def test_a_refused_entry_is_not_recorded_as_written() -> None:
    repos, writers = setup()
    writers.ledger().refuse = "HTTP 400: Faktura saknas"

    with pytest.raises(EntryRefusedError, match="ERP refused the entry: HTTP 400: Faktura saknas"):
        await post(repos, writers, entry())

    assert isinstance(EntryRefusedError("x"), UnpostableError)  # the job fails, no retry
    assert rows(repos)["closing:inv_1"]["erp_reference"] is None
    assert writers.ledger().of("7") == []


async def test_without_a_document_number_nothing_is_attempted() -> None:
    repos, writers = setup()
    with pytest.raises(UnpostableError, match="no document number"):
        await post(repos, writers, entry(document_number=None))
    assert rows(repos) == {}
    assert writers.ledger().creates == 0


async def test_a_missing_write_connection_is_retried_later() -> None:
    repos, writers = setup()
    with pytest.raises(WriteConnectionMissingError) as missing:
        await post(repos, writers, entry(connection_id="conn-2"))
    assert isinstance(missing.value, LookupError)
    assert not isinstance(missing.value, UnpostableError)
    assert str(missing.value) == "no ERP write connection 'conn-2' for tenant acme"
    assert rows(repos) == {}


async def test_another_tenants_connection_is_not_used() -> None:
    repos = fake_repositories(connections=[write_connection("other")])
    with pytest.raises(WriteConnectionMissingError):
        await post(repos, FakeLedgerWriters(), entry())


async def test_an_erp_without_a_writer_fails_the_entry() -> None:
    repos, writers = setup(write_connection(TENANT, system="sap"))
    with pytest.raises(UnpostableError, match="no ledger writer for 'sap'"):
        await post(repos, writers, entry())
    assert rows(repos) == {}
