"""Nordflow benchmark: the broker's raw loop, every stage's rate next to it, latency under a
steady load, and the same with two replicas, from one run on one local stack.

Run with `make bench` (or `make bench-quick`; `uv run --frozen python bench/pipeline.py
--help`). It starts its own stack in `<repo>/.local/bench` (`.local/bench-quick` for
`--quick`), then:

1. raw broker: N ~1 KB records relayed by a consumer group batch by batch (`getmany`,
   re-produce with the services' idempotent producer, await the acks, commit);
2. stages: many tenants (profiles on `tenant.updated`, factoring agreements, Fortnox
   companies without a rate limit for ledger-closer), then each service alone, fed its
   input topic directly, with one replica and then two (`stages.py`, `workload.py`);
3. latency: invoices offered on `erp.document.fetched` at a steady 100/s, fetched →
   distributed per invoice, with one and two replicas of each service on the path;
4. what every partner sandbox received, against what was sent (the run fails if they
   differ: that is a correctness check, not a timing one);
5. one Fortnox company through erp-poller, at Fortnox's own rate limit.

It prints numbers; it asserts nothing about them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import stages
import workload
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from nordflow_local import processes
from nordflow_local.factoring import create_factor_client, set_agreement, transfers_on_demand
from nordflow_local.journey import STAGES
from nordflow_local.kafka import ensure_topics_async
from nordflow_local.provision import create_sandbox_company, provision_tenant
from nordflow_local.samples import CUSTOMERS, SandboxWriter
from nordflow_local.stack import SERVICES, Stack
from nordflow_runtime.kafka import create_consumer, create_producer, topic_partitions
from nordflow_runtime.settings import ServiceSettings
from nordflow_schemas.events import Flow
from stages import LatencyResult, StageResult, TransferRunResult, say

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 6
VALUE_BYTES = 1024
# The services' own consumer batch and poll time, so the raw loop batches like they do.
BATCH = int(ServiceSettings.model_fields["consumer_batch_size"].default)
POLL_MS = int(ServiceSettings.model_fields["consumer_poll_ms"].default)
PROGRESS_EVERY = 5.0  # seconds between progress lines while waiting
FORTNOX_LIMIT = "25 requests / 5 s per company"
# A quick run takes ~4 min on a quiet machine, ~10 min on a busy one; past this it is
# stopped (make bench-quick's `timeout` comes a minute later, as the last guard).
QUICK_DEADLINE = 720.0
# What asyncio.run's clean-up may take once the run has ended or was stopped.
TEARDOWN_SECONDS = 60.0

# The journey's stages, by name (STAGES lists more: failures, payments).
FETCHED, CREATED, REJECTED = "erp.document.fetched", "invoice.created", "invoice.rejected"
DECIDED, TRANSFERRED, DISTRIBUTED, POSTED = (
    "invoice.factoring_decided",
    "invoice.transferred",
    "invoice.distributed",
    "ledger.entry.posted",
)


# ---------------------------------------------------------------------------- raw broker


@dataclass
class BrokerResult:
    """The raw broker run."""

    records: int
    value_bytes: int
    produce_seconds: float
    relay_seconds: float

    @property
    def produce_rate(self) -> float:
        return self.records / self.produce_seconds

    @property
    def relay_rate(self) -> float:
        return self.records / self.relay_seconds


def make_record(i: int, rng: random.Random) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, ~1 KB JSON value and CloudEvents binary-mode headers, like a canonical invoice."""
    invoice_id = f"inv_{uuid.UUID(int=rng.getrandbits(128)).hex}"
    lines = [
        {
            "line_id": str(n + 1),
            "description": name,
            "quantity": str(rng.randint(1, 9)),
            "unit_price": f"{price}.00",
            "vat_rate": str(vat),
        }
        for n, (name, price, vat) in enumerate(
            [("Konsulttimme", 950, 25), ("Byggmaterial", 1240, 25), ("Livsmedel", 89, 12)]
        )
    ]
    body: dict[str, Any] = {
        "tenant_id": "bench",
        "invoice_id": invoice_id,
        "number": str(100_000 + i),
        "document_type": "invoice",
        "issue_date": "2025-01-15",
        "due_date": "2025-02-14",
        "currency": "SEK",
        "seller": {
            "name": "Nordflow Bench AB",
            "company_id": "5560360793",
            "vat_number": "SE556036079301",
            "city": "Stockholm",
            "country_code": "SE",
        },
        "buyer": {
            "name": "Byggbolaget Norr AB",
            "company_id": "5566778899",
            "city": "Umeå",
            "country_code": "SE",
        },
        "lines": lines,
        "totals": {"net": "4567.00", "vat": "1141.75", "payable": "5708.75"},
    }
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    filler = VALUE_BYTES - len(encoded) - len(',"note":""')
    if filler > 0:
        body["note"] = (
            ("Tack för ert köp. " * (filler // 18 + 1)).encode()[:filler].decode(errors="ignore")
        )
        encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    headers = {
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid4()),
        "ce_source": "/bench",
        "ce_type": "invoice.created",
        "ce_time": dt.datetime.now(dt.UTC).isoformat(),
        "ce_tenantid": "bench",
        "content-type": "application/json",
        "ce_subject": body["number"],
        "traceparent": f"00-{trace_id}-{span_id}-01",
    }
    return invoice_id.encode(), encoded, [(k, v.encode()) for k, v in headers.items()]


async def broker_bench(bootstrap: str, records: int) -> BrokerResult:
    """Produce `records` to a fresh topic, then time consume→produce→commit into another."""
    suffix = uuid.uuid4().hex[:8]
    source_topic, sink_topic = f"bench.raw.in.{suffix}", f"bench.raw.out.{suffix}"
    say(f"raw broker: creating {source_topic} and {sink_topic} ({PARTITIONS} partitions)")
    await ensure_topics_async(bootstrap, [(source_topic, PARTITIONS), (sink_topic, PARTITIONS)])
    try:
        rng = random.Random(20_000)
        batch = [make_record(i, rng) for i in range(records)]
        value_bytes = round(statistics.fmean(len(value) for _, value, _ in batch))

        producer = create_producer(bootstrap, f"bench-source-{suffix}")
        await producer.start()
        try:
            say(f"raw broker: producing {records} records of ~{value_bytes} B")
            started = time.perf_counter()
            for first in range(0, records, 1000):
                futures = [
                    await producer.send(source_topic, value, key=key, headers=headers)
                    for key, value, headers in batch[first : first + 1000]
                ]
                await asyncio.gather(*futures)
                done = first + len(futures)
                if done % 5000 == 0 or done == records:
                    say(f"raw broker: produced {done}/{records}")
            produce_seconds = time.perf_counter() - started
        finally:
            await producer.stop()
        del batch

        relay_seconds = await relay(bootstrap, source_topic, sink_topic, records, suffix)
    finally:
        await delete_topics(bootstrap, [source_topic, sink_topic])
    return BrokerResult(records, value_bytes, produce_seconds, relay_seconds)


async def relay(bootstrap: str, source: str, sink: str, records: int, suffix: str) -> float:
    """Consume `source` in batches, re-produce each record to `sink`, commit per batch.

    Timed from the first batch received (after the group join) to the last commit.
    """
    group = f"bench-relay-{suffix}"
    consumer = create_consumer(bootstrap, group, [source], max_poll_records=BATCH)
    producer = create_producer(bootstrap, group)
    await producer.start()
    await consumer.start()
    try:
        say(f"raw broker: relaying with consumer group {group} (batches of ≤{BATCH})")
        relayed = 0
        first: float | None = None
        last_progress = idle_since = time.monotonic()
        while relayed < records:
            fetched = await consumer.getmany(timeout_ms=POLL_MS, max_records=BATCH)
            if not fetched:
                if time.monotonic() - idle_since > 60:
                    raise TimeoutError(f"relay stalled at {relayed}/{records} records")
                continue
            if first is None:
                first = time.perf_counter()
            futures = [
                await producer.send(sink, r.value, key=r.key, headers=list(r.headers))
                for tp_records in fetched.values()
                for r in tp_records
            ]
            await asyncio.gather(*futures)
            await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in fetched.items()})
            relayed += len(futures)
            idle_since = time.monotonic()
            if idle_since - last_progress >= PROGRESS_EVERY or relayed >= records:
                last_progress = idle_since
                say(f"raw broker: relayed {relayed}/{records}")
        assert first is not None
        return time.perf_counter() - first
    finally:
        await consumer.stop()
        await producer.stop()


