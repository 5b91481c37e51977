"""Push ingestion on the real PostgreSQL: signatures, Sirvoy webhooks from the sandbox, Winner
orders, JSON and SIE batches, idempotency, manual and test modes."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from erp_poller.adapters.repository import PgConnectionRepository, PgUnitOfWork
from erp_poller.deps import Deps
from erp_poller.domain.connections import Connection, ConnectionConfig
from erp_poller.domain.documents import Document, content_version
from erp_poller.service.documents import emit_fetched, ingest_documents, release_pending
from erp_poller.testing import given_profile, seller_profile
from nordflow_runtime.crypto import SecretBox
from nordflow_runtime.testing import ServiceHarness
from nordflow_sandboxes.sirvoy.testing import running_sirvoy_sandbox, running_webhook_receiver
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.envelope import decode
from nordflow_schemas.events import RELATED_TENANT, DocumentKind, ErpDocumentFetched
from nordflow_signing import signature_headers

pytestmark = pytest.mark.integration

SECRET = "push-secret-0123456789abcdef"
PROFILE = seller_profile("Köksbolaget AB", organisation_number="556036-0793")


class Relay:
    """Counts how often the service woke its outbox relay (after a commit that wrote events)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1

    def __bool__(self) -> bool:
        return self.calls > 0


@pytest.fixture
async def api(harness: ServiceHarness[Deps]) -> AsyncIterator[tuple[httpx.AsyncClient, Relay]]:
    """A client on the service's routers; the relay's wake-ups are counted."""
    relay = Relay()
    harness.deps.uow.committed = relay
    async with harness.http() as client:
        yield client, relay


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def add_connection(
    pool: asyncpg.Pool,
    box: SecretBox,
    system: SourceSystem,
    mode: ConnectionMode = ConnectionMode.AUTOMATIC,
    secret: str = SECRET,
    *,
    profile: bool = True,
) -> Connection:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    connection_id = f"{tenant}-{system.value}"
    await PgConnectionRepository(pool).add(
        ConnectionConfig(
            connection_id=connection_id,
            tenant_id=tenant,
            system=system,
            base_url="https://push.invalid",
            token_sealed=box.seal(secret),
            mode=mode,
            cutoff_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        )
    )
    if profile:
        await given_profile(PgUnitOfWork(pool), tenant, PROFILE)
    connection = await PgConnectionRepository(pool).get(connection_id)
    assert connection is not None
    return connection


async def events(pool: asyncpg.Pool, tenant: str) -> list[ErpDocumentFetched]:
    rows = await pool.fetch(
        "SELECT * FROM outbox WHERE tenant_id = $1 AND topic = 'erp.document.fetched' ORDER BY seq",
        tenant,
    )
    out = []
    for row in rows:
        headers = [(k, base64.b64decode(v)) for k, v in json.loads(row["headers"])]
        body = decode(bytes(row["value"]), headers).body
        assert isinstance(body, ErpDocumentFetched)
        out.append(body)
    return out


def signed(body: bytes, content_type: str, secret: str = SECRET, **extra: str) -> dict[str, str]:
    batch_id = extra.pop("X-Nordflow-Batch-Id", None)
    return {
        "Content-Type": content_type,
        **signature_headers(secret, body, batch_id=batch_id),
        **extra,
    }


def winner_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "quote_number": "Q1001",
        "order_date": "2025-03-10",
        "customer": {
            "customer_number": "K17",
            "name": "Anna Andersson",
            "email": "anna@example.se",
            "address": {"lines": ["Storgatan 1"], "postal_code": "11122", "city": "Stockholm"},
        },
        "project": {"number": "P-2025-17", "name": "Kök Andersson"},
        "line_mode": "product_groups",
        "lines": [
            {"product_group": "Skåp", "description": "Skåp och stommar", "amount": "40000.00"},
            {"product_group": "Bänkskivor", "description": "Bänkskiva ek", "amount": "8000.01"},
            {"product_group": "Skåp", "description": "Vitrinskåp", "amount": "10000.00"},
        ],
        "payment_calendar": [
            {"part": 1, "label": "Förskott", "percent": "20", "due_date": "2025-03-20"},
            {"part": 2, "label": "Vid leverans", "percent": "80"},
        ],
    }
    order.update(overrides)
    return order


