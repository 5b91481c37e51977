"""Browser-test fixtures: the real control-panel process on the session's Kafka and a fresh
PostgreSQL database, a small runtime service whose job fails (it carries out retry_job like
every service), two tenants' journeys published on the topics, and Debian's Chromium driven
by Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from control_panel.testing import journey, rejected
from nordflow_local._net import LOOPBACK, free_port
from nordflow_local.pytest_plugin import with_database
from nordflow_runtime import db, jobs
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.consumer import Context, EventConsumer, PermanentError
from nordflow_runtime.kafka import create_consumer, create_producer
from nordflow_runtime.outbox import OutboxRelay
from nordflow_runtime.settings import ServiceSettings
from nordflow_schemas.envelope import encode, envelope
from nordflow_schemas.tenant import Locale
from nordflow_schemas.testing import new_tenant, tenant_profile, tenant_updated
from playwright.async_api import BrowserContext, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# What Chromium needs on a machine without a network to the outside (see the machine notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
BIN = Path(sys.executable).parent


@dataclass
class Toy:
    """A service on the runtime whose ERP refuses until told otherwise."""

    name: str
    pool: asyncpg.Pool
    refuse: bool = True


@dataclass
class Panel:
    """The running control panel and what the tests know about its data."""

    url: str
    env: dict[str, str]
    log: Path
    a: str
    b: str
    a_token: str
    b_token: str
    operator_token: str
    a_invoice: str
    a_rejected: str
    b_invoice: str
    toy: Toy


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "control-panel"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def _database(admin_url: str) -> str:
    name = f"nf_panel_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


async def _publish(bootstrap: str, records: list[tuple[str, Any, Any, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


def _tail(log: Path) -> str:
    return log.read_text()[-4000:]


async def _ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = asyncio.get_running_loop().time() + 90
    async with httpx.AsyncClient() as client:
        while True:
            assert process.poll() is None, f"control-panel exited:\n{_tail(log)}"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert asyncio.get_running_loop().time() < deadline, _tail(log)
            await asyncio.sleep(0.3)


@pytest.fixture(scope="module")
async def toy_tasks(nordflow_infra: dict[str, str]) -> AsyncIterator[tuple[Toy, str]]:
    """The toy service running: consumer (operator commands), outbox relay, job worker."""
    bootstrap = nordflow_infra["KAFKA_BOOTSTRAP_SERVERS"]
    database = await _database(nordflow_infra["DATABASE_URL"])
    name = f"toy-{uuid.uuid4().hex[:6]}"
    settings = ServiceSettings(kafka_bootstrap_servers=bootstrap, database_url=database)
    app: ServiceApp[Toy] = ServiceApp(name, settings, None)
    pool = await db.create_pool(database, app.schema)
    await db.migrate(pool, app.schema, app.migrations())
    toy = Toy(name, pool)

    async def book(ctx: Context[Toy], job: jobs.Job) -> dict[str, Any]:
        if toy.refuse:
            raise PermanentError("Fortnox refused the payment: the period 2025-03 is locked")
        return {"booked": True}

    producer = create_producer(bootstrap, name)
    await producer.start()
    consumer = create_consumer(bootstrap, name, app.topics)
    await consumer.start()
    relay = OutboxRelay(pool, producer, app.schema, poll_seconds=0.1)
    worker = jobs.JobWorker(pool, name, "book", book, deps=toy, idle_seconds=0.2)

    def committed() -> None:
        relay.notify()
        worker.notify()

    events = EventConsumer(
        service=name,
        pool=pool,
        consumer=consumer,
        handlers=app.handlers,
        deps=toy,
        on_commit=committed,
        poll_ms=100,
    )
    tasks = [asyncio.create_task(t) for t in (relay.run(), worker.run(), events.run())]
    try:
        yield toy, database
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        await pool.close()


@pytest.fixture(scope="module")
async def panel(nordflow_infra: dict[str, str], toy_tasks: tuple[Toy, str]) -> AsyncIterator[Panel]:
    """control-panel as `make up` runs it, with tokens made by its own command line."""
    toy, database = toy_tasks
    bootstrap = nordflow_infra["KAFKA_BOOTSTRAP_SERVERS"]
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="nordflow-panel-"))
    log = state / "control-panel.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database,
        "HTTP_HOST": LOOPBACK,
        "HTTP_PORT": str(port),
        "SESSION_COOKIE_SECURE": "false",
        "REFRESH_SECONDS": "1",
        "CONSUMER_POLL_MS": "100",
        "OTEL_TRACES_EXPORTER": "none",
        "LOG_LEVEL": "INFO",
    }
    a, b = new_tenant(), new_tenant()
    a_token = _cli(env, "tokens", "create", a, "--name", "anna")
    b_token = _cli(env, "tokens", "create", b, "--name", "bjorn")
    operator_token = _cli(env, "tokens", "create", "--operator", "--name", "ops")

    good, bad, other = journey(a, "1001"), rejected(a, "1002"), journey(b, "2001")
    profile = tenant_profile("SE", name="Exempel AB").model_copy(update={"locale": Locale.EN})
    events = [
        envelope(tenant_updated(a, profile), source="/erp-poller"),
        *good,
        *journey(a, "1003", customer="Andra Kunden AB"),
        *bad,
        *other,
    ]
    await _publish(bootstrap, [(e.topic, *encode(e)) for e in events])

    # The toy's job for invoice 1001 fails at once: job.failed through its outbox.
    async with toy.pool.acquire() as conn:
        await jobs.schedule(
            conn,
            kind="book",
            key="payment:1001",
            tenant_id=a,
            payload={"invoice_id": good[0].body.invoice_id},
            due_at=dt.datetime.now(dt.UTC),
        )

    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
            [str(BIN / "control-panel"), "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://{LOOPBACK}:{port}"
    try:
        await _ready(url, process, log)
        yield Panel(
            url=url,
            env=env,
            log=log,
            a=a,
            b=b,
            a_token=a_token,
            b_token=b_token,
            operator_token=operator_token,
            a_invoice=good[0].body.invoice_id,
            a_rejected=bad[0].body.invoice_id,
            b_invoice=other[0].body.invoice_id,
            toy=toy,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium; `make setup` installs it (apt-get) when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `make setup` (apt-get install chromium chromium-driver)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile directory."""
    profile = tempfile.mkdtemp(prefix="nordflow-chromium-")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            locale="en-GB",
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            await context.close()
