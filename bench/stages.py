"""Per-stage throughput and end-to-end latency on one running stack.

Each stage is measured alone: every other service is stopped, the stage's service runs with
1 or 2 replicas, a small warm-up batch goes through first, then N records are put straight
onto its input topic (far faster than any service consumes them, so it drains a backlog)
and the rate is the count over the time from the first record sent to the broker timestamp
of the last output record. Before a stage starts, the consumer groups of the services that
are stopped are moved past what earlier stages left on their topics (never past
`tenant.updated`), so no stage's input reaches another service later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalGenerationError, UnknownMemberIdError
from aiokafka.structs import OffsetAndMetadata
from cpu import CpuMeter
from nordflow_local import deliveries, factoring, processes
from nordflow_local.stack import SERVICES, Stack, replica_name
from nordflow_runtime.kafka import create_producer, topic_partitions
from nordflow_schemas.topics import TOPICS, consumer_group
from workload import Record

PROGRESS_EVERY = 5.0
TENANT_UPDATED = "tenant.updated"
CLI_TIMEOUT = 120.0  # seconds an operator command may take before it is killed
PRODUCE_TIMEOUT = 300.0  # seconds a batch of records may take to be sent and acknowledged
T = TypeVar("T")
# Invoices per hour the replica count is sized for (the month-end figure).
TARGET_PER_HOUR = 1_000_000


def say(message: str) -> None:
    """A progress line (stderr, so the report on stdout stays clean)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def consumed_topics(service: str) -> list[str]:
    """The topics a service's consumer group reads (from the topic registry); a topic it
    reads in a group of its own (the mapper's erp.document.chunked) is not among them."""
    return [
        t.name
        for t in TOPICS
        if service in t.consumers and consumer_group(service, t.name) == service
    ]


# ------------------------------------------------------------------------------ Kafka


async def produce(
    bootstrap: str,
    records: Iterable[Record],
    client_id: str = "bench",
    timeout: float = PRODUCE_TIMEOUT,
) -> float:
    """Send every record with the services' producer settings; seconds it took (TimeoutError
    after `timeout`)."""
    producer = create_producer(bootstrap, client_id)
    await producer.start()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            pending = []
            for topic, key, value, headers in records:
                pending.append(await producer.send(topic, value, key=key, headers=headers))
                if len(pending) >= 1000:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def produce_paced(
    bootstrap: str, records: Sequence[Record], rate: float, client_id: str = "bench-paced"
) -> float:
    """Send the records at a steady `rate` per second (in 10 ms slices); seconds it took."""
    producer = create_producer(bootstrap, client_id)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for i, (topic, key, value, headers) in enumerate(records):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0.01:
                await asyncio.sleep(delay)
            pending.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


