"""How long each service takes to work again, by itself, after the broker or the database
restarts: its /readyz, and the first invoice through its step after the restart."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from nordflow_local import journey, processes
from nordflow_local.chaos.faults import Exit, Supervisor
from nordflow_local.chaos.observe import schema_of
from nordflow_local.factoring import transfers_on_demand
from nordflow_local.provision import provision_tenant
from nordflow_local.samples import CUSTOMERS, SandboxWriter, register_peppol_recipients
from nordflow_local.stack import SERVICES, Stack

# The event that shows a service did its step for an invoice.
STAGE = {
    "erp-poller": "erp.document.fetched",
    "mapper": "invoice.created",
    "factoring-gateway": "invoice.factoring_decided",
    "distribution-router": "invoice.distributed",
    "ledger-closer": "ledger.entry.posted",
}


@dataclass
class ServiceRecovery:
    """One service after the restart (seconds counted from the moment the infrastructure
    answered again)."""

    service: str
    unready_while_down: bool = False  # /readyz answered 503 (or nothing) during the outage
    ready_after: float | None = None  # /readyz 200 again
    step_after: float | None = None  # its event for the probe invoice published
    exited: bool = False  # the process ended (restarted by the supervisor, as Kubernetes would)


@dataclass
class Recovery:
    """One restart of the broker or the database and how every service came back."""

    target: str
    down: float
    restart_seconds: float  # from the start command to the infrastructure answering
    services: list[ServiceRecovery]
    exits: list[Exit] = field(default_factory=list)
    error: str = ""

    def table(self) -> str:
        """A small table for the docs."""
        lines = [
            f"{self.target} down {self.down:.0f}s, back in {self.restart_seconds:.1f}s"
            + (f" ({self.error})" if self.error else ""),
            f"  {'service':<22}{'exited':<8}{'503 while down':<16}{'/readyz 200':<14}"
            f"{'own step done':<14}",
        ]
        for s in self.services:
            ready = f"{s.ready_after:.1f}s" if s.ready_after is not None else "never"
            step = f"{s.step_after:.1f}s" if s.step_after is not None else "never"
            unready = "yes" if s.unready_while_down else "NO"
            exited = "yes" if s.exited else "no"
            lines.append(f"  {s.service:<22}{exited:<8}{unready:<16}{ready:<14}{step:<14}")
        return "\n".join(lines)


async def _applied(database_url: str, service: str, event_ids: list[str]) -> bool:
    """Whether the service's inbox holds one of the events."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        schema = schema_of(service)
        found = await conn.fetchval(
            f'SELECT count(*) FROM "{schema}".inbox WHERE event_id = ANY($1::text[])', event_ids
        )
        return bool(found)
    finally:
        await conn.close()


def _ready(stack: Stack, service: str) -> bool:
    record = processes.load_record(stack.state_dir, service)
    return (
        record is not None
        and record.ready_url is not None
        and processes.is_alive(record)
        and processes.http_ok(record.ready_url, timeout=2.0)
    )


async def measure(
    stack: Stack,
    target: str,
    *,
    down: float = 10.0,
    timeout: float = 240.0,
    say: Callable[[str], None] = print,
) -> Recovery:
    """Crash ``target`` (kafka or postgres), keep it down ``down`` seconds, start it again and
    time each service's way back; an invoice made right after the restart is the probe."""
    env = stack.env()
    tenant_id = f"recovery-{target}-{uuid.uuid4().hex[:6]}"
    tenant = await asyncio.to_thread(provision_tenant, env, tenant_id)
    await register_peppol_recipients(env["SANDBOX_SMP_URL"])
    writer = SandboxWriter(tenant.fortnox_url, tenant.fortnox_token)
    rng = random.Random(1)  # noqa: S311 - sample data
    customer = await writer.customer(CUSTOMERS[0])  # PEPPOL: a send that can be looked up
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]

    def through(j: journey.Journey) -> bool:
        return all(j.count(stage) for stage in STAGE.values())

    # The daily factoring window is hours away: transfer runs on demand, all along.
    pumps = contextlib.AsyncExitStack()
    await pumps.enter_async_context(transfers_on_demand(env, [tenant_id], every=0.5))
    # Warm: one invoice all the way through first, so every service has done its step.
    await writer.invoice(customer, rng)
    await journey.wait_for(
        bootstrap, tenant_id, lambda js: any(through(j) for j in js.values()), timeout=180
    )
    supervisor = Supervisor(stack, say)
    supervisor.infra_down = True
    supervisor.start()
    result = Recovery(target, down, 0.0, [ServiceRecovery(s) for s in SERVICES])
    try:
        say(f"  * {target}: crash, {down:.0f}s down, start")
        supervisor.fault = f"{target} restart"
        await asyncio.to_thread(stack.crash_infra, target)
        await asyncio.sleep(down / 2)
        for s in result.services:
            s.unready_while_down = not await asyncio.to_thread(_ready, stack, s.service)
        await asyncio.sleep(down / 2)
        began = time.monotonic()
        await asyncio.to_thread(stack.infra)
        t0 = time.monotonic()
        result.restart_seconds = t0 - began
        supervisor.infra_down = False
        number = await writer.invoice(customer, rng)
        by = {s.service: s for s in result.services}
        while time.monotonic() - t0 < timeout:
            now = time.monotonic() - t0
            for s in result.services:
                if s.ready_after is None and await asyncio.to_thread(_ready, stack, s.service):
                    s.ready_after = now
            journeys = await journey.read_journeys(bootstrap, tenant_id)
            probe = next((j for j in journeys.values() if j.number == number), None)
            for service, stage in STAGE.items():
                if probe is not None and probe.count(stage) and by[service].step_after is None:
                    by[service].step_after = time.monotonic() - t0
            # A service that only reads (control-panel): its step is applying the last event.
            last = list(probe.events.get(STAGE["ledger-closer"], {})) if probe else []
            for s in result.services:
                pending = s.service not in STAGE and s.step_after is None and last
                if pending and await _applied(env["DATABASE_URL"], s.service, last):
                    s.step_after = time.monotonic() - t0
            if all(s.ready_after is not None and s.step_after is not None for s in by.values()):
                break
            await asyncio.sleep(0.5)
        else:
            result.error = f"not all back after {timeout:.0f}s"
    finally:
        supervisor.stop()
        await pumps.aclose()
        await writer.aclose()
    result.exits = supervisor.exits
    for exit_ in supervisor.exits:
        for s in result.services:
            if s.service == exit_.service:
                s.exited = True
    return result
