"""One chaos run: provision, feed while faults strike, settle, check every invariant."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nordflow_local.chaos import observe
from nordflow_local.chaos.faults import Applied, Exit, Injector, Supervisor, plan_faults
from nordflow_local.chaos.invariants import (
    Verdict,
    applied_ids,
    check_applied,
    check_erp,
    check_factor,
    check_panel,
    check_partners,
    check_pipeline,
    check_settled,
    check_settlements,
    check_tripletex,
)
from nordflow_local.chaos.workload import WINNER, Profile, Workload
from nordflow_local.factoring import factor_invoices, transfers_on_demand
from nordflow_local.stack import Stack

# Between two looks at the system while it settles.
SETTLE_INTERVAL = 3.0


@dataclass
class Outcome:
    """What a run did and found."""

    profile: str
    seed: int
    elapsed: float
    verdict: Verdict
    applied: list[Applied] = field(default_factory=list)
    exits: list[Exit] = field(default_factory=list)
    settled_after: float | None = None  # seconds from the last restore to all invariants kept

    @property
    def ok(self) -> bool:
        """Every invariant kept."""
        return self.verdict.ok

    def summary(self) -> str:
        """The one line a run ends with."""
        kinds = Counter(a.fault.kind.value for a in self.applied)
        faults = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        c = self.verdict.counts
        order = [
            "documents",
            "fetched",
            "created",
            "rejected",
            "transferred",
            "distributed",
            "uncertain",
            "delivery_failed",
            "payments",
            "posted",
            "erp_payments",
            "partner_documents",
            "tripletex_orders",
            "tripletex_invoices",
            "panel_invoices",
            "panel_steps",
            "factor_invoices",
            "settlement_payments",
            "dead_letters",
            "redelivered",
            "lag",
            "outbox_unsent",
            "outbox_set_aside",
            "partner_faults",
            "jobs_due",
            "jobs_failed",
        ]
        counts = " ".join(f"{k.replace('_', '-')}={c.get(k, 0)}" for k in order)
        settled = f"{self.settled_after:.0f}s" if self.settled_after is not None else "never"
        broken = sum(len(v) for v in self.verdict.violations.values())
        return (
            f"chaos {'OK' if self.ok else 'FAILED'} profile={self.profile} seed={self.seed} "
            f"faults={len(self.applied)} ({faults}) unplanned-exits={len(self.exits)} "
            f"{counts} settled={settled} violations={broken} elapsed={self.elapsed:.0f}s"
        )

    def to_json(self) -> dict[str, Any]:
        """The whole outcome, for a report file."""
        return {
            "summary": self.summary(),
            "profile": self.profile,
            "seed": self.seed,
            "elapsed": round(self.elapsed, 1),
            "settled_after": self.settled_after,
            "counts": self.verdict.counts,
            "violations": dict(self.verdict.violations),
            "faults": [
                {**asdict(a), "fault": {**asdict(a.fault), "kind": a.fault.kind.value}}
                for a in self.applied
            ],
            "exits": [asdict(e) for e in self.exits],
        }


async def evaluate(stack: Stack, workload: Workload, *, erp: bool) -> Verdict:
    """Look at everything once and check every invariant (the ERP's books and the control
    panel's read model only if ``erp``: once the rest holds)."""
    env = stack.env()
    tenants = workload.tenants
    # The panel before the topics: a step it holds is then on the topics read after it.
    panel = None
    if erp:
        panel = await observe.read_panel(env["CONTROL_PANEL_URL"], workload.panel_token, tenants)
    topics = await observe.read_topics(env["KAFKA_BOOTSTRAP_SERVERS"], tenants)
    tables = await observe.read_tables(env["DATABASE_URL"], applied_ids(topics), tenants)
    lag = await observe.consumer_lag(env["KAFKA_BOOTSTRAP_SERVERS"])
    verdict = Verdict()
    check_pipeline(topics, workload.documents, verdict)
    check_applied(topics, tables, verdict)
    check_settled(tables, lag, verdict)
    check_partners(topics, await observe.partner_deliveries(env), verdict)
    factor = {
        t.tenant_id: await asyncio.to_thread(factor_invoices, env, t.factor.token)
        for t in workload.fortnox
        if t.factor is not None
    }
    check_factor(topics, factor, verdict)
    check_settlements(topics, workload.settled, verdict)
    if erp:
        payments = {
            t.tenant_id: await observe.erp_payments(t.fortnox_url, t.fortnox_token)
            for t in workload.fortnox
        }
        check_erp(topics, payments, verdict)
        tripletex = {
            c.tenant_id: await observe.tripletex_records(
                c.books.url, c.books.reader["employee_token"]
            )
            for c in workload.connected
            if c.system == WINNER and c.books is not None
        }
        check_tripletex(topics, workload.winner, tripletex, dt.datetime.now(dt.UTC).date(), verdict)
    if panel is not None:
        check_panel(topics, panel, verdict)
    return verdict


async def settle(
    stack: Stack, workload: Workload, timeout: float, say: Callable[[str], None]
) -> tuple[Verdict, float | None]:
    """Look again until every invariant holds twice in a row (the second time the ERP's books
    and the control panel's read model too), or something breaks that waiting cannot heal, or
    ``timeout``; the last verdict and when the system settled (None if it did not)."""
    started = time.monotonic()
    verdict = Verdict()
    calm = 0
    while True:
        whole = calm >= 1
        try:
            verdict = await evaluate(stack, workload, erp=whole)
        except Exception as error:  # the system may still be coming back
            verdict = Verdict()
            verdict.fail("observe-failed", f"{type(error).__name__}: {error}"[:300])
        elapsed = time.monotonic() - started
        if verdict.ok:
            calm += 1
            if calm >= 2:
                return verdict, elapsed
        else:
            calm = 0
            if not verdict.stuck_only and "observe-failed" not in verdict.violations:
                return verdict, None
            if whole:  # the rest held; what the books or the panel still wait for
                pending = {k: len(v) for k, v in verdict.violations.items() if v}
                say(f"  … settling {elapsed:.0f}s, the whole look: {pending}")
        if elapsed > timeout:
            if verdict.ok and not whole:
                continue  # the rest holds: one last look at the books and the panel decides
            return verdict, None
        if int(elapsed) % 30 < SETTLE_INTERVAL:
            pending = {k: len(v) for k, v in verdict.violations.items() if v}
            say(f"  … settling {elapsed:.0f}s: {pending or 'calm'}")
        await asyncio.sleep(SETTLE_INTERVAL)


async def run(
    stack: Stack,
    profile: Profile,
    seed: int,
    *,
    say: Callable[[str], None] = print,
    report: Path | None = None,
) -> Outcome:
    """A whole run on a stack that is up; the stack is left up, every service running."""
    began = time.monotonic()
    faults = plan_faults(
        seed,
        profile.fault_window,
        service_kills=profile.service_kills,
        broker_restarts=profile.broker_restarts,
        postgres_restarts=profile.postgres_restarts,
    )
    say(f"chaos: profile={profile.name} seed={seed} (replay: --seed {seed})")
    for fault in faults:
        say(f"  planned {fault}")
    prefix = f"chaos-{uuid.uuid4().hex[:6]}"
    workload = Workload(stack.env(), prefix, profile, seed, say)
    await workload.provision()
    say(f"  provisioned {len(workload.tenants)} tenants ({prefix}-*)")
    for queued in await workload.partner_faults():
        say(f"  partner fault queued: {queued}")
    supervisor = Supervisor(stack, say)
    injector = Injector(stack, supervisor, say)
    supervisor.start()
    try:
        t0 = time.monotonic()
        # The daily factoring window is hours away: ask for transfer runs all along.
        async with transfers_on_demand(stack.env(), [t.tenant_id for t in workload.fortnox]):
            injecting = asyncio.ensure_future(asyncio.to_thread(injector.run, faults, t0))
            try:
                await workload.feed()
                await injecting
            except BaseException:
                # No fault may outlive the run: the one under way is restored, no next one.
                injector.stopped.set()
                await asyncio.wait([injecting])
                raise
            fed = time.monotonic() - t0
            say(f"  fed {len(workload.documents)} documents; faults done at +{fed:.0f}s")
            await asyncio.to_thread(supervisor.wait_all_ready, 120.0)
            if profile.settlements:
                await asyncio.sleep(10)  # the last runs' files answered by the factor
                lines = await workload.factor_settles()
                say(f"  the factor settled what it accepted ({lines} invoices)")
            verdict, settled = await settle(stack, workload, profile.quiesce_timeout, say)
    finally:
        supervisor.stop()
    try:
        left = await workload.partner_faults_left()
        verdict.counts["partner_faults"] = workload.partner_faults_queued - left
    except Exception as error:  # a count for the summary; never a verdict
        say(f"  partner faults not counted: {error}")
    outcome = Outcome(
        profile=profile.name,
        seed=seed,
        elapsed=time.monotonic() - began,
        verdict=verdict,
        applied=injector.applied,
        exits=supervisor.exits,
        settled_after=settled,
    )
    if not outcome.ok:
        say(verdict.describe())
    for exit_ in outcome.exits:
        say(
            f"  exit: {exit_.service} pid {exit_.pid} at +{exit_.at:.0f}s during "
            f"{exit_.during or '-'}: {exit_.log}"
        )
    if report is not None:
        text = json.dumps(outcome.to_json(), indent=2, default=str) + "\n"
        await asyncio.to_thread(report.write_text, text)
    say(outcome.summary())
    return outcome