class Tail:
    """Records of the watched invoice ids on some topics, from their end offsets on:
    the first broker timestamp (seconds) per topic and invoice id, and how many copies."""

    def __init__(self, bootstrap: str, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        self.watch: set[str] = set()
        self.first: dict[str, dict[str, float]] = {t: {} for t in topics}
        self.copies: dict[str, int] = dict.fromkeys(topics, 0)
        # Fewer, larger fetches (at most 100 ms apart): the times are the records' broker
        # timestamps, so reading them later changes no figure, only what the broker and the
        # benchmark spend beside the stage they measure.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_min_bytes=256 * 1024,
            fetch_max_wait_ms=100,
        )

    async def __aenter__(self) -> Tail:
        await self.consumer.start()
        partitions = await topic_partitions(self.consumer, self.topics)
        self.consumer.assign(partitions)
        ends = await self.consumer.end_offsets(partitions)
        for tp in partitions:
            self.consumer.seek(tp, ends[tp])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def poll(self, timeout_ms: int = 300) -> list[tuple[str, str]]:
        """Read what arrived; the (topic, invoice id) pairs seen for the first time."""
        fetched = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=10_000)
        new: list[tuple[str, str]] = []
        for tp, records in fetched.items():
            seen = self.first[tp.topic]
            for record in records:
                key = record.key.decode() if record.key else ""
                if key not in self.watch:
                    continue
                self.copies[tp.topic] += 1
                at = record.timestamp / 1000
                if key not in seen:
                    new.append((tp.topic, key))
                if key not in seen or at < seen[key]:
                    seen[key] = at
        return new

    async def wait(self, what: str, ids: set[str], topics: Sequence[str], timeout: float) -> bool:
        """Poll until every id reached one of `topics`; False on timeout. Only what each poll
        brings is looked at: the benchmark shares the cores with the stage it measures (a
        scan of every id after each poll was 60 % of its CPU, 0.2 ms per invoice)."""
        left = {i for i in ids if not any(i in self.first[t] for t in topics)}
        started = last = time.monotonic()
        while left:
            now, reached = time.monotonic(), f"{len(ids) - len(left)}/{len(ids)}"
            if now - started > timeout:
                say(f"{what}: TIMED OUT after {timeout:.0f} s with {reached}")
                return False
            if now - last >= PROGRESS_EVERY:
                last = now
                say(f"{what}: {reached} [{now - started:.0f} s]")
            for topic, key in await self.poll():
                if topic in topics:
                    left.discard(key)
        return True


async def skip_groups(bootstrap: str, services: Iterable[str]) -> None:
    """Move the services' consumer groups to the end of their invoice topics (never of
    `tenant.updated`: the profiles stay), while those services are stopped."""
    for service in services:
        topics = [t for t in consumed_topics(service) if t != TENANT_UPDATED]
        if topics:
            await _skip_group(bootstrap, service, topics)


async def _skip_group(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commit the ends of the topics for the group, as a non-member. The broker refuses that
    while the group still has members (a stopped replica's membership lasts until it left or
    its session ran out), so it is tried again, on a new client, for up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, topics)
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.commit({tp: OffsetAndMetadata(ends[tp], "") for tp in partitions})
            return
        except (CommitFailedError, UnknownMemberIdError, IllegalGenerationError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"group {group} still has members after 60 s: {exc}") from exc
        finally:
            await consumer.stop()
        await asyncio.sleep(1)


async def group_lag(bootstrap: str, group: str) -> int:
    """Records on the group's invoice topics it has not committed past."""
    topics = [t for t in consumed_topics(group) if t != TENANT_UPDATED]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await topic_partitions(consumer, topics)
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            done = committed.get(tp)
            lag += ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's state and member count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
        for response in responses:
            for g in response.groups:
                return str(g[2]), len(g[5])
        return "Unknown", 0
    finally:
        await admin.close()


async def wait_group(bootstrap: str, group: str, members: int, timeout: float = 60.0) -> None:
    """Until the group is Stable with exactly `members` members (partitions assigned)."""
    started = time.monotonic()
    state, count = "", -1
    while time.monotonic() - started < timeout:
        state, count = await group_members(bootstrap, group)
        if state == "Stable" and count == members:
            return
        await asyncio.sleep(0.5)
    say(f"group {group}: still {state} with {count} members after {timeout:.0f} s; going on")


# -------------------------------------------------------------------------- the stack


def run_only(stack: Stack, wanted: dict[str, int]) -> None:
    """Exactly the services in `wanted` run, with that many replicas; the rest are stopped."""
    for service in SERVICES:
        if service not in wanted:
            for i in (3, 2, 1):
                with contextlib.suppress(Exception):
                    stack.stop_service(replica_name(service, i), sig=signal.SIGTERM)
    for service, replicas in wanted.items():
        stack.scale_service(service, replicas)


def service_pids(stack: Stack, service: str) -> list[int]:
    pids = []
    for i in (1, 2, 3):
        record = processes.load_record(stack.state_dir, replica_name(service, i))
        if record is not None and processes.is_alive(record):
            pids.append(record.pid)
    return pids


