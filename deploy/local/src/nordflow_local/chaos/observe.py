"""What the running system holds: every topic, each service's tables, the partner sandboxes
and the control panel's read model."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from nordflow_runtime.kafka import topic_partitions
from nordflow_schemas.topics import EVENT_DEAD_LETTERED, SERVICES, TOPICS, consumer_group

from nordflow_local import deliveries, sources
from nordflow_local.samples import SandboxWriter


@dataclass(frozen=True)
class Record:
    """One distinct event (by ``ce_id``) on a topic."""

    topic: str
    key: str
    ce_id: str
    tenant: str
    body: dict[str, Any] | None
    headers: dict[str, str]


@dataclass
class Topics:
    """The events of some tenants on every topic: distinct by ``ce_id``, with raw copy counts."""

    events: dict[str, dict[str, Record]] = field(default_factory=lambda: defaultdict(dict))
    copies: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def on(self, topic: str) -> list[Record]:
        """The distinct events on a topic."""
        return list(self.events.get(topic, {}).values())

    def by_invoice(self, topic: str) -> dict[str, list[Record]]:
        """The distinct events on a topic, grouped by record key (the invoice id)."""
        out: dict[str, list[Record]] = defaultdict(list)
        for record in self.on(topic):
            out[record.key].append(record)
        return out

    @property
    def redelivered(self) -> int:
        """Records published more than once with the same ``ce_id`` (dropped by the inboxes)."""
        return sum(self.copies.values()) - sum(len(v) for v in self.events.values())


def _decode_headers(raw: Any) -> dict[str, str]:
    return {k: v.decode("utf-8", errors="replace") for k, v in raw or ()}


async def read_topics(bootstrap: str, tenants: Collection[str]) -> Topics:
    """Every record of the given tenants on every topic of the system, from the beginning."""
    wanted = set(tenants)
    out = Topics()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"chaos-{uuid.uuid4().hex[:8]}",
        request_timeout_ms=20_000,
    )
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, [t.name for t in TOPICS])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset >= ends[tp]:
                        continue
                    headers = _decode_headers(r.headers)
                    tenant = headers.get("ce_tenantid", "")
                    if tenant not in wanted:
                        continue
                    ce_id = headers.get("ce_id") or f"{tp.topic}:{tp.partition}:{r.offset}"
                    if tp.topic == EVENT_DEAD_LETTERED.name:
                        # Letters keep the original ce_id; tell them apart by who wrote them.
                        consumer_name = headers.get("x-nordflow-dlq-consumer", "?")
                        ce_id = f"{consumer_name}:{ce_id}"
                    try:
                        body = json.loads(r.value) if r.value else None
                    except ValueError:
                        body = None
                    out.copies[tp.topic] += 1
                    out.events[tp.topic][ce_id] = Record(
                        topic=tp.topic,
                        key=(r.key or b"").decode("utf-8", errors="replace"),
                        ce_id=ce_id,
                        tenant=tenant,
                        body=body if isinstance(body, dict) else None,
                        headers=headers,
                    )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


def consumer_groups(*, events_only: bool = False) -> dict[str, list[str]]:
    """Each service's consumer group (its name) and the topics it consumes, from the topic
    map; with ``events_only``, only topics of CloudEvents (whose inbox id is the ``ce_id``;
    a raw topic such as event.dead_lettered keys its inbox otherwise)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for spec in TOPICS:
        if events_only and spec.event is None:
            continue
        for consumer in spec.consumers:
            if consumer in SERVICES:
                groups[consumer].append(spec.name)
    return dict(groups)


async def lag_by_topic(bootstrap: str) -> dict[str, dict[str, int]]:
    """Records not yet committed, per service and topic it consumes (from the topic map), in
    the Kafka group it reads the topic in (`consumer_group`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20_000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, request_timeout_ms=20_000)
    await admin.start()
    await probe.start()
    try:
        lag: dict[str, dict[str, int]] = {}
        for service, topics in consumer_groups().items():
            per_topic = dict.fromkeys(topics, 0)
            # A service reads a topic marked separate_group in a Kafka group of its own.
            for topic in topics:
                tps = await topic_partitions(probe, [topic])
                ends = await probe.end_offsets(tps)
                committed = await admin.list_consumer_group_offsets(
                    consumer_group(service, topic), partitions=tps
                )
                for tp in tps:
                    meta = committed.get(tp)
                    # -1 (nothing committed) is no lag on an empty partition.
                    per_topic[tp.topic] += max(0, ends[tp] - max(meta.offset if meta else 0, 0))
            lag[service] = per_topic
        return lag
    finally:
        await probe.stop()
        await admin.close()


async def consumer_lag(bootstrap: str) -> dict[str, int]:
    """Records not yet committed, per consumer group, over every topic the group consumes."""
    return {group: sum(t.values()) for group, t in (await lag_by_topic(bootstrap)).items()}


# A job of the claiming kind is 'pending' while its worker runs it (the row locked), and the
# harness asks for a transfer run every 2 s all through the settle: a job is stuck only
# once it is this far past its time. The settle lasts minutes, so one that never runs still
# shows.
OVERDUE_SECONDS = 30.0


@dataclass
class Tables:
    """Each service's runtime tables: unsent outbox rows, jobs due or failed, inbox ids."""

    outbox_unsent: dict[str, int]
    outbox_set_aside: dict[str, int]  # rows Kafka refused for good, kept for `outbox retry`
    # "<service>/<kind>" -> the run's tenants' jobs more than OVERDUE_SECONDS past their due
    # time (pending) or their lease (running)
    jobs_due: dict[str, int]
    jobs_failed: dict[str, list[str]]  # "<service>/<kind>" -> last errors
    inbox: dict[str, set[str]]  # service -> ids of the given events it holds


