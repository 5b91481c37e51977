"""mapper on the real Kafka broker and PostgreSQL: reference policies and payments end to end.

Each test produces erp.document.fetched records to Kafka, runs mapper's handler in the
runtime's consumer (inbox, one transaction per batch), publishes the outbox with the relay
and reads what mapper produced back from Kafka.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from mapper.app import on_erp_document_fetched
from mapper.cli import main
from mapper.domain.references import TenantReferencePolicy, save_policy
from mapper.testing import SWEDISH_SELLER, related_tenant
from nordflow_references import OcrControl, ReferenceKind, ReferencePolicy
from nordflow_runtime import dlq
from nordflow_runtime.consumer import Context, EventConsumer
from nordflow_runtime.kafka import create_consumer, create_producer, topic_partitions
from nordflow_runtime.outbox import OutboxRelay
from nordflow_sandboxes.fortnox.testing import RunningFortnoxSandbox
from nordflow_schemas.common import SourceRef, SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import Envelope, decode, encode, envelope
from nordflow_schemas.events import (
    DocumentKind,
    ErpDocumentFetched,
    EventBody,
    InvoiceCreated,
    InvoiceRejected,
    PaymentReceived,
)
from nordflow_schemas.topics import (
    ERP_DOCUMENT_FETCHED,
    INVOICE_CREATED,
    INVOICE_REJECTED,
    PAYMENT_RECEIVED,
)

pytestmark = pytest.mark.integration

CONNECTION = "fx-1"


def new_tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def fetched(
    tenant: str,
    kind: DocumentKind,
    document_id: str,
    payload: dict[str, Any],
    related: dict[str, dict[str, Any]],
    invoice_document: str | None = None,
) -> ErpDocumentFetched:
    """erp.document.fetched as erp-poller emits it (version = hash of the payload)."""
    version = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return ErpDocumentFetched(
        tenant_id=tenant,
        invoice_id=canonical_invoice_id(
            tenant, "fortnox", CONNECTION, invoice_document or document_id
        ),
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id=CONNECTION,
            document_id=document_id,
            document_number=document_id,
        ),
        kind=kind,
        version=version,
        fetched_at=dt.datetime.now(dt.UTC),
        payload=payload,
        related={**related_tenant(SWEDISH_SELLER), **related},
    )


async def produce(bootstrap: str, *envs: Envelope[ErpDocumentFetched]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for env in envs:
            key, value, headers = encode(env)
            await producer.send_and_wait(
                ERP_DOCUMENT_FETCHED.name, value=value, key=key, headers=headers
            )
    finally:
        await producer.stop()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


@pytest.fixture
async def mapper(pool: asyncpg.Pool, kafka_bootstrap: str) -> AsyncIterator[set[str]]:
    """mapper's handler consuming erp.document.fetched; add a tenant to the set to handle it.

    Other tests' records on the shared topic are skipped, so this consumer never maps (and
    re-publishes) another test's documents.
    """
    tenants: set[str] = set()

    async def handler(ctx: Context, env: Envelope[ErpDocumentFetched]) -> None:
        if env.tenant_id in tenants:
            await on_erp_document_fetched(ctx, env)

    group = f"mapper-it-{uuid.uuid4().hex[:8]}"
    consumer = create_consumer(kafka_bootstrap, group, [ERP_DOCUMENT_FETCHED.name])
    await consumer.start()
    running = EventConsumer(
        service="mapper",
        pool=pool,
        consumer=consumer,
        handlers={ERP_DOCUMENT_FETCHED.name: handler},
        retry_initial=0.05,
        retry_max=0.2,
    )
    task = asyncio.create_task(running.run())
    try:
        yield tenants
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()


async def publish_outbox(pool: asyncpg.Pool, bootstrap: str) -> None:
    """Relay every outbox row to Kafka, as the service's relay does."""
    producer = create_producer(bootstrap, "mapper-it-relay")
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, "mapper")
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()