class Profiler:
    """py-spy recording one process while a stage drains (`--profile DIR`)."""

    def __init__(self, directory: Path | None, name: str, pid: int) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.path: Path | None = None
        if directory is None:
            return
        spy = Path(sys.executable).parent / "py-spy"
        if not spy.is_file():
            say("py-spy not installed (uv sync --frozen installs the dev tools); no profile")
            return
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name.replace(' ', '-')}.txt"
        self.process = subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--subprocesses",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        say(f"profile written to {self.path}")


# ---------------------------------------------------------------------------- results


@dataclass
class StageResult:
    """One stage measured with some replicas."""

    name: str
    service: str
    replicas: int
    count: int
    seconds: float | None
    failed: int = 0
    complete: bool = True
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process (cpu.py)

    @property
    def rate(self) -> float | None:
        return self.count / self.seconds if self.seconds else None

    def cpu_per_invoice(self) -> dict[str, float]:
        """Milliseconds of CPU per invoice, by process, over the measured part of the stage."""
        return {k: 1000 * v / self.count for k, v in self.cpu.items()} if self.count else {}

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "service": self.service,
            "replicas": self.replicas,
            "invoices": self.count,
            "seconds": self.seconds,
            "per_second": self.rate,
            "failed": self.failed,
            "complete": self.complete,
            "cpu_seconds": self.cpu,
        }


@dataclass
class LatencyResult:
    """fetched → distributed under a steady offered rate."""

    replicas: int
    offered_rate: float
    count: int
    produce_seconds: float
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    complete: bool = True

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    def as_json(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "offered_per_second": self.offered_rate,
            "invoices": self.count,
            "distributed": len(self.latencies),
            "failed": self.failed,
            "p50": self.percentile(0.5),
            "p99": self.percentile(0.99),
            "max": max(self.latencies) if self.latencies else None,
            "mean": statistics.fmean(self.latencies) if self.latencies else None,
            "complete": self.complete,
        }


@dataclass
class TransferRunResult:
    """One transfer run on demand of what factoring-gateway's stage decided eligible."""

    tenants: int
    decided: int
    pending: int  # of those decided, eligible and waiting for a transfer (the service says)
    transferred: int = 0
    failed: int = 0
    seconds: float | None = None
    complete: bool = True

    @property
    def rate(self) -> float | None:
        return self.transferred / self.seconds if self.seconds else None

    def as_json(self) -> dict[str, Any]:
        return {
            "tenants": self.tenants,
            "decided": self.decided,
            "pending": self.pending,
            "transferred": self.transferred,
            "failed": self.failed,
            "seconds": self.seconds,
            "per_second": self.rate,
            "complete": self.complete,
        }


@dataclass(frozen=True)
class StageSpec:
    """A stage: its service, the topics whose arrival ends an invoice there (the first is
    success), and a factory of (records, invoice ids) for a run of n invoices."""

    name: str
    service: str
    outputs: tuple[str, ...]
    make: Callable[[int, int], tuple[list[Record], set[str]]]  # (n, seed)
    timeout_per_invoice: float = 0.5


async def isolate(stack: Stack, bootstrap: str, wanted: dict[str, int]) -> None:
    """Only the `wanted` services run (with that many replicas), each with nothing left on
    its input topics from earlier runs: a stopped service's group is moved to the end of
    them before it starts; a running one with a backlog is stopped for that first."""
    running = {s for s in SERVICES if service_pids(stack, s)}
    await asyncio.to_thread(run_only, stack, {s: n for s, n in wanted.items() if s in running})
    stale = [s for s in wanted if s in running and await group_lag(bootstrap, s) > 0]
    if stale:
        say(f"{', '.join(stale)}: restarting with the earlier runs' records skipped")
        keep = {s: n for s, n in wanted.items() if s in running and s not in stale}
        await asyncio.to_thread(run_only, stack, keep)
    await skip_groups(bootstrap, [s for s in SERVICES if s not in running or s in stale])
    await asyncio.to_thread(run_only, stack, wanted)
    for service, replicas in wanted.items():
        if consumed_topics(service):  # erp-poller has no consumer group
            await wait_group(bootstrap, service, replicas)