def schema_of(service: str) -> str:
    """The PostgreSQL schema a service owns."""
    return service.replace("-", "_")


async def read_tables(
    database_url: str, event_ids: Mapping[str, Collection[str]], tenants: Collection[str]
) -> Tables:
    """The runtime tables of every service; ``event_ids`` maps a service to ids to look up."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        unsent: dict[str, int] = {}
        set_aside: dict[str, int] = {}
        due: dict[str, int] = {}
        failed: dict[str, list[str]] = defaultdict(list)
        inbox: dict[str, set[str]] = {}
        for service in SERVICES:
            schema = schema_of(service)
            columns = {
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = $1 AND table_name = 'outbox'",
                    schema,
                )
            }
            # Runtime migration 006 adds `failed_at`: a row set aside is not pending.
            aside = "failed_at IS NOT NULL" if "failed_at" in columns else "false"
            unsent[service] = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE sent_at IS NULL AND NOT ({aside})'
            )
            set_aside[service] = await conn.fetchval(
                f'SELECT count(*) FROM "{schema}".outbox WHERE sent_at IS NULL AND {aside}'
            )
            for row in await conn.fetch(
                f'SELECT kind, count(*) AS n FROM "{schema}".jobs '
                "WHERE state IN ('pending', 'running') AND tenant_id = ANY($1::text[]) "
                "AND due_at <= now() - make_interval(secs => $2) GROUP BY kind",
                list(tenants),
                OVERDUE_SECONDS,
            ):
                due[f"{service}/{row['kind']}"] = row["n"]
            for row in await conn.fetch(
                f'SELECT kind, job_key, last_error FROM "{schema}".jobs '
                "WHERE state = 'failed' AND tenant_id = ANY($1::text[])",
                list(tenants),
            ):
                failed[f"{service}/{row['kind']}"].append(
                    f"{row['job_key']}: {(row['last_error'] or '')[:300]}"
                )
            ids = list(event_ids.get(service, ()))
            rows = await conn.fetch(
                f'SELECT event_id FROM "{schema}".inbox WHERE event_id = ANY($1::text[])', ids
            )
            inbox[service] = {r["event_id"] for r in rows}
        return Tables(unsent, set_aside, due, dict(failed), inbox)
    finally:
        await conn.close()


async def partner_deliveries(env: Mapping[str, str]) -> dict[str, list[deliveries.Received]]:
    """What every delivery sandbox holds, by invoice id."""
    return await deliveries.received(env)


async def erp_payments(fortnox_url: str, token: str) -> list[dict[str, Any]]:
    """Every payment in one Fortnox sandbox company (within its rate limit)."""
    out: list[dict[str, Any]] = []
    writer = SandboxWriter(fortnox_url, token)
    try:
        page = 1
        while True:
            body = await writer.call("GET", f"invoicepayments?page={page}&limit=500")
            out += body["InvoicePayments"]
            if page >= int(body["MetaInformation"]["@TotalPages"]):
                return out
            page += 1
    finally:
        await writer.aclose()


async def tripletex_records(url: str, employee_token: str) -> dict[str, list[dict[str, Any]]]:
    """Everything one Tripletex sandbox company holds: customers, projects, products, orders,
    invoices."""
    return await sources.tripletex_books(url, employee_token)


@dataclass
class Panel:
    """What the control panel's API shows of some tenants."""

    listed: dict[str, dict[str, Any]]  # invoice id -> its row in `GET /invoices?tenant=`
    details: dict[str, dict[str, Any]]  # invoice id -> `GET /invoices/{id}` (with its journey)


# Invoices asked for at once (the panel answers each from its own tables).
PANEL_CONCURRENCY = 8


async def read_panel(url: str, token: str, tenants: Collection[str]) -> Panel:
    """Every invoice of the given tenants as the control panel's API lists it (every page),
    and each one's detail with its journey (an operator's token sees every tenant)."""
    listed: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(
        base_url=f"{url.rstrip('/')}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as http:
        for tenant in tenants:
            cursor: str | None = None
            while True:
                params = {"tenant": tenant, "limit": "200"} | ({"cursor": cursor} if cursor else {})
                response = await http.get("/invoices", params=params)
                response.raise_for_status()
                page = response.json()
                listed |= {item["invoice_id"]: item for item in page["items"]}
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        gate = asyncio.Semaphore(PANEL_CONCURRENCY)

        async def detail(invoice_id: str) -> tuple[str, dict[str, Any] | None]:
            async with gate:
                response = await http.get(f"/invoices/{quote(invoice_id, safe='')}")
            if response.status_code == 404:  # listed, then gone: it is simply not there
                return invoice_id, None
            response.raise_for_status()
            return invoice_id, response.json()

        found = await asyncio.gather(*(detail(i) for i in listed))
    return Panel(listed, {i: d for i, d in found if d is not None})