def json_batch(batch_id: str | None = None, **invoice_overrides: Any) -> dict[str, Any]:
    invoice = {
        "issue_date": "2025-03-10",
        "due_date": "2025-04-09",
        "currency": "SEK",
        "buyer": {"name": "Kund AB", "company_id": "556677-8899", "address": {"city": "Malmö"}},
        "lines": [{"description": "Konsult", "quantity": "2", "unit_price": 500, "vat_rate": 25}],
        "totals": {"net": "1000.00", "vat": "250.00", "payable": "1250.00"},
        "payment": {"reference": "1234567897"},
        **invoice_overrides,
    }
    credit = {
        **invoice,
        "preceding_invoice": {"number": "1001", "document_id": "INV-1001"},
    }
    body: dict[str, Any] = {
        "documents": [
            {
                "document_id": "INV-1001",
                "document_number": "1001",
                "kind": "invoice",
                "invoice": invoice,
            },
            {"document_id": "CN-7", "kind": "credit_note", "invoice": credit},
        ]
    }
    if batch_id:
        body["batch_id"] = batch_id
    return body


SIE = """#FLAGGA 0
#PROGRAM "Visma Administration" 2024.1
#FORMAT PC8
#GEN 20250310
#SIETYP 4
#ORGNR 556036-0793
#FNAMN "Köksbolaget AB"
#KONTO 1510 "Kundfordringar"
#KONTO 1930 "Företagskonto"
#KONTO 2611 "Utgående moms på försäljning inom Sverige, 25 %"
#KONTO 3001 "Försäljning inom Sverige, 25 % moms"
#DIM 8 "Kund"
#OBJEKT 8 "K17" "Åsa Öberg"
#VER "F" "1001" 20250310 "Faktura 1001 Åsa Öberg"
{
#TRANS 1510 {8 "K17" 10 "1001"} 1250.00
#TRANS 3001 {} -1000.00 "" "Montering"
#TRANS 2611 {} -250.00
}
#VER "F" "1002" 20250311 "Kreditfaktura 1002"
{
#TRANS 1510 {8 "K17" 10 "1002"} -125.00
#TRANS 3001 {} 100.00
#TRANS 2611 {} 25.00
}
#VER "B" "55" 20250312 "Inbetalning 1001"
{
#TRANS 1930 {} 1250.00
#TRANS 1510 {8 "K17"} -1250.00
}
""".encode("cp437")


# ----------------------------------------------------------------------------- signing


async def test_pushes_without_a_valid_fresh_signature_are_refused(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.WINNER)
    url = f"/api/v1/ingest/winner/{connection.connection_id}"
    body = json.dumps(winner_order()).encode()

    missing = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    assert missing.status_code == 401
    assert "X-Nordflow-Timestamp" in missing.json()["detail"]

    wrong = await client.post(url, content=body, headers=signed(body, "application/json", "nope"))
    assert wrong.status_code == 401
    assert "does not match" in wrong.json()["detail"]
    assert SECRET not in wrong.text

    altered = signed(body, "application/json")
    tampered = await client.post(url, content=body.replace(b"Q1001", b"Q1002"), headers=altered)
    assert tampered.status_code == 401

    old = {
        "Content-Type": "application/json",
        **signature_headers(SECRET, body, now=time.time() - 301),
    }
    replayed = await client.post(url, content=body, headers=old)
    assert replayed.status_code == 401
    assert "stale or replayed" in replayed.json()["detail"]

    ahead = {
        "Content-Type": "application/json",
        **signature_headers(SECRET, body, now=time.time() + 600),
    }
    future = await client.post(url, content=body, headers=ahead)
    assert future.status_code == 401
    assert "future" in future.json()["detail"]

    assert await events(pool, connection.tenant_id) == []
    # An unknown connection answers exactly as a known one whose signature does not verify:
    # nobody learns which connection ids exist.
    unknown = await client.post(
        "/api/v1/ingest/winner/no-such-connection",
        content=body,
        headers=signed(body, "application/json"),
    )
    known_wrong = await client.post(
        url, content=body, headers=signed(body, "application/json", "not-the-secret")
    )
    assert (unknown.status_code, unknown.json()) == (401, known_wrong.json())
    assert known_wrong.status_code == 401
    for headers in ({"Content-Type": "application/json"}, {"X-Nordflow-Timestamp": "x"}):
        to_unknown = await client.post(
            "/api/v1/ingest/winner/no-such-connection", content=body, headers=headers
        )
        to_known = await client.post(url, content=body, headers=headers)
        assert (to_unknown.status_code, to_unknown.json()) == (
            to_known.status_code,
            to_known.json(),
        )


