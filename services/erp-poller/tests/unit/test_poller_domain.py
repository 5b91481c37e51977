"""Pure rules of erp-poller: the poll window, content versions, document kinds, the event."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from erp_poller.domain.connections import Connection, window_start
from erp_poller.domain.documents import Document, content_version, fetched_event, fortnox_kind
from erp_poller.testing import seller_profile
from nordflow_schemas.common import ConnectionMode, SourceSystem, canonical_invoice_id
from nordflow_schemas.events import RELATED_TENANT, DocumentKind

CUTOFF = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


def connection(
    *,
    cursor_at: dt.datetime | None = None,
    cutoff_at: dt.datetime = CUTOFF,
    mode: ConnectionMode = ConnectionMode.AUTOMATIC,
) -> Connection:
    return Connection(
        connection_id=f"c-{uuid.uuid4().hex[:8]}",
        tenant_id=f"t-{uuid.uuid4().hex[:8]}",
        system=SourceSystem.FORTNOX,
        base_url="http://fortnox.invalid",
        token_sealed=b"sealed",
        mode=mode,
        cutoff_at=cutoff_at,
        cursor_at=cursor_at,
    )


# -------------------------------------------------------------------------- window_start


def test_the_first_poll_starts_at_the_cutoff() -> None:
    assert window_start(connection(), dt.timedelta(minutes=2)) == CUTOFF


def test_later_polls_start_the_overlap_before_the_cursor() -> None:
    cursor = CUTOFF + dt.timedelta(hours=3)
    assert window_start(connection(cursor_at=cursor), dt.timedelta(seconds=120)) == (
        cursor - dt.timedelta(seconds=120)
    )


@pytest.mark.parametrize("after_cutoff", [dt.timedelta(0), dt.timedelta(seconds=30)])
def test_the_overlap_never_reaches_before_the_cutoff(after_cutoff: dt.timedelta) -> None:
    cursor = CUTOFF + after_cutoff
    assert window_start(connection(cursor_at=cursor), dt.timedelta(minutes=5)) == CUTOFF


def test_a_cursor_exactly_one_overlap_after_the_cutoff_starts_at_the_cutoff() -> None:
    overlap = dt.timedelta(minutes=2)
    assert window_start(connection(cursor_at=CUTOFF + overlap), overlap) == CUTOFF


def test_a_moved_cutoff_later_than_the_cursor_wins() -> None:
    """Re-adding a connection with a later cut-off keeps the cursor; the cut-off still holds."""
    late_cutoff = CUTOFF + dt.timedelta(days=1)
    polled = connection(cursor_at=CUTOFF + dt.timedelta(hours=1), cutoff_at=late_cutoff)
    assert window_start(polled, dt.timedelta(minutes=2)) == late_cutoff


def test_window_start_is_comparable_across_zones() -> None:
    stockholm = dt.timezone(dt.timedelta(hours=1))
    cursor = dt.datetime(2025, 3, 10, 16, 0, tzinfo=stockholm)  # 15:00 UTC
    assert window_start(connection(cursor_at=cursor), dt.timedelta(minutes=2)) == dt.datetime(
        2025, 3, 10, 14, 58, tzinfo=dt.UTC
    )


# ------------------------------------------------------------------------ content_version


def sample_document() -> dict[str, Any]:
    return {
        "DocumentNumber": "17",
        "Total": 1250.5,
        "Credit": "false",
        "InvoiceRows": [
            {"ArticleNumber": "A1", "Price": 100, "DeliveredQuantity": "2.00"},
            {"ArticleNumber": "A2", "Price": 50.5, "DeliveredQuantity": "1.00"},
        ],
        "EmailInformation": {"EmailAddressTo": "a@b.example", "EmailAddressCC": ""},
    }


def reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


def test_content_version_is_stable_across_key_order_at_every_depth() -> None:
    document = sample_document()
    shuffled = reversed_keys(document)
    assert list(shuffled) != list(document)
    assert list(shuffled["InvoiceRows"][0]) != list(document["InvoiceRows"][0])
    assert content_version(shuffled) == content_version(document)


def test_content_version_is_a_32_hex_digest() -> None:
    version = content_version(sample_document())
    assert len(version) == 32
    int(version, 16)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(Total=1250.51),
        lambda d: d.update(Credit="true"),
        lambda d: d["InvoiceRows"][1].update(Price=50.6),
        lambda d: d["InvoiceRows"].reverse(),
        lambda d: d["EmailInformation"].update(EmailAddressCC="c@d.example"),
        lambda d: d.update(Extra=None),
    ],
    ids=["total", "credit", "nested-row", "row-order", "nested-object", "new-key"],
)
def test_any_content_change_is_a_new_version(change: Any) -> None:
    document = sample_document()
    changed = sample_document()
    change(changed)
    assert content_version(changed) != content_version(document)


def test_content_version_accepts_non_json_values() -> None:
    document = {"Amount": Decimal("12.50"), "Date": dt.date(2025, 1, 2)}
    assert content_version(document) == content_version(dict(reversed(document.items())))


# ---------------------------------------------------------------------------- fortnox_kind


@pytest.mark.parametrize(
    ("invoice", "kind"),
    [
        ({"Credit": "true", "Total": -125}, DocumentKind.CREDIT_NOTE),
        ({"Credit": "True", "Total": 125}, DocumentKind.CREDIT_NOTE),
        ({"Credit": True}, DocumentKind.CREDIT_NOTE),
        ({"Credit": "false", "Total": -1}, DocumentKind.CREDIT_NOTE),
        ({"Total": "-0.01"}, DocumentKind.CREDIT_NOTE),
        ({"Credit": "false", "Total": 125}, DocumentKind.INVOICE),
        ({"Credit": "false", "Total": 0}, DocumentKind.INVOICE),
        ({"Credit": False, "Total": "99.50"}, DocumentKind.INVOICE),
        ({"Credit": "false", "Total": None}, DocumentKind.INVOICE),
        ({}, DocumentKind.INVOICE),
    ],
)
def test_fortnox_kind(invoice: dict[str, Any], kind: DocumentKind) -> None:
    assert fortnox_kind(invoice) is kind


# --------------------------------------------------------------------------- fetched_event


@pytest.mark.parametrize(
    ("mode", "test_mode"),
    [
        (ConnectionMode.TEST, True),
        (ConnectionMode.AUTOMATIC, False),
        (ConnectionMode.MANUAL, False),
    ],
)
def test_fetched_event_carries_the_connection_and_its_mode(
    mode: ConnectionMode, test_mode: bool
) -> None:
    source = connection(mode=mode)
    payload = sample_document()
    now = dt.datetime(2025, 3, 10, 12, 30, tzinfo=dt.UTC)
    profile = seller_profile("Säljare AB")
    document = Document(
        "17", "17", DocumentKind.INVOICE, payload, {"customer": {"CustomerNumber": "7"}}
    )
    event = fetched_event(
        source, profile, document, version=content_version(payload), fetched_at=now
    )
    assert event.test_mode is test_mode
    assert event.tenant_id == source.tenant_id
    assert event.invoice_id == canonical_invoice_id(
        source.tenant_id, SourceSystem.FORTNOX, source.connection_id, "17"
    )
    assert event.source.connection_id == source.connection_id
    assert event.source.document_number == "17"
    assert event.payload == payload
    assert event.related == {
        "customer": {"CustomerNumber": "7"},
        RELATED_TENANT: profile.model_dump(mode="json"),
    }
    assert event.fetched_at == now


def test_the_invoice_id_is_scoped_to_tenant_and_connection() -> None:
    source = connection()
    other_connection = dataclasses.replace(source, connection_id=source.connection_id + "-x")
    other_tenant = dataclasses.replace(source, tenant_id=source.tenant_id + "-x")

    def invoice_id(conn: Connection) -> str:
        document = Document("1", "1", DocumentKind.INVOICE, {}, {})
        return fetched_event(
            conn, seller_profile(), document, version="v", fetched_at=CUTOFF
        ).invoice_id

    ids = {invoice_id(source), invoice_id(other_connection), invoice_id(other_tenant)}
    assert len(ids) == 3
    assert invoice_id(source) == invoice_id(source)
