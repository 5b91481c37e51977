"""Pure rules of closing: what is scheduled, and which ERP payment counts as ours."""

import datetime as dt
import json
from decimal import Decimal

from ledger_closer.service import _matches, schedule_closing
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import AgreementKind, InvoiceTransferred
from nordflow_schemas.invoice import DocumentType


class FakeConn:
    """Records the job insert the scheduler makes."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def fetchval(self, sql: str, *args):
        self.calls.append(args)
        return True


def transferred(kind: DocumentType, *, test_mode: bool = False, hour: int = 23):
    return InvoiceTransferred(
        tenant_id="acme",
        invoice_id="inv_1",
        test_mode=test_mode,
        source=SourceRef(
            system=SourceSystem.FORTNOX, connection_id="c", document_id="7", document_number="7"
        ),
        document_type=kind,
        number="7",
        provider="nordea-finans",
        agreement_kind=AgreementKind.FACTORING,
        transfer_id="tr",
        amount=Decimal("1250.00"),
        currency="SEK",
        transferred_at=dt.datetime(2026, 11, 23, hour, 30, tzinfo=dt.UTC),
    )


async def test_invoice_closing_is_a_positive_payment_on_the_local_business_date():
    conn = FakeConn()
    assert await schedule_closing(conn, transferred(DocumentType.INVOICE), dt.timedelta(hours=24))
    kind, key, tenant, payload, due_at, *_ = conn.calls[0]
    body = json.loads(payload)
    assert (kind, key, tenant) == ("post-entry", "closing:inv_1", "acme")
    assert body["amount"] == "1250.00"
    # 23:30 UTC on 23 November is already 24 November in Stockholm.
    assert body["paid_on"] == "2026-11-24"
    assert due_at == dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)


async def test_credit_note_is_closed_by_a_refund():
    conn = FakeConn()
    await schedule_closing(conn, transferred(DocumentType.CREDIT_NOTE), dt.timedelta(0))
    assert json.loads(conn.calls[0][3])["amount"] == "-1250.00"


async def test_test_mode_schedules_nothing():
    conn = FakeConn()
    assert not await schedule_closing(
        conn, transferred(DocumentType.INVOICE, test_mode=True), dt.timedelta(0)
    )
    assert conn.calls == []


def test_only_a_payment_with_every_detail_equal_is_adopted():
    ours = {
        "Amount": 1250,
        "ModeOfPayment": "FACT",
        "ModeOfPaymentAccount": 1512,
        "PaymentDate": "2026-11-24",
    }
    args = (Decimal("1250.00"), "FACT", 1512, "2026-11-24")
    assert _matches(ours, *args)
    for field, other in [
        ("Amount", 1250.01),
        ("ModeOfPayment", "BG"),
        ("ModeOfPaymentAccount", 1930),
        ("PaymentDate", "2026-11-23"),
    ]:
        assert not _matches({**ours, field: other}, *args), field