# ------------------------------------------------------------------------------ sirvoy


async def test_sirvoy_webhooks_from_the_sandbox_emit_each_version_once(api, pool, box):
    client, woken = api
    with running_sirvoy_sandbox() as sandbox, running_webhook_receiver() as receiver:
        account = sandbox.create_account(webhook_url=receiver.url)
        connection = await add_connection(
            pool,
            box,
            SourceSystem.SIRVOY,
            secret=json.dumps(
                {"api_token": account.token, "webhook_secret": account.webhook_secret}
            ),
        )
        with sandbox.admin() as admin:
            booking = admin.create_booking(account.token)
            invoice = admin.create_invoice(
                account.token,
                booking["bookingId"],
                rows=[{"description": "Dubbelrum", "quantity": 2, "unit_price": 1195.5}],
            )
            admin.register_payment(
                account.token, invoice_id=invoice["invoiceId"], amount=1000, method="card"
            )
            assert admin.flush(account.token)
        hooks = receiver.wait_for(3)
        async with httpx.AsyncClient(headers=account.headers) as http:
            read = await http.get(f"{sandbox.api_url}/invoices/{invoice['invoiceId']}")
        api_invoice = read.json()

    url = f"/api/v1/ingest/sirvoy/{connection.connection_id}"
    answers = []
    for hook in hooks:
        headers = {
            "content-type": "application/json",
            "x-sirvoy-signature": hook.headers["x-sirvoy-signature"],
        }
        response = await client.post(url, content=hook.body, headers=headers)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    assert answers[0]["documents"] == []  # the new booking has no invoice yet
    assert [d["outcome"] for d in answers[1]["documents"]] == ["emitted"]
    last = {d["document_id"]: d["outcome"] for d in answers[2]["documents"]}
    payment_id = (
        f"payment:{hooks[2].body and json.loads(hooks[2].body)['payments'][0]['paymentId']}"
    )
    assert last == {str(invoice["invoiceId"]): "emitted", payment_id: "emitted"}  # paid: new

    # The same callback delivered again emits nothing.
    again = await client.post(
        url,
        content=hooks[2].body,
        headers={"x-sirvoy-signature": hooks[2].headers["x-sirvoy-signature"]},
    )
    assert {d["outcome"] for d in again.json()["documents"]} == {"unchanged"}

    emitted = await events(pool, connection.tenant_id)
    assert len(emitted) == 3
    paid_invoice, payment = emitted[1], emitted[2]
    # Byte-for-byte what the read API answers, so a poll after the webhook emits nothing.
    assert paid_invoice.payload == api_invoice
    assert paid_invoice.version == content_version(api_invoice)
    assert paid_invoice.related[RELATED_TENANT] == PROFILE.model_dump(mode="json")
    assert paid_invoice.related["booking"]["bookingId"] == booking["bookingId"]
    assert payment.kind.value == "payment"
    assert payment.related["invoice"] == {
        "document_id": str(invoice["invoiceId"]),
        "document_number": str(invoice["invoiceNumber"]),
    }
    assert woken

    # An older snapshot arriving late (Sirvoy may deliver out of order) changes nothing.
    late = await client.post(
        url,
        content=hooks[1].body,
        headers={"x-sirvoy-signature": hooks[1].headers["x-sirvoy-signature"]},
    )
    assert [d["outcome"] for d in late.json()["documents"]] == ["outdated"]
    assert len(await events(pool, connection.tenant_id)) == 3

    forged = await client.post(
        url,
        content=hooks[2].body.replace(b"Dubbelrum", b"Sviten!!!"),
        headers={"x-sirvoy-signature": hooks[2].headers["x-sirvoy-signature"]},
    )
    assert forged.status_code == 401


# ------------------------------------------------------------------------------ winner