async def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Delete the bench topics (the empty bench consumer group expires on its own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.delete_topics(topics)
        say(f"raw broker: deleted {', '.join(topics)}")
    except Exception as error:
        say(f"raw broker: could not delete {', '.join(topics)}: {error}")
    finally:
        await admin.close()


# ------------------------------------------------------------------------------ pipeline


class EventTail:
    """Every new event of one tenant on the pipeline's topics: earliest ce_time per invoice."""

    def __init__(self, bootstrap: str, tenant_id: str) -> None:
        self.bootstrap = bootstrap
        self.tenant_id = tenant_id
        self.first: dict[str, dict[str, dt.datetime]] = {topic: {} for topic in STAGES}
        self.records: Counter[str] = Counter()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"bench-tail-{uuid.uuid4().hex[:8]}",
        )

    async def start(self) -> None:
        """Assign every partition and start at its end: only what happens from now on."""
        await self.consumer.start()
        partitions = await topic_partitions(self.consumer, STAGES)
        self.consumer.assign(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            self.consumer.seek(tp, ends[tp])

    async def stop(self) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 500) -> None:
        """Read what arrived."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        for tp, records in fetched.items():
            for record in records:
                headers = {k: v.decode() for k, v in record.headers or ()}
                if headers.get("ce_tenantid") != self.tenant_id or record.key is None:
                    continue
                key = record.key.decode()
                at = dt.datetime.fromisoformat(headers["ce_time"])
                seen = self.first[tp.topic]
                if key not in seen or at < seen[key]:
                    seen[key] = at
                self.records[tp.topic] += 1

    def count(self, topic: str) -> int:
        """Invoices that reached `topic`."""
        return len(self.first[topic])

    def summary(self, expected: int) -> str:
        return (
            f"fetched {self.count(FETCHED)}/{expected}  created {self.count(CREATED)}  "
            f"rejected {self.count(REJECTED)}  decided {self.count(DECIDED)}  "
            f"transferred {self.count(TRANSFERRED)}  "
            f"distributed {self.count(DISTRIBUTED)}  posted {self.count(POSTED)}"
        )

    async def wait(self, what: str, done: Callable[[], bool], deadline: float, n: int) -> None:
        """Poll until `done()`, with a progress line every few seconds."""
        started = last = time.monotonic()
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"timed out waiting for {what}: {self.summary(n)}")
            if now - last >= PROGRESS_EVERY:
                last = now
                say(f"pipeline: waiting for {what} [{now - started:4.0f} s] {self.summary(n)}")
            await self.poll()


@dataclass
class Span:
    """A count of invoices between two instants."""

    label: str
    count: int
    start: dt.datetime | None
    end: dt.datetime | None
    note: str = ""

    @property
    def seconds(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    @property
    def rate(self) -> float | None:
        seconds = self.seconds
        return self.count / seconds if seconds else None


@dataclass
class PipelineResult:
    """The pipeline run."""

    invoices: int
    tenant_id: str
    create_seconds: float
    spans: list[Span] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    erp_calls: str = ""
    complete: bool = True
    error: str = ""


def first_last(times: Iterable[dt.datetime]) -> tuple[dt.datetime | None, dt.datetime | None]:
    values = sorted(times)
    return (values[0], values[-1]) if values else (None, None)


async def create_sample_invoices(url: str, token: str, count: int) -> list[str]:
    """`count` valid invoices over the sample customers (within the sandbox's rate limit)."""
    rng = random.Random(7)
    writer = SandboxWriter(url, token)
    numbers: list[str] = []
    try:
        customers = [await writer.customer(c) for c in CUSTOMERS]
        last = time.monotonic()
        for i in range(count):
            numbers.append(await writer.invoice(customers[i % len(customers)], rng))
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                say(f"pipeline: created {len(numbers)}/{count} invoices in the sandbox")
    finally:
        await writer.aclose()
    return numbers


async def erp_calls(url: str, token: str, since: dt.datetime) -> str:
    """The sandbox's request log for the company since `since`, summarised."""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"{url}/sandbox/requests",
                params={"limit": 2000},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            log = response.json()["requests"]
    except (httpx.HTTPError, KeyError, ValueError) as error:
        return f"(request log unavailable: {error})"
    recent = [r for r in log if dt.datetime.fromisoformat(r["at"]) >= since]
    limited = sum(1 for r in recent if r["status"] == 429)
    kinds = Counter(
        f"{r['method']} {r['path'].split('/')[2]}" for r in recent if r["status"] != 429
    )
    capped = "≥" if len(log) >= 2000 else ""
    parts = ", ".join(f"{kind} {n}" for kind, n in kinds.most_common())
    return f"{capped}{len(recent)} calls, {limited} answered 429 ({parts})"


async def pipeline_bench(
    stack: Stack, env: dict[str, str], invoices: int, timeout: float, backlog: bool
) -> PipelineResult:
    """M invoices through the whole system; times from the events' ce_time headers."""
    tenant_id = f"bench-{uuid.uuid4().hex[:10]}"
    url = env["SANDBOX_FORTNOX_URL"]
    token = await asyncio.to_thread(create_sandbox_company, url, f"{tenant_id} AB")
    say(
        f"pipeline: creating {invoices} invoices in sandbox company '{tenant_id} AB' "
        f"({FORTNOX_LIMIT})"
    )
    started = time.monotonic()
    numbers = await create_sample_invoices(url, token, invoices)
    create_seconds = time.monotonic() - started
    say(f"pipeline: created {len(numbers)} invoices in {create_seconds:.1f} s")

    tail = EventTail(env["KAFKA_BOOTSTRAP_SERVERS"], tenant_id)
    await tail.start()
    result = PipelineResult(invoices, tenant_id, create_seconds)
    # The poller is held while the tenant is provisioned: provision_tenant connects the
    # poller first and sets the factoring agreement last, and with invoices already waiting
    # the first ones would be decided before the agreement exists (never transferred).
    say("pipeline: holding erp-poller while the tenant is provisioned")
    poller_start: dt.datetime | None = None
    transfers_start: dt.datetime | None = None
    held = ["erp-poller", *(["mapper"] if backlog else [])]
    for name in held:
        await asyncio.to_thread(stack.stop_service, name, signal.SIGTERM)
    try:
        await asyncio.to_thread(provision_tenant, env, tenant_id, token=token)
        say(f"pipeline: tenant {tenant_id} provisioned; starting erp-poller")
        poller_start = dt.datetime.now(dt.UTC)
        deadline = time.monotonic() + timeout
        await asyncio.to_thread(stack.start_service, "erp-poller")
        if backlog:
            await tail.wait(
                "every document fetched",
                lambda: tail.count(FETCHED) >= invoices,
                deadline,
                invoices,
            )
            say(f"pipeline: {invoices} documents fetched and waiting; starting mapper")
            await asyncio.to_thread(stack.start_service, "mapper")
        await tail.wait(
            "every invoice decided and distributed",
            lambda: tail.count(DISTRIBUTED) >= invoices,
            deadline,
            invoices,
        )
        # Eligible invoices wait for the tenant's daily factoring window; ask for transfer
        # runs instead, from now on, and only then is anything closed in the books.
        say("pipeline: every invoice distributed; transfer runs on demand from now on")
        transfers_start = dt.datetime.now(dt.UTC)
        async with transfers_on_demand(env, [tenant_id], every=1.0):
            await tail.wait(
                "every invoice transferred and posted back",
                lambda: tail.count(TRANSFERRED) >= invoices and tail.count(POSTED) >= invoices,
                deadline,
                invoices,
            )
        say(f"pipeline: done: {tail.summary(invoices)}")
    except (TimeoutError, RuntimeError) as error:
        result.complete = False
        result.error = str(error)
        say(f"pipeline: INCOMPLETE: {error}")
    finally:
        # Running again, whatever happened (a no-op when it already runs), unless the run is
        # being stopped: then nothing is started again.
        task = asyncio.current_task()
        for name in held if task is None or not task.cancelling() else ():
            try:
                await asyncio.to_thread(stack.start_service, name)
            except Exception as error:
                say(f"pipeline: could not restart {name}: {error}")
        await tail.stop()

    first = tail.first
    fetched_first, fetched_last = first_last(first[FETCHED].values())
    _, distributed_last = first_last(first[DISTRIBUTED].values())
    _, transferred_last = first_last(first[TRANSFERRED].values())
    created_first, _ = first_last(first[CREATED].values())
    _, posted_last = first_last(first[POSTED].values())
    n = tail.count
    result.spans = [
        Span(
            "fetch: erp-poller, first→last erp.document.fetched",
            n(FETCHED),
            fetched_first,
            fetched_last,
            "ERP rate limit",
        ),
        Span(
            "(a) first fetched → last invoice.distributed",
            n(DISTRIBUTED),
            fetched_first,
            distributed_last,
            "mapper+router",
        ),
        Span(
            "    transfer runs asked for → last invoice.transferred",
            n(TRANSFERRED),
            transfers_start,
            transferred_last,
            "on demand, after the last distributed",
        ),
    ]
    if backlog:
        result.spans.append(
            Span(
                "(a') backlog: first created → last distributed",
                n(DISTRIBUTED),
                created_first,
                distributed_last,
                "no ERP in the way",
            )
        )
    result.spans += [
        Span(
            "(b) end to end: poller start → last posted",
            n(POSTED),
            poller_start,
            posted_last,
            "wall, incl. ERP; transfers on demand",
        ),
        Span(
            "    first fetched → last ledger.entry.posted",
            n(POSTED),
            fetched_first,
            posted_last,
            "by events",
        ),
    ]
    for stage in (CREATED, TRANSFERRED, DISTRIBUTED, POSTED):
        result.latencies[stage] = [
            (at - first[FETCHED][key]).total_seconds()
            for key, at in first[stage].items()
            if key in first[FETCHED]
        ]
    result.counts = {stage: n(stage) for stage in STAGES}
    if poller_start is not None:
        result.erp_calls = await erp_calls(url, token, poller_start)
    return result


# ------------------------------------------------------------------------- the whole run


@dataclass
class Sizes:
    """How much each part of the run sends (full `make bench`, or `--quick`)."""

    records: int = 20_000
    tenants: int = 24
    mapper: int = 3000
    factoring: int = 3000
    # per channel; at 200 a stage took 3-6 s, too short to tell two replicas from one
    router: int = 500
    ledger: int = 400
    # Fortnox companies, each a connection of its own: ledger-closer paces each at Fortnox's
    # 25 calls per 5 s (2-3 calls a payment or closing), so 12 would cap the stage at ~20/s.
    ledger_companies: int = 48
    latency_seconds: float = 10.0
    latency_rate: float = 100.0
    fortnox: int = 60
    warmup: int = 100

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            records=2000,
            tenants=4,
            mapper=200,
            factoring=200,
            router=12,
            ledger=20,
            ledger_companies=2,
            latency_seconds=0.5,
            fortnox=2,
            warmup=6,
        )


