"""Pure rules of closing: amounts and sign, accounts, the job payload, the closing's zone, and
which ERP payment counts as ours."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ledger_closer.domain import (
    AccountRole,
    PlannedEntry,
    adoptable,
    closing_amount,
    closing_key,
    closing_zone,
    matches,
    payment_key,
)
from ledger_closer.testing import source, write_connection
from nordflow_schemas.events import EntryKind
from nordflow_schemas.invoice import DocumentType
from nordflow_schemas.testing import tenant_profile

OURS = {
    "Number": 3,
    "Amount": 1250,
    "ModeOfPayment": "FACT",
    "ModeOfPaymentAccount": 1512,
    "PaymentDate": "2026-11-24",
}


def test_only_a_payment_with_every_detail_equal_is_adopted() -> None:
    args = (Decimal("1250.00"), "FACT", 1512, "2026-11-24")
    assert matches(OURS, *args)
    for field, other in [
        ("Amount", 1250.01),
        ("ModeOfPayment", "BG"),
        ("ModeOfPaymentAccount", 1930),
        ("PaymentDate", "2026-11-23"),
    ]:
        assert not matches({**OURS, field: other}, *args), field


def test_a_payment_already_recorded_as_another_entry_is_not_adopted() -> None:
    later = {**OURS, "Number": 4}
    found = {
        "amount": Decimal("1250.00"),
        "mode": "FACT",
        "account": 1512,
        "paid_on": dt.date(2026, 11, 24),
    }
    assert adoptable([OURS, later], known=set(), **found) == OURS
    assert adoptable([OURS, later], known={"3"}, **found) == later
    assert adoptable([OURS, later], known={"3", "4"}, **found) is None
    assert adoptable([], known=set(), **found) is None


def test_a_credit_note_is_closed_by_a_refund() -> None:
    assert closing_amount(Decimal("1250.00"), DocumentType.INVOICE) == Decimal("1250.00")
    assert str(closing_amount(Decimal("1250.00"), DocumentType.CREDIT_NOTE)) == "-1250.00"


def test_the_account_follows_the_role() -> None:
    connection = write_connection("acme")
    assert connection.account_for(AccountRole.FACTORING) == 1512
    assert connection.account_for(AccountRole.BANK) == 1930


def test_keys_are_one_per_invoice_and_one_per_payment() -> None:
    assert closing_key("inv_1") == "closing:inv_1"
    assert payment_key("inv_1", "p1") == "payment:inv_1:p1"
    assert payment_key("inv_1", "p1", "h-fortnox") == "payment:inv_1:p1@h-fortnox"


def test_the_job_payload_keeps_its_shape() -> None:
    """Jobs scheduled before a deploy run after it: the payload's keys and forms stay."""
    entry = PlannedEntry(
        invoice_id="inv_1",
        kind=EntryKind.CLOSING_ENTRY,
        source=source("c", "7"),
        amount=Decimal("-1250.00"),
        currency="SEK",
        paid_on=dt.date(2026, 11, 24),
        account_role=AccountRole.FACTORING,
    )
    payload = entry.payload()
    assert payload == {
        "invoice_id": "inv_1",
        "kind": "closing_entry",
        "source": source("c", "7").model_dump(mode="json"),
        "amount": "-1250.00",
        "currency": "SEK",
        "paid_on": "2026-11-24",
        "account_role": "factoring",
        "document_type": "invoice",
    }
    assert PlannedEntry.from_payload(payload) == entry
    # A payload of an earlier version (no document type, fee, advance or target) still reads.
    del payload["document_type"]
    assert PlannedEntry.from_payload(payload) == entry


def test_a_closing_is_dated_in_the_profiles_zone_else_in_swedens() -> None:
    assert closing_zone(tenant_profile("NO")).key == "Europe/Oslo"
    assert closing_zone(tenant_profile("NO", time_zone="America/New_York")).key == (
        "America/New_York"
    )
    assert closing_zone(None).key == "Europe/Stockholm"