async def test_a_winner_quote_becomes_one_order_per_payment_part_once(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.WINNER)
    url = f"/api/v1/ingest/winner/{connection.connection_id}"
    body = json.dumps(winner_order()).encode()

    first = await client.post(url, content=body, headers=signed(body, "application/json"))
    assert first.status_code == 200, first.text
    assert first.json()["counts"] == {"emitted": 2}
    orders = await events(pool, connection.tenant_id)
    assert [o.source.document_id for o in orders] == ["Q1001-1", "Q1001-2"]
    assert {o.kind.value for o in orders} == {"order"}
    amounts = [[Decimal(line["amount"]) for line in o.payload["lines"]] for o in orders]
    # One line per product group, summed, each split 20/80 (the last part takes the öre).
    assert amounts == [
        [Decimal("10000.00"), Decimal("1600.00")],
        [Decimal("40000.00"), Decimal("6400.01")],
    ]
    assert [
        (line["article_number"], line["description"]) for line in orders[0].payload["lines"]
    ] == [("Skåp", "Skåp"), ("Bänkskivor", "Bänkskivor")]
    assert orders[0].payload["due_date"] == "2025-03-20"
    assert orders[1].payload["due_date"] == "2025-04-09"  # order date + 30 days
    assert orders[0].payload["project"] == {"number": "P-2025-17", "name": "Kök Andersson"}

    again = await client.post(url, content=body, headers=signed(body, "application/json"))
    assert again.json()["counts"] == {"unchanged": 2}
    assert len(await events(pool, connection.tenant_id)) == 2

    total = json.dumps(
        winner_order(line_mode="total", total_article_number="KOK", payment_calendar=[])
    ).encode()
    changed = await client.post(url, content=total, headers=signed(total, "application/json"))
    assert changed.json()["counts"] == {"emitted": 1}
    [one] = (await events(pool, connection.tenant_id))[2:]
    assert one.source.document_id == "Q1001-1"
    assert one.payload["lines"] == [
        {
            "line_id": "1",
            "article_number": "KOK",
            "product_group": None,
            "description": "Enligt offert Q1001",
            "quantity": "1",
            "unit_price": "58000.01",
            "amount": "58000.01",
            "vat_rate": "25",
        }
    ]


async def test_a_winner_credit_order_is_its_own_document(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.WINNER)
    url = f"/api/v1/ingest/winner/{connection.connection_id}"
    order = json.dumps(winner_order(payment_calendar=[])).encode()
    credit = json.dumps(winner_order(payment_calendar=[], credited_order_id="Q1001-1")).encode()
    for body in (order, credit):
        response = await client.post(url, content=body, headers=signed(body, "application/json"))
        assert response.json()["counts"] == {"emitted": 1}
    original, credited = await events(pool, connection.tenant_id)
    # Same quote number, yet the credit never replaces the order it credits.
    assert (original.source.document_id, credited.source.document_id) == ("Q1001-1", "Q1001-C1")
    assert credited.payload["credited_order_id"] == "Q1001-1"


async def test_a_bad_winner_push_is_422_naming_every_field(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.WINNER)
    order = winner_order()
    order["customer"].pop("name")
    order["lines"][0]["amount"] = "lots"
    order["payment_calendar"][1]["percent"] = "70"
    body = json.dumps(order).encode()
    response = await client.post(
        f"/api/v1/ingest/winner/{connection.connection_id}",
        content=body,
        headers=signed(body, "application/json"),
    )
    assert response.status_code == 422
    fields = {tuple(e["loc"][1:]) for e in response.json()["detail"]}
    assert ("customer", "name") in fields
    assert ("lines", 0, "amount") in fields
    assert ("payment_calendar",) in fields
    assert await events(pool, connection.tenant_id) == []


# ----------------------------------------------------------------------------- batches