async def measure_stage(
    stack: Stack,
    bootstrap: str,
    spec: StageSpec,
    count: int,
    warmup: int,
    replicas: int,
    seed: int,
    profile_dir: Path | None = None,
) -> tuple[StageResult, set[str]]:
    """The stage's rate with `replicas` replicas, alone on the stack; also the ids it sent.

    Timed from the moment the first record is sent (the warm-up done, the group stable)
    to the broker timestamp of the last output record.
    """
    if not spec.outputs:
        return await measure_drain(stack, bootstrap, spec, count, warmup, replicas, seed)
    await isolate(stack, bootstrap, {spec.service: replicas})
    label = f"{spec.name} x{replicas}"
    async with Tail(bootstrap, spec.outputs) as tail:
        records, ids = spec.make(warmup, seed)
        tail.watch |= ids
        await produce(bootstrap, records)
        await tail.wait(
            f"{label} warm-up", ids, spec.outputs, 60 + spec.timeout_per_invoice * warmup
        )
        sent = set(ids)

        records, ids = spec.make(count, seed + 1)
        tail.watch |= ids
        pid = service_pids(stack, spec.service)
        profiler = Profiler(profile_dir if replicas == 1 else None, spec.name, pid[0])
        say(f"{label}: {count} records onto {records[0][0]}")
        meter = CpuMeter(stack.state_dir)
        try:
            started = time.time()
            await produce(bootstrap, records)
            complete = await tail.wait(
                label, ids, spec.outputs, 60 + spec.timeout_per_invoice * count
            )
        finally:
            used = meter.stop()
            profiler.stop()
        sent |= ids
    done = [tail.first[spec.outputs[0]][i] for i in ids if i in tail.first[spec.outputs[0]]]
    failed = sum(1 for i in ids if any(i in tail.first[t] for t in spec.outputs[1:]))
    seconds = (max(done) - started) if done else None
    result = StageResult(
        spec.name,
        spec.service,
        replicas,
        len(done),
        seconds,
        failed,
        complete and not failed,
        cpu=used,
    )
    rate = f"{result.rate:,.1f}/s" if result.rate else "-"
    say(f"{label}: {len(done)} in {seconds or 0:.2f} s = {rate}; {failed} failed")
    return result, sent


async def drained(bootstrap: str, group: str, label: str, timeout: float) -> bool:
    """Wait until the group has committed past every record of its topics; False on time."""
    deadline = time.monotonic() + timeout
    while await group_lag(bootstrap, group) > 0:
        if time.monotonic() > deadline:
            say(f"{label}: INCOMPLETE: records left after {timeout:.0f} s")
            return False
        await asyncio.sleep(0.2)
    return True


async def measure_drain(
    stack: Stack,
    bootstrap: str,
    spec: StageSpec,
    count: int,
    warmup: int,
    replicas: int,
    seed: int,
) -> tuple[StageResult, set[str]]:
    """A stage that emits nothing (the control panel's read model): timed from the first
    record sent until its consumer group has committed past the last one (looked at every
    0.2 s, so a rate is slightly low rather than high)."""
    await isolate(stack, bootstrap, {spec.service: replicas})
    label = f"{spec.name} x{replicas}"
    records, ids = spec.make(warmup, seed)
    await produce(bootstrap, records)
    await drained(
        bootstrap, spec.service, f"{label} warm-up", 60 + spec.timeout_per_invoice * warmup
    )
    sent = set(ids)
    records, ids = spec.make(count, seed + 1)
    say(f"{label}: {count} records onto {records[0][0]}")
    meter = CpuMeter(stack.state_dir)
    started = time.time()
    await produce(bootstrap, records)
    complete = await drained(bootstrap, spec.service, label, 60 + spec.timeout_per_invoice * count)
    seconds = time.time() - started
    used = meter.stop()
    sent |= ids
    result = StageResult(
        spec.name, spec.service, replicas, count if complete else 0, seconds, 0, complete, cpu=used
    )
    rate = f"{result.rate:,.1f}/s" if result.rate else "-"
    say(f"{label}: {count} applied in {seconds:.2f} s = {rate}")
    return result, sent