async def read_back(bootstrap: str, topic: str, tenant: str) -> list[EventBody]:
    """Every event of `tenant` on `topic`, from the beginning to the current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        bodies: list[EventBody] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    # Only this test's records: other tests share the topic, some on purpose
                    # with bodies that do not decode (the runtime's poison-record test).
                    if dict(record.headers).get("ce_tenantid") != tenant.encode():
                        continue
                    bodies.append(decode(record.value, record.headers).body)
        return bodies
    finally:
        await consumer.stop()


async def outbox_topics(pool: asyncpg.Pool, tenant: str) -> list[str]:
    rows = await pool.fetch("SELECT topic FROM outbox WHERE tenant_id = $1", tenant)
    return [r["topic"] for r in rows]


def fortnox_invoice(number: str) -> dict[str, Any]:
    """A Fortnox invoice as GET /3/invoices/{n} returns it, with no OCR set."""
    return {
        "DocumentNumber": number,
        "CustomerNumber": "7",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "OCR": "",
        "Address1": "Kundvägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": [
            {
                "Description": "Konsult",
                "DeliveredQuantity": 2,
                "Price": 500,
                "VAT": 25,
                "Total": 1000,
            }
        ],
        "Net": 1000,
        "TotalVAT": 250,
        "RoundOff": 0,
        "Total": 1250,
        "Balance": 1250,
    }


async def test_a_policy_driven_ocr_appears_on_invoice_created(
    pool: asyncpg.Pool, kafka_bootstrap: str, mapper: set[str]
) -> None:
    tenant = new_tenant()
    async with pool.acquire() as conn:
        await save_policy(
            conn,
            TenantReferencePolicy(
                tenant_id=tenant,
                policy=ReferencePolicy(
                    kind=ReferenceKind.SE_OCR, ocr_control=OcrControl.HARD_WITH_LENGTH
                ),
            ),
        )
    mapper.add(tenant)
    event = fetched(
        tenant,
        DocumentKind.INVOICE,
        "12345",
        fortnox_invoice("12345"),
        {"customer": {"CustomerNumber": "7", "Name": "Kund AB"}},
    )
    env = envelope(event, source="/erp-poller")
    await produce(kafka_bootstrap, env, env)

    async def mapped() -> bool:
        return await outbox_topics(pool, tenant) == [INVOICE_CREATED.name]

    await until(mapped)
    await publish_outbox(pool, kafka_bootstrap)
    created = await read_back(kafka_bootstrap, INVOICE_CREATED.name, tenant)
    assert len(created) == 1
    assert isinstance(created[0], InvoiceCreated)
    # Bankgirot's example: 12345 with length digit and Luhn digit.
    assert created[0].invoice.payment.payment_reference == "1234574"


async def fortnox_call(
    sandbox: RunningFortnoxSandbox, token: str, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=f"{sandbox.api_url}/", headers={"Authorization": f"Bearer {token}"}
    ) as http:
        response = await http.request(method, path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def sandbox_invoice(
    sandbox: RunningFortnoxSandbox, token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A customer and an invoice created in the Fortnox sandbox, as the API returns them."""
    customer = await fortnox_call(
        sandbox,
        token,
        "POST",
        "customers",
        {
            "Customer": {
                "Name": "Handgjort AB",
                "OrganisationNumber": "556677-8899",
                "EmailInvoice": "a@handgjort.example",
            }
        },
    )
    number = customer["Customer"]["CustomerNumber"]
    invoice = await fortnox_call(
        sandbox,
        token,
        "POST",
        "invoices",
        {
            "Invoice": {
                "CustomerNumber": number,
                "InvoiceRows": [
                    {"Description": "Hand made", "DeliveredQuantity": 1, "Price": 100, "VAT": 25}
                ],
            }
        },
    )
    return customer["Customer"], invoice["Invoice"]


async def test_a_reference_that_breaks_the_policy_is_rejected_naming_the_field(
    pool: asyncpg.Pool, kafka_bootstrap: str, mapper: set[str], sandbox: RunningFortnoxSandbox
) -> None:
    company = sandbox.create_company()
    customer, invoice = await sandbox_invoice(sandbox, company.token)
    tenant = new_tenant()
    async with pool.acquire() as conn:
        # The tenant's bank agreed 12-digit OCR references; Fortnox gave a short one.
        await save_policy(
            conn,
            TenantReferencePolicy(
                tenant_id=tenant,
                policy=ReferencePolicy(
                    kind=ReferenceKind.SE_OCR,
                    ocr_control=OcrControl.FIXED_LENGTH,
                    ocr_lengths=(12,),
                ),
            ),
        )
    mapper.add(tenant)
    number = str(invoice["DocumentNumber"])
    event = fetched(tenant, DocumentKind.INVOICE, number, invoice, {"customer": customer})
    await produce(kafka_bootstrap, envelope(event, source="/erp-poller"))

    async def mapped() -> bool:
        return await outbox_topics(pool, tenant) == [INVOICE_REJECTED.name]

    await until(mapped)
    await publish_outbox(pool, kafka_bootstrap)
    rejected = await read_back(kafka_bootstrap, INVOICE_REJECTED.name, tenant)
    assert len(rejected) == 1
    assert isinstance(rejected[0], InvoiceRejected)
    assert [(e.field, e.rule) for e in rejected[0].errors] == [
        ("payment.payment_reference", "NF-OCR")
    ]
    assert "agreed fixed length is 12" in rejected[0].errors[0].message