async def test_a_json_batch_is_all_or_nothing_and_idempotent_by_batch_id(api, pool, box):
    client, woken = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    url = f"/api/v1/ingest/batches/{connection.connection_id}"

    bad = json_batch("b-1", lines=[{"description": "x", "quantity": "1", "vat_rate": 25}])
    bad["documents"][1]["kind"] = "receipt"
    raw = json.dumps(bad).encode()
    refused = await client.post(url, content=raw, headers=signed(raw, "application/json"))
    assert refused.status_code == 422
    outcome = {d["document_id"]: d for d in refused.json()["documents"]}
    assert {e["field"] for e in outcome["INV-1001"]["errors"]} == {
        "documents[0].invoice.lines[0].unit_price"
    }
    assert "documents[1].kind" in {e["field"] for e in outcome["CN-7"]["errors"]}
    assert await events(pool, connection.tenant_id) == []

    raw = json.dumps(json_batch("b-1")).encode()
    accepted = await client.post(url, content=raw, headers=signed(raw, "application/json"))
    assert accepted.status_code == 200, accepted.text
    result = accepted.json()
    assert result["accepted"] is True
    assert result["counts"] == {"emitted": 2}
    emitted = await events(pool, connection.tenant_id)
    assert [(e.source.document_id, e.kind.value) for e in emitted] == [
        ("INV-1001", "invoice"),
        ("CN-7", "credit_note"),
    ]
    assert emitted[0].payload == json_batch()["documents"][0]["invoice"]
    assert emitted[0].related["batch"] == {"batch_id": "b-1", "format": "json"}
    assert woken

    replay = await client.post(url, content=raw, headers=signed(raw, "application/json"))
    assert replay.status_code == 200
    assert replay.json() == {**result, "replayed": True}
    assert len(await events(pool, connection.tenant_id)) == 2

    other = json.dumps(json_batch("b-1", note="changed")).encode()
    conflict = await client.post(url, content=other, headers=signed(other, "application/json"))
    assert conflict.status_code == 409

    # The same documents in a new batch: nothing changed, nothing emitted.
    same = json.dumps(json_batch()).encode()
    next_batch = await client.post(
        url,
        content=same,
        headers=signed(same, "application/json", **{"X-Nordflow-Batch-Id": "b-2"}),
    )
    assert next_batch.json()["counts"] == {"unchanged": 2}