async def measure_latency(
    stack: Stack,
    bootstrap: str,
    records: list[Record],
    ids: set[str],
    rate: float,
    replicas: int,
    timeout: float,
) -> LatencyResult:
    """Offer `records` (erp.document.fetched) at `rate`/s to mapper, factoring-gateway and
    distribution-router; the latency of each invoice from its fetched record to its
    invoice.distributed record (broker timestamps)."""
    wanted = {"mapper": replicas, "factoring-gateway": replicas, "distribution-router": replicas}
    await isolate(stack, bootstrap, wanted)
    ends = ("invoice.distributed", "invoice.delivery_failed", "invoice.delivery_uncertain")
    topics = ("erp.document.fetched", *ends, "invoice.rejected")
    label = f"latency x{replicas}"
    async with Tail(bootstrap, topics) as tail:
        tail.watch |= ids
        say(f"{label}: {len(records)} invoices at {rate:.0f}/s")
        producing = asyncio.create_task(produce_paced(bootstrap, records, rate))
        try:
            async with asyncio.timeout(PRODUCE_TIMEOUT + len(records) / rate):
                while not producing.done():
                    await tail.poll(100)
        finally:
            if not producing.done():
                producing.cancel()
                await asyncio.gather(producing, return_exceptions=True)
        produce_seconds = producing.result()
        complete = await tail.wait(label, ids, (*ends, "invoice.rejected"), timeout)
    fetched, distributed = tail.first["erp.document.fetched"], tail.first["invoice.distributed"]
    result = LatencyResult(replicas, rate, len(ids), produce_seconds, complete=complete)
    result.latencies = [
        distributed[i] - fetched[i] for i in ids if i in distributed and i in fetched
    ]
    result.failed = sum(1 for i in ids if any(i in tail.first[t] for t in topics[2:]))
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    say(f"{label}: p50 {p50 or 0:.2f} s p99 {p99 or 0:.2f} s over {len(result.latencies)}")
    return result


