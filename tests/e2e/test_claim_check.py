"""Documents too large for their events, through the running services and the real broker: a
Sirvoy webhook of more than 1 MB pushed to erp-poller travels as erp.document.chunked chunks
and a referencing erp.document.fetched, and mapper creates its invoice once. Records written
straight to the broker (the test stands in for erp-poller): a reference that arrives before
its chunks, and chunks delivered twice, still map once; a tampered chunk dead-letters the
document with its reason; another tenant's chunks never satisfy a reference."""

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from mapper.testing import SWEDISH_SELLER, by_reference, fetched, fortnox_invoice
from nordflow_local import journey, sources
from nordflow_local.provision import provision_sources
from nordflow_runtime.kafka import create_producer, topic_partitions
from nordflow_schemas.common import SourceSystem, canonical_invoice_id
from nordflow_schemas.envelope import Envelope, encode, envelope
from nordflow_schemas.events import ErpDocumentFetched, Flow

pytestmark = [pytest.mark.e2e]
CHUNKED = "erp.document.chunked"
LETTERS = "event.dead_lettered"


async def big_sirvoy_booking(url: str, token: str, invoices: int) -> list[str]:
    """A booking with ``invoices`` invoices of 200 long rows each (the sandbox's most); each
    invoice sends a webhook with the whole booking so far, the last one over 1 MB. The
    invoice ids, in order."""
    guest = sources.SIRVOY_GUESTS[0]
    async with httpx.AsyncClient(
        base_url=f"{url.rstrip('/')}/sandbox/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    ) as http:
        booking = await http.post(
            "bookings", json={"guest": guest, "nights": 2, "rooms": [{"room_name": "101"}]}
        )
        booking.raise_for_status()
        booking_id = booking.json()["bookingId"]
        ids = []
        for n in range(invoices):
            lines = [
                {
                    "description": f"Konferenspaket {n}.{i}, helpension " + "x" * 440,
                    "quantity": 1,
                    "unit_price": str(Decimal(100) + i),
                    "vat_rate": 12,
                }
                for i in range(200)
            ]
            invoice = await http.post(
                f"bookings/{booking_id}/invoices", json={"type": "invoice", "rows": lines}
            )
            invoice.raise_for_status()
            ids.append(str(invoice.json()["invoiceId"]))
        return ids


async def test_a_sirvoy_webhook_over_a_megabyte_is_mapped_from_its_chunks(
    nordflow_stack, tenant_id
):
    env = nordflow_stack.env()
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    hotell = {c.system: c for c in await provision_sources(env, tenant_id)}[sources.SIRVOY]
    documents = await big_sirvoy_booking(hotell.url, hotell.writer["token"], invoices=10)

    def by_document(journeys: dict[str, journey.Journey]) -> dict[str, journey.Journey]:
        out = {}
        for j in journeys.values():
            event = j.first("erp.document.fetched")
            if event is not None:
                out[event["source"]["document_id"]] = j
        return out

    def created(journeys: dict[str, journey.Journey]) -> bool:
        docs = by_document(journeys)
        return all(d in docs and docs[d].count("invoice.created") for d in documents)

    journeys = await journey.wait_for(bootstrap, hotell.tenant_id, created, timeout=300)
    docs = by_document(journeys)
    for d in documents:
        assert docs[d].count("erp.document.fetched") == 1, d
        assert docs[d].count("invoice.created") == 1, d
        assert len(docs[d].first("invoice.created")["invoice"]["lines"]) == 200, d
    last = docs[documents[-1]]
    event = last.first("erp.document.fetched")
    assert event is not None
    ref = event["payload_ref"]
    assert ref is not None, "the document travelled inline"
    assert ref["size"] > 1_048_576  # more than a whole Kafka record may weigh
    assert event["payload"] == {}
    chunks = await journey.read_journeys(bootstrap, hotell.tenant_id, (CHUNKED,))
    own = chunks[f"{hotell.tenant_id}:{ref['sha256']}"]
    assert own.count(CHUNKED) == ref["chunks"] > 4


def large(tenant: str, number: str) -> ErpDocumentFetched:
    """A Fortnox invoice with a 700 kB customer note, recorded only (no factor, no send)."""
    return fetched(
        SourceSystem.FORTNOX,
        fortnox_invoice(number),
        profile=SWEDISH_SELLER,
        related={"customer": {"Name": "Åsa", "Comments": "x" * 700_000}},
        tenant_id=tenant,
        invoice_id=canonical_invoice_id(tenant, "fortnox", "c1", number),
        document_id=number,
        document_number=number,
    ).model_copy(update={"flow": Flow(factor=False, distribute=False)})


def wrap(body: Any) -> Envelope[Any]:
    return envelope(body, source="/erp-poller")


async def produce(bootstrap: str, *envs: Envelope[Any]) -> None:
    producer = create_producer(bootstrap, f"e2e-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        for env in envs:
            key, value, headers = encode(env)
            await producer.send_and_wait(env.topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_order_copies_tampering_and_tenants_of_chunks_on_the_broker(nordflow_stack):
    bootstrap = nordflow_stack.env()["KAFKA_BOOTSTRAP_SERVERS"]
    tenant, other = f"t-{uuid.uuid4().hex[:10]}", f"t-{uuid.uuid4().hex[:10]}"
    late, late_chunks = by_reference(large(tenant, "101"), chunk_bytes=256 * 1024)
    bad, bad_chunks = by_reference(large(tenant, "102"), chunk_bytes=256 * 1024)
    # Another tenant's document whose content is byte for byte the same as "late"'s.
    theirs = late.model_copy(
        update={
            "tenant_id": other,
            "invoice_id": canonical_invoice_id(other, "fortnox", "c1", "101"),
        }
    )
    their_chunks = [c.model_copy(update={"tenant_id": other}) for c in late_chunks]
    data = bad_chunks[1].data
    bad_chunks[1] = bad_chunks[1].model_copy(
        update={"data": data[:50] + ("B" if data[50] == "A" else "A") + data[51:]}
    )

    # The references first, then the chunks: the tenant's twice (a relay's copies, and the
    # same content published again under new ids); the other tenant's not yet.
    await produce(bootstrap, wrap(late), wrap(theirs))
    await asyncio.sleep(3)
    await produce(bootstrap, *(wrap(c) for c in late_chunks * 2), *(wrap(c) for c in bad_chunks))
    await produce(bootstrap, wrap(bad))

    def mapped(journeys: dict[str, journey.Journey]) -> bool:
        return bool(
            journeys.get(late.invoice_id) and journeys[late.invoice_id].count("invoice.created")
        )

    journeys = await journey.wait_for(bootstrap, [tenant, other], mapped, timeout=120)
    assert journeys[late.invoice_id].count("invoice.created") == 1
    await asyncio.sleep(3)  # the other tenant's reference is tried meanwhile, and waits
    journeys = await journey.read_journeys(bootstrap, [tenant, other])
    # The tenant's chunks never satisfy the other tenant's reference to the same content.
    assert theirs.invoice_id not in journeys or not journeys[theirs.invoice_id].count(
        "invoice.created"
    )
    await produce(bootstrap, *(wrap(c) for c in their_chunks))

    def theirs_mapped(journeys: dict[str, journey.Journey]) -> bool:
        j = journeys.get(theirs.invoice_id)
        return bool(j and j.count("invoice.created"))

    journeys = await journey.wait_for(bootstrap, [tenant, other], theirs_mapped, timeout=120)
    assert journeys[theirs.invoice_id].count("invoice.created") == 1
    assert journeys[late.invoice_id].count("invoice.created") == 1

    # The tampered content: dead-lettered (a raw record: its reason is in its headers).
    letters: list[str] = []
    for _ in range(60):
        letters = await dead_letter_reasons(bootstrap, tenant)
        if letters:
            break
        await asyncio.sleep(1)
    assert bad.payload_ref is not None
    assert [r for r in letters if bad.payload_ref.sha256 in r], letters
    assert any("do not match their SHA-256" in r for r in letters), letters
    journeys = await journey.read_journeys(bootstrap, [tenant, other])
    assert bad.invoice_id not in journeys or not journeys[bad.invoice_id].count("invoice.created")


async def dead_letter_reasons(bootstrap: str, tenant: str) -> list[str]:
    """The reasons of mapper's dead letters of the tenant."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    reasons: list[str] = []
    try:
        tps = await topic_partitions(consumer, [LETTERS])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    headers = {k: v.decode() for k, v in record.headers or ()}
                    if (
                        headers.get("ce_tenantid") == tenant
                        and headers.get("x-nordflow-dlq-consumer") == "mapper"
                    ):
                        reasons.append(headers.get("x-nordflow-dlq-reason", ""))
    finally:
        await consumer.stop()
    return reasons