async def test_a_payment_delivered_twice_gives_exactly_one_payment_received(
    pool: asyncpg.Pool, kafka_bootstrap: str, mapper: set[str], sandbox: RunningFortnoxSandbox
) -> None:
    company = sandbox.create_company()
    _, invoice = await sandbox_invoice(sandbox, company.token)
    number = str(invoice["DocumentNumber"])
    created = await fortnox_call(
        sandbox,
        company.token,
        "POST",
        "invoicepayments",
        {
            "InvoicePayment": {
                "InvoiceNumber": int(number),
                "Amount": invoice["Total"],
                "PaymentDate": dt.date.today().isoformat(),
                "ModeOfPayment": "BG",
                "ModeOfPaymentAccount": 1930,
            }
        },
    )
    payment_number = str(created["InvoicePayment"]["Number"])
    payment = (
        await fortnox_call(sandbox, company.token, "GET", f"invoicepayments/{payment_number}")
    )["InvoicePayment"]
    tenant = new_tenant()
    mapper.add(tenant)
    paid = {"invoice": {"document_id": number, "document_number": number}}
    first = fetched(tenant, DocumentKind.PAYMENT, payment_number, payment, paid, number)
    refetched = first.model_copy(update={"fetched_at": dt.datetime.now(dt.UTC)})
    corrected_payload = {**payment, "Amount": 1.0, "AmountCurrency": 1.0}
    corrected = fetched(
        tenant, DocumentKind.PAYMENT, payment_number, corrected_payload, paid, number
    )
    env = envelope(first, source="/erp-poller")
    # The same record twice (redelivery), the same version fetched again, then a later
    # version whose amount changed in the source.
    await produce(
        kafka_bootstrap,
        env,
        env,
        envelope(refetched, source="/erp-poller"),
        envelope(corrected, source="/erp-poller"),
    )

    async def all_seen() -> bool:
        count = await pool.fetchval("SELECT count(*) FROM inbox WHERE tenant_id = $1", tenant)
        return bool(count == 3)

    await until(all_seen)
    await publish_outbox(pool, kafka_bootstrap)
    payments = await read_back(kafka_bootstrap, PAYMENT_RECEIVED.name, tenant)
    assert len(payments) == 1
    received = payments[0]
    assert isinstance(received, PaymentReceived)
    assert received.recorded_at_source
    assert received.invoice_id == canonical_invoice_id(tenant, "fortnox", CONNECTION, number)
    assert received.source.document_id == number
    assert received.payment_id == payment_number
    assert received.amount == Decimal(str(invoice["Total"]))
    row = await pool.fetchrow("SELECT * FROM payments WHERE tenant_id = $1", tenant)
    assert row["emitted_amount"] == Decimal(str(invoice["Total"]))
    assert row["last_amount"] == Decimal(1)
    assert row["version"] == corrected.version


async def test_unreadable_payment_data_is_dead_lettered_naming_the_fields(
    pool: asyncpg.Pool, kafka_bootstrap: str, mapper: set[str]
) -> None:
    tenant = new_tenant()
    mapper.add(tenant)
    broken = {"Number": "77", "Amount": "lots", "Currency": "SEK"}
    event = fetched(
        tenant,
        DocumentKind.PAYMENT,
        "77",
        broken,
        {"invoice": {"document_id": "5", "document_number": "5"}},
        "5",
    )
    await produce(kafka_bootstrap, envelope(event, source="/erp-poller"))

    async def dead_lettered() -> bool:
        return await outbox_topics(pool, tenant) == ["event.dead_lettered"]

    await until(dead_lettered)
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE tenant_id = $1", tenant) == 0
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE tenant_id = $1", tenant) == 0
    await publish_outbox(pool, kafka_bootstrap)
    letters = [
        lt for lt in await dlq.read(kafka_bootstrap, consumer="mapper") if lt.tenant_id == tenant
    ]
    assert len(letters) == 1
    assert "InvoicePayment.Amount (NF-NUMBER)" in letters[0].reason
    assert "InvoicePayment.PaymentDate (NF-REQUIRED)" in letters[0].reason


def test_references_set_and_show_through_the_cli(
    fresh_database_url: str,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    tenant = new_tenant()
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "no_kid", "--kid-algorithm", "mod11"]) == 0
    assert main(["references", "show", tenant]) == 0
    assert main(["references", "set", tenant, "--kind", "factor_layout", "--layout", "dnb"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{tenant}: no policy (country defaults)",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
        f"{tenant}: no_kid (mod11, variable length, no '-')",
    ]
    assert "factoring_number" in err