async def pending_invoices(http: httpx.AsyncClient, base_url: str, token: str) -> set[str]:
    """The ids of a tenant's invoices factoring-gateway holds pending for a transfer."""
    ids: set[str] = set()
    page = 500  # the API's largest page
    while True:
        response = await http.get(
            f"{base_url}/api/v1/invoices",
            params={"state": "pending", "limit": page, "offset": len(ids)},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        found = [row["invoice_id"] for row in response.json()]
        ids.update(found)
        if len(found) < page:
            return ids


async def measure_transfer_run(
    stack: Stack,
    bootstrap: str,
    tenant_ids: Sequence[str],
    decided: set[str],
    timeout_per_invoice: float = 0.1,
) -> TransferRunResult:
    """One transfer run on demand (`POST /api/v1/transfers/runs` for every tenant, what the
    daily window does) by one replica of factoring-gateway, of the invoices of `decided` it
    holds pending: timed from the requests to the broker timestamp of the last
    `invoice.transferred` (the factor sandbox's receipt is in by then)."""
    await isolate(stack, bootstrap, {"factoring-gateway": 1})
    env = stack.env()
    tokens = await in_threads(
        [functools.partial(factoring.api_token, env, t) for t in tenant_ids], parallel=3
    )
    base_url = env["FACTORING_GATEWAY_URL"]
    outputs = ("invoice.transferred", "invoice.transfer_failed")
    async with httpx.AsyncClient(timeout=30) as http:
        pending: set[str] = set()
        for token in tokens:
            pending |= await pending_invoices(http, base_url, token)
        pending &= decided
        result = TransferRunResult(len(tenant_ids), len(decided), len(pending))
        if not pending:
            say("factoring-gateway transfer run: nothing pending (no invoice was eligible)")
            return result
        label = "factoring-gateway transfer run"
        async with Tail(bootstrap, outputs) as tail:
            tail.watch |= pending
            say(f"{label}: {len(pending)} pending invoices of {len(tokens)} tenants")
            started = time.time()
            for token in tokens:
                await factoring.request_run(http, env, token)
            result.complete = await tail.wait(
                label, pending, outputs, 60 + timeout_per_invoice * len(pending)
            )
    done = [tail.first[outputs[0]][i] for i in pending if i in tail.first[outputs[0]]]
    result.transferred = len(done)
    result.failed = sum(1 for i in pending if i in tail.first[outputs[1]])
    result.seconds = (max(done) - started) if done else None
    result.complete = result.complete and not result.failed
    rate = f"{result.rate:,.1f}/s" if result.rate else "-"
    say(f"{label}: {len(done)} in {result.seconds or 0:.2f} s = {rate}; {result.failed} failed")
    return result


# ------------------------------------------------------------------- partner sandboxes


async def partner_counts(env: dict[str, str], ids: set[str]) -> dict[str, dict[str, int]]:
    """Per channel: invoices of `ids` the partner sandboxes hold, and copies beyond one."""
    received = await deliveries.received(env)
    out: dict[str, dict[str, int]] = {}
    for invoice_id in ids:
        for channel in {r.channel for r in received.get(invoice_id, [])}:
            n = sum(1 for r in received[invoice_id] if r.channel == channel)
            entry = out.setdefault(channel, {"invoices": 0, "extra_copies": 0})
            entry["invoices"] += 1
            entry["extra_copies"] += n - 1
    return out


async def fortnox_payments(fortnox_url: str, tokens: Iterable[str]) -> int:
    """Invoice payments held by the given Fortnox sandbox companies."""
    total = 0
    async with httpx.AsyncClient(timeout=15) as http:
        for token in tokens:
            response = await http.get(
                f"{fortnox_url}/sandbox/stats", headers={"Authorization": f"Bearer {token}"}
            )
            response.raise_for_status()
            total += int(response.json()["payments"])
    return total


def replicas_for(rate: float | None) -> int | None:
    """Replicas of a stage at `rate` per replica that carry TARGET_PER_HOUR."""
    if not rate:
        return None
    return math.ceil(TARGET_PER_HOUR / 3600 / rate)


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """`asyncio.gather`, but the first failure cancels the others, waits for them and is
    raised (plain `gather` leaves them running into `asyncio.run`'s clean-up)."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def in_threads(calls: Iterable[Callable[[], T]], parallel: int) -> list[T]:
    """Blocking calls (each with its own deadline) in threads, `parallel` at a time; the
    first failure cancels the calls not started yet and is raised."""
    gate = asyncio.Semaphore(parallel)

    async def one(call: Callable[[], T]) -> T:
        async with gate:
            return await asyncio.to_thread(call)

    return await gather_or_cancel(*(one(call) for call in calls))


async def run_cli(
    env: dict[str, str],
    *args: str,
    parallel: asyncio.Semaphore,
    timeout: float = CLI_TIMEOUT,
) -> None:
    """A service's operator command (`<venv>/bin/<service> …`), a few at a time, killed
    after `timeout` seconds.

    `subprocess.run` in a thread, not an asyncio subprocess: on Python 3.11 a task cancelled
    while `asyncio.create_subprocess_exec` connects the child's pipes never ends (its pipe
    task is cancelled too, so the transport never reports the exit: CPython gh-103847,
    gh-125502), and `asyncio.run`'s clean-up waited for it forever when one command failed.
    """
    command = [str(Path(sys.executable).parent / args[0]), *args[1:]]
    what = " ".join(args[:3])
    async with parallel:
        try:
            result = await asyncio.to_thread(
                subprocess.run,
                command,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{what} did not finish in {timeout:.0f} s (killed)") from None
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stderr.decode(errors='replace')[-600:]}")