async def test_a_signed_batch_cannot_be_replayed_under_another_batch_id(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    url = f"/api/v1/ingest/batches/{connection.connection_id}"
    headers = signed(SIE, "text/plain", **{"X-Nordflow-Batch-Id": "sie-1"})
    assert (await client.post(url, content=SIE, headers=headers)).status_code == 200
    replay = {**headers, "X-Nordflow-Batch-Id": "sie-2"}
    refused = await client.post(url, content=SIE, headers=replay)
    assert refused.status_code == 401
    assert "signature does not match" in refused.json()["detail"]


async def test_a_sie_batch_emits_invoice_vouchers_and_skips_the_rest(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    url = f"/api/v1/ingest/batches/{connection.connection_id}"
    headers = signed(SIE, "text/plain; charset=IBM437", **{"X-Nordflow-Batch-Id": "sie-1"})
    response = await client.post(url, content=SIE, headers=headers)
    assert response.status_code == 200, response.text
    outcomes = {d["document_id"]: d for d in response.json()["documents"]}
    # Voucher numbers start again each fiscal year: the year's start is part of the id.
    assert outcomes["20250101-F-1001"]["outcome"] == "emitted"
    assert outcomes["20250101-F-1002"]["outcome"] == "emitted"
    assert outcomes["B-55"]["outcome"] == "skipped"
    assert "payment" in outcomes["B-55"]["reason"]

    invoice, credit = await events(pool, connection.tenant_id)
    assert (invoice.kind.value, credit.kind.value) == ("invoice", "credit_note")
    assert invoice.source.document_number == "1001"  # dimension 10, the invoice number
    assert invoice.payload["company"] == {
        "organisation_number": "556036-0793",
        "name": "Köksbolaget AB",
    }
    receivable = invoice.payload["transactions"][0]
    assert receivable["amount"] == "1250.00"
    assert receivable["objects"][0] == {"dimension": "8", "object": "K17", "name": "Åsa Öberg"}

    broken = SIE.replace(b"#TRANS 2611 {} -250.00", b"#TRANS 2611 {} -250,00")
    refused = await client.post(url, content=broken, headers=signed(broken, "text/plain"))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "line", 18]

    again = await client.post(
        url, content=SIE, headers=signed(SIE, "text/plain", **{"X-Nordflow-Batch-Id": "sie-1"})
    )
    assert again.json()["replayed"] is True
    assert len(await events(pool, connection.tenant_id)) == 2


# --------------------------------------------------------------------- customer register


def register_entry(number: str = "K17", **overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "customer_number": number,
        "name": "Åsa Öberg",
        "type": "private",
        "email": "asa@example.se",
        "address": {"lines": ["Storgatan 1"], "postal_code": "11122", "city": "Stockholm"},
    }
    entry.update(overrides)
    return entry


async def put_register(
    client: httpx.AsyncClient, connection: Connection, *customers: dict[str, Any]
) -> httpx.Response:
    raw = json.dumps({"customers": list(customers)}).encode()
    return await client.put(
        f"/api/v1/ingest/customers/{connection.connection_id}",
        content=raw,
        headers=signed(raw, "application/json"),
    )


async def test_the_customer_register_is_signed_validated_and_upserted_by_number(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    url = f"/api/v1/ingest/customers/{connection.connection_id}"
    raw = json.dumps({"customers": [register_entry()]}).encode()

    unsigned = await client.put(url, content=raw, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    wrong = await client.put(url, content=raw, headers=signed(raw, "application/json", "nope"))
    assert wrong.status_code == 401
    assert SECRET not in wrong.text
    winner = await add_connection(pool, box, SourceSystem.WINNER)
    other_system = await client.put(
        f"/api/v1/ingest/customers/{winner.connection_id}",
        content=raw,
        headers=signed(raw, "application/json"),
    )
    assert (other_system.status_code, other_system.json()) == (401, wrong.json())

    bad = await put_register(
        client,
        connection,
        register_entry(type="person", gln="7365567000004"),
        register_entry("K18", email="not-an-address", address={"country_code": "Sverige"}),
        {"name": "Utan Nummer AB", "type": "company", "address": {}, "phone": "08-1"},
        register_entry("K18"),
    )
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {
        ("body", "customers", 0, "type"),
        ("body", "customers", 0, "gln"),
        ("body", "customers", 1, "email"),
        ("body", "customers", 1, "address", "country_code"),
        ("body", "customers", 2, "customer_number"),
        ("body", "customers", 2, "phone"),
    }
    twice = await put_register(client, connection, register_entry(), register_entry())
    assert twice.status_code == 422
    assert twice.json()["detail"][0]["loc"] == ["body", "customers", 1, "customer_number"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM customers WHERE connection_id = $1", connection.connection_id
        )
        == 0
    )

    first = await put_register(
        client, connection, register_entry(), register_entry("K18", name="Kök AB", type="company")
    )
    assert first.status_code == 200, first.text
    assert first.json() == {
        "connection_id": connection.connection_id,
        "received": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    moved = register_entry(address={"lines": ["Hamngatan 2"], "postal_code": "21122"})
    second = await put_register(
        client, connection, moved, register_entry("K18", name="Kök AB", type="company")
    )
    assert (second.json()["created"], second.json()["updated"], second.json()["unchanged"]) == (
        0,
        1,
        1,
    )
    stored = json.loads(
        await pool.fetchval(
            "SELECT customer::text FROM customers WHERE connection_id = $1 "
            "AND customer_number = 'K17'",
            connection.connection_id,
        )
    )
    assert stored["address"] == {
        "lines": ["Hamngatan 2"],
        "postal_code": "21122",
        "city": None,
        "country_code": None,
    }
    assert (
        await pool.fetchval(
            "SELECT tenant_id FROM customers WHERE connection_id = $1 LIMIT 1",
            connection.connection_id,
        )
        == connection.tenant_id
    )


UNKNOWN_CUSTOMER_VOUCHER = """#OBJEKT 8 "K99" "Okänd Kund"
#VER "F" "1003" 20250312 "Faktura 1003"
{
#TRANS 1510 {8 "K99" 10 "1003"} 625.00
#TRANS 3001 {} -500.00
#TRANS 2611 {} -125.00
}
"""
SIE_TWO_CUSTOMERS = SIE.replace(
    b'#VER "B" "55"', UNKNOWN_CUSTOMER_VOUCHER.encode("cp437") + b'#VER "B" "55"'
)


async def test_sie_vouchers_carry_their_registered_customer_and_flow_again_once_known(
    api, pool, box
):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    entry = register_entry(
        name="Åsa Öberg", email=None, gln="7365567000003", organisation_number="19121212-1212"
    )
    assert (await put_register(client, connection, entry)).status_code == 200
    url = f"/api/v1/ingest/batches/{connection.connection_id}"
    response = await client.post(
        url, content=SIE_TWO_CUSTOMERS, headers=signed(SIE_TWO_CUSTOMERS, "text/plain")
    )
    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"emitted": 3, "skipped": 1}

    by_id = {e.source.document_id: e for e in await events(pool, connection.tenant_id)}
    known = by_id["20250101-F-1001"]
    assert known.related["customer"] == {
        "customer_number": "K17",
        "name": "Åsa Öberg",
        "type": "private",
        "organisation_number": "19121212-1212",
        "vat_number": None,
        "email": None,
        "gln": "7365567000003",
        "address": {
            "lines": ["Storgatan 1"],
            "postal_code": "11122",
            "city": "Stockholm",
            "country_code": None,
        },
    }
    assert by_id["20250101-F-1002"].related["customer"]["customer_number"] == "K17"
    unknown = by_id["20250101-F-1003"]
    assert "customer" not in unknown.related  # flows as before the register existed
    assert unknown.version == content_version(unknown.payload)
    assert known.version != content_version(known.payload)  # the entry is part of the version

    # K99 registered, the same vouchers exported again in a new file: only K99's flows again,
    # now with its customer (the mapper could not deliver it before).
    assert (await put_register(client, connection, entry, register_entry("K99"))).status_code == 200
    again = await client.post(
        url,
        content=SIE_TWO_CUSTOMERS,
        headers=signed(SIE_TWO_CUSTOMERS, "text/plain", **{"X-Nordflow-Batch-Id": "sie-2"}),
    )
    outcomes = {d["document_id"]: d["outcome"] for d in again.json()["documents"]}
    assert outcomes == {
        "20250101-F-1001": "unchanged",
        "20250101-F-1002": "unchanged",
        "20250101-F-1003": "emitted",
        "B-55": "skipped",
    }
    latest = (await events(pool, connection.tenant_id))[-1]
    assert latest.source.document_id == "20250101-F-1003"
    assert latest.related["customer"]["customer_number"] == "K99"
    assert latest.invoice_id == unknown.invoice_id


async def test_another_connections_register_is_never_looked_up(api, pool, box):
    client, _ = api
    owner = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    stranger = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    assert (await put_register(client, owner, register_entry())).status_code == 200
    response = await client.post(
        f"/api/v1/ingest/batches/{stranger.connection_id}",
        content=SIE,
        headers=signed(SIE, "text/plain"),
    )
    assert response.status_code == 200, response.text
    assert all("customer" not in e.related for e in await events(pool, stranger.tenant_id))


async def test_a_body_over_the_limit_is_413(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    huge = b"#" * (10 * 1024 * 1024 + 1)
    response = await client.post(
        f"/api/v1/ingest/batches/{connection.connection_id}",
        content=huge,
        headers=signed(huge, "text/plain"),
    )
    assert response.status_code == 413


# ------------------------------------------------------------------------------- modes


async def test_manual_mode_keeps_pushes_pending_until_released(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE, ConnectionMode.MANUAL)
    raw = json.dumps(json_batch("m-1")).encode()
    url = f"/api/v1/ingest/batches/{connection.connection_id}"
    pushed = await client.post(url, content=raw, headers=signed(raw, "application/json"))
    assert pushed.json()["counts"] == {"pending": 2}
    assert await events(pool, connection.tenant_id) == []

    relay = Relay()
    uow = PgUnitOfWork(pool, relay)

    async def release(limit: int | None, documents: list[str]) -> int:
        async with uow.transaction() as repos:
            return await release_pending(
                repos, connection, PROFILE, limit=limit, documents=documents, now=now()
            )

    first = await release(1, [])
    assert first == 1
    assert [e.source.document_id for e in await events(pool, connection.tenant_id)] == ["INV-1001"]
    assert relay.calls == 1
    named = await release(None, ["CN-7", "unknown"])
    assert named == 1
    assert await release(5, []) == 0
    assert relay.calls == 2
    released = await events(pool, connection.tenant_id)
    assert [e.source.document_id for e in released] == ["INV-1001", "CN-7"]
    assert not released[0].test_mode
    assert released[0].payload == json_batch()["documents"][0]["invoice"]

    # Pushed again in a new batch: already emitted, so nothing waits.
    again = await client.post(
        url, content=raw, headers=signed(raw, "application/json", **{"X-Nordflow-Batch-Id": "m-1"})
    )
    assert again.json()["replayed"] is True
    same = json.dumps(json_batch("m-2")).encode()
    repeat = await client.post(url, content=same, headers=signed(same, "application/json"))
    assert repeat.json()["counts"] == {"unchanged": 2}
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM pending_documents WHERE connection_id = $1",
            connection.connection_id,
        )
        == 0
    )


async def test_test_mode_events_carry_the_flag(api, pool, box):
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.WINNER, ConnectionMode.TEST)
    body = json.dumps(winner_order(payment_calendar=[])).encode()
    response = await client.post(
        f"/api/v1/ingest/winner/{connection.connection_id}",
        content=body,
        headers=signed(body, "application/json"),
    )
    assert response.json()["counts"] == {"emitted": 1}
    [event] = await events(pool, connection.tenant_id)
    assert event.test_mode is True