@dataclass
class Run:
    """Everything one run measured (printed, and written as JSON)."""

    sizes: Sizes
    replicas: tuple[int, ...]
    broker: BrokerResult | None = None
    stages: list[StageResult] = field(default_factory=list)
    latencies: list[LatencyResult] = field(default_factory=list)
    fortnox: PipelineResult | None = None
    transfer_run: TransferRunResult | None = None
    phase: str = "start"  # what the run was doing (named when it is stopped)
    partners: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # sent, got, extra
    errors: list[str] = field(default_factory=list)


class Workload:
    """The run's tenants and the records each stage is fed."""

    def __init__(self, run_id: str, sizes: Sizes) -> None:
        self.tenants = workload.make_tenants(run_id, sizes.tenants)
        self.seed = 1000
        self.channel_of: dict[str, str] = {}  # every invoice sent towards a partner
        self.ledger_pool: list[workload.LedgerInvoice] = []
        self.ledger_tokens: list[str] = []
        self.ledger_ids: set[str] = set()

    def fetched(self, n: int, seed: int) -> tuple[list[workload.Record], set[str]]:
        batch = workload.make_batch(self.tenants, n, workload.CHANNELS, seed)
        return list(workload.fetched_records(batch)), batch.ids

    def created(self, n: int, seed: int) -> tuple[list[workload.Record], set[str]]:
        batch = workload.make_batch(self.tenants, n, workload.CHANNELS, seed, mapped=True)
        return list(workload.created_records(batch)), batch.ids

    def for_channel(self, channel: str) -> Any:
        """Invoices to one channel whose flow excludes factoring: distribution-router sends
        them at once (it waits for a factoring decision otherwise, and factoring-gateway
        does not run in that stage)."""

        def make(n: int, seed: int) -> tuple[list[workload.Record], set[str]]:
            batch = workload.make_batch(self.tenants, n, (channel,), seed, mapped=True)
            self.channel_of.update(batch.channels)
            return list(workload.created_records(batch, Flow(factor=False))), batch.ids

        return make

    def ledger(self, n: int, seed: int) -> tuple[list[workload.Record], set[str]]:
        if len(self.ledger_pool) < n:
            raise RuntimeError(f"only {len(self.ledger_pool)} Fortnox invoices left, need {n}")
        taken, self.ledger_pool = self.ledger_pool[:n], self.ledger_pool[n:]
        records, ids = workload.ledger_records(taken, seed)
        self.ledger_ids |= ids
        return records, ids


