"""Read every topic and tell each invoice's journey (used by the demo and the e2e tests)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer
from nordflow_runtime.kafka import topic_partitions

STAGES = (
    "erp.document.fetched",
    "invoice.created",
    "invoice.rejected",
    "invoice.factoring_decided",
    "invoice.transferred",
    "invoice.transfer_failed",
    "invoice.distributed",
    "ledger.entry.posted",
    "invoice.delivery_failed",
    "invoice.delivery_uncertain",
    "payment.received",
    "invoice.booked",
    "invoice.booking_skipped",
    "invoice.closing_held",
)


@dataclass
class Journey:
    """What happened to one invoice: distinct events per topic, and raw record counts."""

    invoice_id: str
    number: str | None = None
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    traces: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def count(self, topic: str) -> int:
        """Distinct events (by ce_id) on a topic."""
        return len(self.events.get(topic, {}))

    def first(self, topic: str) -> dict[str, Any] | None:
        """The body of the first event on a topic."""
        bodies = list(self.events.get(topic, {}).values())
        return bodies[0] if bodies else None


async def read_journeys(
    bootstrap: str, tenant_id: str | Collection[str], topics: tuple[str, ...] = STAGES
) -> dict[str, Journey]:
    """Every event of one tenant (or several) on the given topics, grouped by invoice id."""
    tenants = {tenant_id} if isinstance(tenant_id, str) else set(tenant_id)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"journey-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    journeys: dict[str, Journey] = {}
    try:
        tps = await topic_partitions(consumer, topics)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers or ()}
                    if headers.get("ce_tenantid") not in tenants or record.key is None:
                        continue
                    invoice_id = record.key.decode()
                    journey = journeys.setdefault(invoice_id, Journey(invoice_id))
                    body = json.loads(record.value)
                    journey.events[tp.topic][headers["ce_id"]] = body
                    journey.records[tp.topic] += 1
                    if traceparent := headers.get("traceparent"):
                        journey.traces[tp.topic].add(traceparent.split("-")[1])
                    if tp.topic != "payment.received":  # a payment's subject is its own id
                        journey.number = journey.number or headers.get("ce_subject")
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return journeys


async def wait_for(
    bootstrap: str,
    tenant_id: str | Collection[str],
    done: Any,
    *,
    timeout: float,
    progress: Any = None,
    interval: float = 1.0,
) -> dict[str, Journey]:
    """Re-read until ``done(journeys)`` is true; raises TimeoutError with the last state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        journeys = await read_journeys(bootstrap, tenant_id)
        if done(journeys):
            return journeys
        if progress is not None:
            progress(journeys)
        if loop.time() > deadline:
            raise TimeoutError(f"journeys incomplete after {timeout:.0f}s: {summary(journeys)}")
        await asyncio.sleep(interval)


def summary(journeys: dict[str, Journey]) -> str:
    """Counts of invoices that reached each stage."""
    return ", ".join(
        f"{stage} {sum(1 for j in journeys.values() if j.count(stage))}" for stage in STAGES
    )