async def test_a_late_webhook_never_emits_older_content_than_a_poll_already_did(pool, box):
    connection = await add_connection(pool, box, SourceSystem.SIRVOY)
    moment = now()
    polled = Document(
        "701", "1701", DocumentKind.INVOICE, {"invoiceId": 701, "total": "200.00"}, {}, moment
    )
    uow = PgUnitOfWork(pool)
    async with uow.transaction() as repos:
        assert await emit_fetched(repos, connection, PROFILE, polled, now())
    stale = Document(
        document_id="701",
        document_number="1701",
        kind=DocumentKind.INVOICE,
        payload={"invoiceId": 701, "total": "100.00"},  # the content before the change
        related={},
        source_time=moment - dt.timedelta(minutes=5),
    )
    async with uow.transaction() as repos:
        (outcome,) = await ingest_documents(repos, connection, PROFILE, [stale], now())
    assert outcome.outcome == "outdated"
    assert [e.payload["total"] for e in await events(pool, connection.tenant_id)] == ["200.00"]
    # And the other way round: a poll that took an older snapshot than a webhook emits nothing.
    older_poll = Document(
        "701", "1701", DocumentKind.INVOICE, {"invoiceId": 701}, {}, moment - dt.timedelta(hours=1)
    )
    async with uow.transaction() as repos:
        assert not await emit_fetched(repos, connection, PROFILE, older_poll, now())


