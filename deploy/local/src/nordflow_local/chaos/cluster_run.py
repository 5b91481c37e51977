"""The three-broker run: the stack on a KRaft cluster in network namespaces (replication
factor 3, `min.insync.replicas=2`); mid-flow a partition leader is killed and, later,
another broker is cut off the network; afterwards every invariant must hold."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from nordflow_local import kafka_cluster
from nordflow_local.chaos.faults import Supervisor
from nordflow_local.chaos.run import Outcome, settle
from nordflow_local.chaos.workload import Profile, Workload
from nordflow_local.factoring import transfers_on_demand
from nordflow_local.stack import Stack, stack_topics

CLUSTER = Profile(
    name="cluster",
    fortnox_tenants=3,
    invoices_per_tenant=16,
    bad_per_tenant=1,
    source_groups=1,
    per_source=6,
    feed_seconds=70,
    service_kills=0,
    broker_restarts=0,
    postgres_restarts=0,
    fault_window=70,
    quiesce_timeout=360,
)
# The busiest partition: whoever leads it is the one killed.
LEADER_OF = ("erp.document.fetched", 0)
CUT_OFF_OF = ("invoice.created", 0)


@dataclass
class ClusterFault:
    """What happened to one broker."""

    what: str
    node: int
    at: float
    back: float | None = None  # seconds until every broker was registered again
    note: str = ""


async def leader(bootstrap: str, topic: str, partition: int) -> int:
    """The broker leading a partition now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
        for p in described[0]["partitions"]:
            if p["partition"] == partition:
                return int(p["leader"])
        raise RuntimeError(f"{topic}:{partition} not found")
    finally:
        await admin.close()


async def durability(bootstrap: str) -> dict[str, str]:
    """Each topic's replication factor and min.insync.replicas, as the cluster reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        names = [name for name, _ in stack_topics()]
        described = await admin.describe_topics(names)
        rf = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        )
        isr: dict[str, str] = {}
        for response in configs:
            for resource in response.resources:
                name = resource[3]
                for entry in resource[4]:
                    if entry[0] == "min.insync.replicas":
                        isr[name] = str(entry[1])
        return {n: f"rf={sorted(rf.get(n, set()))} min.insync={isr.get(n)}" for n in names}
    finally:
        await admin.close()


@contextmanager
def _bootstrap_env(value: str) -> Iterator[None]:
    previous = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        else:
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = previous


async def _faults(
    kc: kafka_cluster.Cluster, t0: float, say: Callable[[str], None], log: list[ClusterFault]
) -> None:
    await asyncio.sleep(max(0.0, t0 + 15 - time.monotonic()))
    victim = await leader(kc.bootstrap, *LEADER_OF)
    node = kc.node(victim)
    fault = ClusterFault(f"SIGKILL the leader of {LEADER_OF[0]}:{LEADER_OF[1]}", victim, 0.0)
    fault.at = time.monotonic() - t0
    say(f"  * +{fault.at:.0f}s kill broker {victim} ({fault.what})")
    await asyncio.to_thread(kc.kill, node)
    await asyncio.sleep(15)
    began = time.monotonic()
    await asyncio.to_thread(kc.start, node)
    await asyncio.to_thread(kc.wait_ready)
    fault.back = time.monotonic() - began
    log.append(fault)
    await asyncio.sleep(max(0.0, t0 + 45 - time.monotonic()))
    cut = await leader(kc.bootstrap, *CUT_OFF_OF)
    if cut == victim:  # cut off another one than the broker just killed
        cut = next(n.node_id for n in kc.nodes if n.node_id != victim)
    host = kc.node(cut).host
    fault = ClusterFault(f"cut off (link down) broker {cut}", cut, time.monotonic() - t0)
    say(f"  * +{fault.at:.0f}s cut off broker {cut} ({host.address}) for 20s")
    await asyncio.to_thread(host.cut)
    await asyncio.sleep(20)
    await asyncio.to_thread(host.reconnect)
    began = time.monotonic()
    await asyncio.to_thread(kc.wait_ready, 180.0)
    fault.back = time.monotonic() - began
    log.append(fault)


async def _scenario(
    stack: Stack, kc: kafka_cluster.Cluster, seed: int, say: Callable[[str], None]
) -> tuple[Outcome, list[ClusterFault], dict[str, str]]:
    began = time.monotonic()
    config = await durability(kc.bootstrap)
    workload = Workload(stack.env(), f"cluster-{uuid.uuid4().hex[:6]}", CLUSTER, seed, say)
    await workload.provision()
    say(f"  provisioned {len(workload.tenants)} tenants; topics: {sorted(set(config.values()))}")
    supervisor = Supervisor(stack, say)
    supervisor.start()
    log: list[ClusterFault] = []
    try:
        t0 = time.monotonic()
        async with transfers_on_demand(stack.env(), [t.tenant_id for t in workload.fortnox]):
            await asyncio.gather(workload.feed(), _faults(kc, t0, say, log))
            say(f"  fed {len(workload.documents)} documents by +{time.monotonic() - t0:.0f}s")
            await asyncio.to_thread(supervisor.wait_all_ready, 120.0)
            verdict, settled = await settle(stack, workload, CLUSTER.quiesce_timeout, say)
    finally:
        supervisor.stop()
    outcome = Outcome(
        profile=CLUSTER.name,
        seed=seed,
        elapsed=time.monotonic() - began,
        verdict=verdict,
        exits=supervisor.exits,
        settled_after=settled,
    )
    return outcome, log, config


def run_cluster(root: Path, seed: int, say: Callable[[str], None] = print) -> Outcome:
    """The whole three-broker run under ``root``; everything is stopped and the namespaces
    deleted at the end."""
    say("chaos cluster: three KRaft brokers in network namespaces nfk-b1..3 (169.254.77.11-13)")
    with kafka_cluster.cluster(root) as kc, _bootstrap_env(kc.bootstrap):
        stack = Stack(root / "stack", progress=None)
        (root / "stack").mkdir(parents=True, exist_ok=True)
        (root / "stack").chmod(0o755)
        try:
            stack.up()
            outcome, log, _ = asyncio.run(_scenario(stack, kc, seed, say))
        finally:
            stack.down()
    if not outcome.ok:
        say(outcome.verdict.describe())
    for fault in log:
        back = f"{fault.back:.1f}s" if fault.back is not None else "never"
        say(f"  {fault.what} at +{fault.at:.0f}s: all brokers registered again {back} after")
    for exit_ in outcome.exits:
        say(f"  exit: {exit_.service} pid {exit_.pid} at +{exit_.at:.0f}s: {exit_.log}")
    say(outcome.summary().replace("faults=0 ()", f"faults={len(log)} (leader-kill 1, cut-off 1)"))
    return outcome