def set_factoring_agreement(env: dict[str, str], tenant_id: str) -> None:
    """The tenant's client account at the factor sandbox and its factoring agreement."""
    set_agreement(env, tenant_id, create_factor_client(env, tenant_id), timeout=stages.CLI_TIMEOUT)


async def set_up_tenants(env: dict[str, str], work: Workload, sizes: Sizes, replicas: int) -> None:
    """Profiles on tenant.updated, a factoring agreement per tenant, PEPPOL participants and
    bank consumers for the buyers, and Fortnox companies without a rate limit (with
    invoices and a ledger-closer connection) for the ledger stage."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    await stages.produce(bootstrap, workload.profile_records(work.tenants))
    say(f"setup: {len(work.tenants)} tenant profiles on tenant.updated")
    async with httpx.AsyncClient(timeout=15) as http:
        for i in range(8):  # make_batch picks among 8 buyers per channel
            participant = f"iso6523-actorid-upis::0088:{workload.gln(i)}"
            response = await http.put(
                f"{env['SANDBOX_SMP_URL']}/admin/participants/{participant}",
                json={"document_types": [workload.BIS3_INVOICE]},
            )
            response.raise_for_status()
            digits = workload.personal_number(i).replace("-", "")
            response = await http.put(
                f"{env['SANDBOX_B2C_BANK_URL']}/sandbox/consumers/{digits}",
                json={"accepts_all_issuers": True},
            )
            response.raise_for_status()
    say("setup: 8 PEPPOL participants in the SMP, 8 consumers in the bank")
    # Each tenant's client account at the factor sandbox and its agreement (CUSIN-style XML
    # over SFTP), as provision_tenant makes them; a few command starts at a time.
    await stages.in_threads(
        [functools.partial(set_factoring_agreement, env, t.tenant_id) for t in work.tenants],
        parallel=3,
    )
    say(f"setup: {len(work.tenants)} factoring agreements")
    # ledger-closer: every run of the stage needs invoices of its own in Fortnox.
    runs = len(replicas_list(replicas))
    warmup = max(2, sizes.warmup // 10)  # run_stages' warm-up of a job-driven stage
    fortnox = env["SANDBOX_FORTNOX_URL"]
    connect = []
    async with httpx.AsyncClient(timeout=30) as http:
        # Every tenant's first connection, then every tenant's second, ...
        most = max(len(t.connections) for t in work.tenants)
        companies = [
            (tenant, tenant.connections[c])
            for c in range(most)
            for tenant in work.tenants
            if c < len(tenant.connections)
        ][: sizes.ledger_companies]
        per_company = math.ceil((sizes.ledger + warmup) * runs / len(companies)) + 1
        for tenant, connection in companies:
            response = await http.post(
                f"{fortnox}/sandbox/companies",
                json={"name": f"{tenant.profile.legal_name}", "rate_limited": False},
            )
            response.raise_for_status()
            token = response.json()["token"]
            work.ledger_tokens.append(token)
            auth = {"Authorization": f"Bearer {token}"}
            response = await http.post(
                f"{fortnox}/3/customers",
                json={"Customer": {"Name": "Kund AB", "OrganisationNumber": "556677-8899"}},
                headers=auth,
            )
            response.raise_for_status()
            customer = response.json()["Customer"]["CustomerNumber"]

            async def invoice(auth: dict[str, str] = auth, customer: str = customer) -> Any:
                row = {"Description": "Konsult", "DeliveredQuantity": 1, "Price": 100, "VAT": 25}
                body = {"Invoice": {"CustomerNumber": customer, "InvoiceRows": [row]}}
                r = await http.post(f"{fortnox}/3/invoices", json=body, headers=auth)
                r.raise_for_status()
                return r.json()["Invoice"]

            made = await asyncio.gather(*(invoice() for _ in range(per_company)))
            work.ledger_pool += [
                workload.LedgerInvoice(
                    tenant.tenant_id, connection, str(i["DocumentNumber"]), Decimal(str(i["Total"]))
                )
                for i in made
            ]
            connect.append((tenant.tenant_id, connection, token))
    # Interleave the companies, so a run spreads over every connection.
    work.ledger_pool.sort(key=lambda inv: (int(inv.number), inv.connection_id))
    parallel = asyncio.Semaphore(3)
    await stages.gather_or_cancel(
        *(
            stages.run_cli(
                {**env, "BENCH_FORTNOX_TOKEN": token},
                "ledger-closer",
                "connections",
                "add",
                "--tenant",
                tenant_id,
                "--connection-id",
                connection,
                "--base-url",
                fortnox,
                "--token-env",
                "BENCH_FORTNOX_TOKEN",
                parallel=parallel,
            )
            for tenant_id, connection, token in connect
        )
    )
    say(
        f"setup: {len(connect)} Fortnox companies without a rate limit, "
        f"{len(work.ledger_pool)} invoices, ledger-closer connected to each"
    )


def replicas_list(replicas: int) -> tuple[int, ...]:
    return (1, 2) if replicas >= 2 else (1,)


def stage_specs(work: Workload, sizes: Sizes) -> list[tuple[stages.StageSpec, int]]:
    routed = ("invoice.distributed", "invoice.delivery_failed", "invoice.delivery_uncertain")
    specs = [
        (
            stages.StageSpec(
                "mapper", "mapper", ("invoice.created", "invoice.rejected"), work.fetched, 0.05
            ),
            sizes.mapper,
        ),
        (
            stages.StageSpec(
                "factoring-gateway decisions",
                "factoring-gateway",
                (DECIDED,),
                work.created,
                0.05,
            ),
            sizes.factoring,
        ),
    ]
    for channel in ("email", "peppol", "paper", "b2c_bank"):
        spec = stages.StageSpec(
            f"distribution-router {channel}",
            "distribution-router",
            routed,
            work.for_channel(channel),
            0.5,
        )
        specs.append((spec, sizes.router))
    specs.append(
        (
            stages.StageSpec(
                "ledger-closer", "ledger-closer", ("ledger.entry.posted",), work.ledger, 0.5
            ),
            sizes.ledger,
        )
    )
    # The control panel emits nothing: its stage ends when its group has applied everything.
    specs.append(
        (stages.StageSpec("control-panel", "control-panel", (), work.created, 0.05), sizes.mapper)
    )
    return specs


async def run_stages(
    stack: Stack, env: dict[str, str], work: Workload, sizes: Sizes, run: Run, args: Any
) -> set[str]:
    """Every stage alone, with one replica and then two; returns every invoice id sent."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    sent: set[str] = set()
    warmup = {"mapper": sizes.warmup, "factoring-gateway": sizes.warmup}
    for spec, count in stage_specs(work, sizes):
        if args.only and not any(spec.name.startswith(o) for o in args.only):
            continue
        # Quick mode scales only the mapper (each replica start costs seconds on 2 cores).
        scaled = run.replicas if not args.quick or spec.service == "mapper" else (1,)
        stage_sent: set[str] = set()
        for replicas in scaled:
            run.phase = f"stage {spec.name} x{replicas}"
            work.seed += 10
            result, ids = await stages.measure_stage(
                stack,
                bootstrap,
                spec,
                count,
                warmup.get(spec.service, max(2, sizes.warmup // 10)),
                replicas,
                work.seed,
                args.profile,
            )
            run.stages.append(result)
            stage_sent |= ids
        sent |= stage_sent
        if spec.service == "factoring-gateway":
            # What the stage decided eligible waits for the daily window: one run on demand.
            run.phase = "factoring-gateway transfer run"
            run.transfer_run = await stages.measure_transfer_run(
                stack, bootstrap, [t.tenant_id for t in work.tenants], stage_sent
            )
    return sent


async def run_latency(
    stack: Stack, env: dict[str, str], work: Workload, sizes: Sizes, run: Run, quick: bool
) -> None:
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    count = max(2, round(sizes.latency_rate * sizes.latency_seconds))
    for replicas in (1,) if quick else run.replicas:
        work.seed += 10
        batch = workload.make_batch(work.tenants, count, workload.CHANNELS, work.seed)
        work.channel_of.update(batch.channels)
        result = await stages.measure_latency(
            stack,
            bootstrap,
            list(workload.fetched_records(batch)),
            batch.ids,
            sizes.latency_rate,
            replicas,
            timeout=120 + 2.0 * count,
        )
        run.latencies.append(result)


async def check_partners(env: dict[str, str], work: Workload, run: Run) -> None:
    """What each partner sandbox received against what was sent (exactly once)."""
    got = await stages.partner_counts(env, set(work.channel_of))
    for channel in workload.CHANNELS:
        sent = sum(1 for c in work.channel_of.values() if c == channel)
        entry = got.get(channel, {"invoices": 0, "extra_copies": 0})
        run.partners[channel] = (sent, entry["invoices"], entry["extra_copies"])
    if work.ledger_tokens:
        payments = await stages.fortnox_payments(env["SANDBOX_FORTNOX_URL"], work.ledger_tokens)
        run.partners["fortnox (ledger)"] = (len(work.ledger_ids), payments, 0)
    for name, (sent, received, extra) in run.partners.items():
        if sent != received or extra:
            run.errors.append(
                f"{name}: sent {sent}, the sandbox holds {received} (+{extra} copies)"
            )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.{digits}f}"


def report(run: Run, args: Any, started: float) -> None:
    load = os.getloadavg()
    print()
    print(
        "Nordflow benchmark"
        + (" (quick mode: sizes prove it runs; rates are noise)" if args.quick else "")
    )
    print(
        f"  machine: {os.cpu_count()} cores, {cpu_model()}; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    raw = run.broker.relay_rate if run.broker else None
    if run.broker:
        b = run.broker
        print(
            f"  raw broker loop (aiokafka consume→produce→commit, batches ≤{BATCH}, "
            f"{b.records} records of ~{b.value_bytes} B): {fmt(b.relay_rate)} records/s "
            f"(produce only: {fmt(b.produce_rate)}/s)"
        )
    print()
    header = (
        f"  {'stage (fed its input topic directly)':<34} {'repl':>4} {'invoices':>8} "
        f"{'seconds':>8} {'per second':>10} {'x raw':>7} {'x one':>6} {'for 1M/h':>8}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    single: dict[str, float | None] = {}
    for s in run.stages:
        rate = s.rate
        if s.replicas == 1:
            single[s.name] = rate
        ratio = f"{rate / raw:.4f}" if rate and raw else "-"
        scale = (
            f"{rate / one:.2f}" if s.replicas > 1 and rate and (one := single.get(s.name)) else ""
        )
        need = stages.replicas_for(rate) if s.replicas == 1 else None
        flag = "" if s.complete else f"  INCOMPLETE ({s.failed} failed)"
        print(
            f"  {s.name:<34} {s.replicas:>4} {s.count:>8} {fmt(s.seconds, 2):>8} "
            f"{fmt(rate):>10} {ratio:>7} {scale:>6} {need or '':>8}{flag}"
        )
    print(
        "  (per second: invoices over the time from the first sent to the last output; x raw: "
        "that over the raw loop;\n   x one: two replicas over one; for 1M/h: replicas at the "
        "one-replica rate that carry 1,000,000 invoices in an hour)"
    )
    print_cpu(run.stages)
    if run.transfer_run is not None:
        t = run.transfer_run
        print(
            f"  factoring-gateway, one transfer run on demand (1 replica; what a daily window "
            f"does): {t.pending} of the stage's {t.decided} decided invoices pending for "
            f"{t.tenants} tenants,\n   {t.transferred} transferred in {fmt(t.seconds, 2)} s "
            f"(runs requested → last invoice.transferred) = {fmt(t.rate)}/s"
            + ("" if t.complete else f"  INCOMPLETE ({t.failed} failed)")
        )
    print()
    for lat in run.latencies:
        p50, p99 = fmt(lat.percentile(0.5), 2), fmt(lat.percentile(0.99), 2)
        most = fmt(max(lat.latencies, default=None), 2)
        print(
            f"  fetched→distributed, {lat.replicas} replica{'s' if lat.replicas > 1 else ''} of "
            f"mapper, factoring-gateway and distribution-router, {lat.count} invoices offered at "
            f"{lat.offered_rate:.0f}/s ({lat.produce_seconds:.1f} s): p50 {p50} s, "
            f"p99 {p99} s, max {most} s" + ("" if lat.complete else "  INCOMPLETE")
        )
    if run.fortnox is not None:
        f = run.fortnox
        span = next((s for s in f.spans if s.label.startswith("(a)")), None)
        whole = next((s for s in f.spans if s.label.startswith("(b)")), None)
        print(
            f"  one Fortnox company through erp-poller (Fortnox's {FORTNOX_LIMIT} limit): "
            f"{f.invoices} invoices, fetched→distributed {fmt(span.rate if span else None, 2)}/s, "
            f"poller start→last posted (transfer runs on demand once every invoice was "
            f"distributed) {fmt(whole.rate if whole else None, 2)}/s"
            + ("" if f.complete else f"  INCOMPLETE: {f.error}")
        )
        print(f"    Fortnox API: {f.erp_calls}")
    print()
    if run.partners:
        parts = ", ".join(
            f"{name} {got}/{sent}" + (f" (+{extra} copies)" if extra else "")
            for name, (sent, got, extra) in run.partners.items()
        )
        print(f"  partner sandboxes, received/sent: {parts}")
    print("  exactly once: " + ("OK" if not run.errors else "FAILED: " + "; ".join(run.errors)))


def print_cpu(measured: list[StageResult]) -> None:
    """Each stage's CPU per invoice on the whole machine, by process (bench/cpu.py)."""
    shown = [s for s in measured if s.cpu and s.count]
    if not shown:
        return
    print(
        "  CPU per invoice, ms, by process with its children (its renderers, PostgreSQL's "
        "backends);\n   'other' is whatever else ran on the machine:"
    )
    for s in shown:
        per = s.cpu_per_invoice()
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per.items() if ms >= 0.005)
        cores = sum(s.cpu.values()) / s.seconds if s.seconds else 0.0
        print(
            f"    {s.name} x{s.replicas}: {sum(per.values()):.2f} in all "
            f"({cores:.2f} cores busy): {parts}"
        )


def results_json(run: Run) -> dict[str, Any]:
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": {"cores": os.cpu_count(), "cpu": cpu_model(), "load": os.getloadavg()},
        "raw_loop_per_second": run.broker.relay_rate if run.broker else None,
        "stages": [s.as_json() for s in run.stages],
        "latency": [lat.as_json() for lat in run.latencies],
        "transfer_run": run.transfer_run.as_json() if run.transfer_run else None,
        "partners": {
            k: {"sent": v[0], "received": v[1], "extra": v[2]} for k, v in run.partners.items()
        },
        "errors": run.errors,
    }


async def fortnox_single(stack: Stack, run: Run, sizes: Sizes) -> None:
    """The old pipeline figure: one Fortnox company, through erp-poller, at Fortnox's limit."""
    bootstrap = stack.env()["KAFKA_BOOTSTRAP_SERVERS"]
    await stages.isolate(stack, bootstrap, dict.fromkeys(SERVICES, 1))
    env = stack.env()
    timeout = 300.0 + 4.0 * sizes.fortnox
    run.fortnox = await pipeline_bench(stack, env, sizes.fortnox, timeout, backlog=False)
    if not run.fortnox.complete:
        run.errors.append(f"Fortnox company: {run.fortnox.error}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred invoices (CI)")
    parser.add_argument("--replicas", type=int, default=2, help="also measure with 2 (default)")
    parser.add_argument("--state-dir", type=Path, default=None, help="default .local/bench")
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up")
    parser.add_argument("--keep-state", action="store_true", help="keep a quick run's state dir")
    parser.add_argument(
        "--only", nargs="*", default=None, help="only these stages (prefixes), no latency/Fortnox"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy each stage into DIR")
    parser.add_argument("--skip-fortnox", action="store_true", help="no single-company run")
    parser.add_argument("--skip-latency", action="store_true", help="no latency runs")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"stop the run after this long (quick: {QUICK_DEADLINE:.0f}; 0: none, the default)",
    )
    for name in ("records", "tenants", "mapper", "factoring", "router", "ledger", "fortnox"):
        parser.add_argument(f"--{name}", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--latency-seconds", type=float, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def measure(stack: Stack, args: argparse.Namespace, run: Run) -> None:
    sizes = run.sizes
    run.phase = "starting Kafka and PostgreSQL"
    env = await asyncio.to_thread(stack.infra)
    run.phase = "the raw broker loop"
    run.broker = await broker_bench(env["KAFKA_BOOTSTRAP_SERVERS"], sizes.records)
    run.phase = "starting the sandboxes and services"
    env = await asyncio.to_thread(stack.up)  # every service once: migrations, profiles
    work = Workload(uuid.uuid4().hex[:6], sizes)
    run.phase = "set-up"
    await set_up_tenants(env, work, sizes, max(run.replicas))
    await run_stages(stack, env, work, sizes, run, args)
    if not args.only and not args.skip_latency:
        run.phase = "the latency runs"
        await run_latency(stack, env, work, sizes, run, args.quick)
    run.phase = "counting what the partner sandboxes received"
    await check_partners(stack.env(), work, run)
    if not args.only and not args.skip_fortnox:
        run.phase = "the single Fortnox company"
        await fortnox_single(stack, run, sizes)
    run.phase = "done"


class Guard:
    """That the run ends, and leaves nothing running, whatever happens.

    SIGTERM or SIGINT (CI's or make's `timeout`, Ctrl-C): the stack's processes are stopped
    at once, in a thread and without the stack's lock (a stack operation in progress in a
    worker thread holds it; what that operation started then only fails), and the run is
    cancelled; the exit status is 128 + the signal. A repeated signal changes nothing
    (`uv run` forwards the one its process group already got). Once the run has ended,
    stopped or not, `asyncio.run`'s clean-up (cancelling what is left, waiting for worker
    threads) gets TEARDOWN_SECONDS; after that the stack is stopped and the process exits.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.signal: int | None = None
        self.settled = threading.Event()  # set once asyncio.run has returned
        self._stopping = threading.Lock()
        self._stopper: threading.Thread | None = None
        self._armed = False

    @property
    def exit_code(self) -> int:
        return 128 + self.signal if self.signal is not None else 1

    def install(self, run: Run) -> None:
        """Handle SIGTERM and SIGINT in the running loop: cancel the current task."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig, task, run)
        if self.signal is not None:  # it came before the loop ran: nothing to stop yet
            run.errors.append(f"stopped by {signal.Signals(self.signal).name} at the start")
            task.cancel()

    def _on_signal(self, sig: int, task: asyncio.Task[Any], run: Run) -> None:
        if self.signal is not None:
            return
        self.signal = sig
        name = signal.Signals(sig).name
        run.errors.append(f"stopped by {name} during {run.phase}")
        say(f"{name} during {run.phase}: stopping the bench stack and the run")
        self._stopper = threading.Thread(target=self.stop_stack, name="bench-stop", daemon=True)
        self._stopper.start()
        task.cancel()
        self.expect_end()

    def outside_loop(self, sig: int, _frame: object) -> None:
        """A signal before the loop runs (the run is then cancelled at once) or once it is
        gone (the stack is being stopped already)."""
        if self.signal is None:
            self.signal = sig
            say(f"{signal.Signals(sig).name}: the bench stops")

    def stop_stack(self) -> None:
        """Every process of the stack, services first (a few tries: a stack operation in a
        worker thread may remove a process's record meanwhile)."""
        with self._stopping:
            for attempt in range(3):
                try:
                    stopped = processes.stop_all(self.stack.state_dir)
                except Exception as error:
                    say(f"stopping the stack (try {attempt + 1}): {error}")
                    time.sleep(1)
                    continue
                say(f"stopped {', '.join(stopped) or 'nothing (none was running)'}")
                return

    def join(self) -> None:
        """Until the stop a signal began has ended."""
        if self._stopper is not None:
            self._stopper.join(TEARDOWN_SECONDS)

    def expect_end(self) -> None:
        """From now on the clean-up has TEARDOWN_SECONDS."""
        if self._armed:
            return
        self._armed = True
        threading.Thread(target=self._watch, name="bench-watchdog", daemon=True).start()

    def _watch(self) -> None:
        if self.settled.wait(TEARDOWN_SECONDS):
            return
        say(
            f"the run's clean-up did not end within {TEARDOWN_SECONDS:.0f} s: "
            "stopping the stack and exiting without a report"
        )
        self.stop_stack()
        os._exit(self.exit_code)


async def guarded(stack: Stack, args: argparse.Namespace, run: Run, guard: Guard) -> None:
    """`measure` under the guard's signal handling and the run's own deadline."""
    guard.install(run)
    deadline = asyncio.timeout(args.deadline or None)
    try:
        async with deadline:
            await measure(stack, args, run)
    except TimeoutError:
        if not deadline.expired():
            raise
        run.errors.append(
            f"the run passed its deadline of {args.deadline:.0f} s during {run.phase}"
        )
        say(f"FAILED: the run passed its deadline of {args.deadline:.0f} s during {run.phase}")
    except asyncio.CancelledError:
        if guard.signal is None:
            raise
    except Exception as error:  # the report still shows what was measured
        failure = f"{type(error).__name__}: {str(error).strip()} (during {run.phase})"
        run.errors.append(failure)
        say(f"FAILED: {failure}")
    finally:
        guard.expect_end()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    for name in ("records", "tenants", "mapper", "factoring", "router", "ledger", "fortnox"):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    if args.latency_seconds is not None:
        sizes.latency_seconds = args.latency_seconds
    if args.deadline is None:
        args.deadline = QUICK_DEADLINE if args.quick else 0.0
    state_dir = args.state_dir or (REPO / ".local" / ("bench-quick" if args.quick else "bench"))
    os.environ["POLL_INTERVAL_SECONDS"] = "1"  # a real deployment polls every 30 s
    stack = Stack(state_dir, progress=say)
    run = Run(sizes, replicas_list(args.replicas))
    guard = Guard(stack)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, guard.outside_loop)
    started = time.monotonic()
    try:
        asyncio.run(guarded(stack, args, run, guard))
    except Exception as error:  # from asyncio.run itself
        run.errors.append(f"{type(error).__name__}: {error}")
        say(f"FAILED: {type(error).__name__}: {error}")
    finally:
        guard.settled.set()
        for sig in (signal.SIGTERM, signal.SIGINT):  # the loop's handlers are gone with it
            signal.signal(sig, guard.outside_loop)
        incomplete = [s.name for s in run.stages if not s.complete]
        incomplete += [f"latency x{lat.replicas}" for lat in run.latencies if not lat.complete]
        if run.transfer_run is not None and not run.transfer_run.complete:
            incomplete.append("factoring-gateway transfer run")
        if incomplete:
            run.errors.append("incomplete: " + ", ".join(incomplete))
        if args.keep_running and guard.signal is None:
            say(f"leaving the stack running: `uv run nordflow-local --state-dir {state_dir} down`")
        else:
            guard.join()
            say("stopping the bench stack")
            try:
                stack.down()
            except Exception as error:
                run.errors.append(f"stopping the stack: {error}")
                say(f"stopping the stack failed: {error}")
            if args.quick and not args.keep_state and not run.errors:
                shutil.rmtree(state_dir, ignore_errors=True)
            elif args.quick:
                say(f"the quick run's state (logs, data) stays in {state_dir}")
    report(run, args, started)
    path = args.json or (None if args.quick else state_dir / "results.json")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results_json(run), indent=2) + "\n", encoding="utf-8")
        print(f"  figures written to {path}")
    if guard.signal is not None:
        return guard.exit_code
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