async def test_a_sirvoy_webhook_to_an_unknown_connection_is_answered_as_an_unsigned_one(
    api, pool, box
):
    client, _ = api
    credentials = json.dumps({"api_token": "t", "webhook_secret": "whsec"})
    connection = await add_connection(pool, box, SourceSystem.SIRVOY, secret=credentials)
    body = json.dumps({"event": "booking.created", "booking": {"id": 1}}).encode()
    cases = (
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json", "X-Sirvoy-Signature": "t=1,v1=00"},
    )
    for headers in cases:
        known = await client.post(
            f"/api/v1/ingest/sirvoy/{connection.connection_id}", content=body, headers=headers
        )
        unknown = await client.post("/api/v1/ingest/sirvoy/nobody", content=body, headers=headers)
        assert known.status_code == 401
        assert (unknown.status_code, unknown.json()) == (401, known.json())


async def test_a_batch_is_parsed_off_the_event_loop(api, pool, box, monkeypatch):
    """A 10 MiB SIE file is seconds of CPU: parsing it must not stop the service's loop."""
    from erp_poller.domain import sie

    parsed_on_loop: list[bool] = []
    real = sie.parse

    def watched(body: bytes) -> Any:
        try:
            asyncio.get_running_loop()
            parsed_on_loop.append(True)
        except RuntimeError:
            parsed_on_loop.append(False)
        return real(body)

    monkeypatch.setattr(sie, "parse", watched)
    client, _ = api
    connection = await add_connection(pool, box, SourceSystem.ON_PREMISE)
    url = f"/api/v1/ingest/batches/{connection.connection_id}"
    headers = signed(SIE, "text/plain", **{"X-Nordflow-Batch-Id": "sie-thread"})
    assert (await client.post(url, content=SIE, headers=headers)).status_code == 200
    assert parsed_on_loop == [False]
