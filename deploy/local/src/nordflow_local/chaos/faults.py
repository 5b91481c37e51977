"""Faults at seeded random times (service SIGKILL, broker kill, PostgreSQL immediate stop),
and a supervisor that restarts what exits, as Kubernetes (or `make up`) would."""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from nordflow_local import processes
from nordflow_local.stack import SERVICES, Stack, StackError


class Kind(StrEnum):
    """What a fault does."""

    SERVICE_KILL = "service-kill"  # SIGKILL of one service process, started again after `down`
    BROKER_RESTART = "broker-restart"  # SIGKILL of the Kafka broker, started again after `down`
    POSTGRES_RESTART = "postgres-restart"  # `pg_ctl stop -m immediate`, started after `down`


@dataclass(frozen=True)
class Fault:
    """One planned fault: when (seconds after the feed starts), what, and for how long."""

    at: float
    kind: Kind
    target: str
    down: float

    def __str__(self) -> str:
        return f"+{self.at:.0f}s {self.kind} {self.target} ({self.down:.1f}s down)"


def plan_faults(
    seed: int,
    window: float,
    *,
    service_kills: int,
    broker_restarts: int,
    postgres_restarts: int,
    services: Sequence[str] = SERVICES,
) -> list[Fault]:
    """The faults of a run, drawn from ``seed`` alone (so a failing run can be replayed)."""
    rng = random.Random(seed)  # noqa: S311 - a replayable schedule, not crypto
    faults = [
        Fault(rng.uniform(3, window), Kind.SERVICE_KILL, rng.choice(services), rng.uniform(0.5, 3))
        for _ in range(service_kills)
    ]
    faults += [
        Fault(rng.uniform(5, window), Kind.BROKER_RESTART, "kafka", rng.uniform(2, 8))
        for _ in range(broker_restarts)
    ]
    faults += [
        Fault(rng.uniform(5, window), Kind.POSTGRES_RESTART, "postgres", rng.uniform(2, 8))
        for _ in range(postgres_restarts)
    ]
    return sorted(faults, key=lambda f: f.at)


@dataclass
class Exit:
    """A service process that ended without the harness killing it."""

    service: str
    pid: int
    at: float  # seconds after the harness started
    during: str  # the fault in progress, or "" when none was
    log: str  # its last error lines


@dataclass
class Applied:
    """A fault as it happened: when, and how long until everything was ready again."""

    fault: Fault
    started: float
    restored: float | None = None
    all_ready: float | None = None
    error: str = ""


def last_errors(stack: Stack, service: str, lines: int = 200, keep: int = 3) -> str:
    """The last error messages in a service's log (JSON lines), for a finding."""
    found: list[str] = []
    for line in processes.log_tail(stack.log_path(service), lines).splitlines():
        if not line.startswith("{"):
            if "Error" in line or "Traceback" in line:
                found.append(line.strip()[:300])
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("ERROR", "CRITICAL"):
            exc = (entry.get("exception") or "").strip().splitlines()
            found.append(f"{entry.get('message')} | {exc[-1] if exc else ''}"[:300])
    return " || ".join(found[-keep:])


def services_ready(stack: Stack) -> bool:
    """Whether every service runs and answers /readyz with 200."""
    for name in SERVICES:
        record = processes.load_record(stack.state_dir, name)
        if record is None or not processes.is_alive(record) or record.ready_url is None:
            return False
        if not processes.http_ok(record.ready_url, timeout=3.0):
            return False
    return True


@dataclass
class Supervisor:
    """Restarts a service process that exited (not one the harness is holding down), with
    back-off, as a kubelet would; remembers every such exit. While the broker or the
    database is down it only watches: a process started then would exit at once."""

    stack: Stack
    say: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)
    exits: list[Exit] = field(default_factory=list)
    held: set[str] = field(default_factory=set)
    fault: str = ""
    infra_down: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _seen: set[int] = field(default_factory=set)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch in a background thread."""
        self._thread = threading.Thread(target=self._run, name="chaos-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def now(self) -> float:
        """Seconds since the harness started."""
        return time.monotonic() - self.started

    def _run(self) -> None:
        backoff: dict[str, float] = {}
        next_try: dict[str, float] = {}
        while not self._stop.wait(1.0):
            for name in SERVICES:
                record = processes.load_record(self.stack.state_dir, name)
                if name in self.held or (record is not None and processes.is_alive(record)):
                    continue
                if record is not None and record.pid not in self._seen:
                    self._seen.add(record.pid)
                    log = last_errors(self.stack, name)
                    self.exits.append(Exit(name, record.pid, self.now(), self.fault, log))
                    self.say(f"  ! {name} (pid {record.pid}) exited during {self.fault or '-'}")
                if self.infra_down or time.monotonic() < next_try.get(name, 0.0):
                    continue
                try:
                    self.stack.start_service(name)
                    backoff.pop(name, None)
                    self.say(f"  ~ {name} restarted by the supervisor")
                except (StackError, processes.StartupError, OSError) as error:
                    delay = min(20.0, backoff.get(name, 1.0) * 2)
                    backoff[name] = delay
                    next_try[name] = time.monotonic() + delay
                    self.say(f"  ! {name} did not start: {str(error).splitlines()[0][:200]}")

    def wait_all_ready(self, timeout: float) -> float | None:
        """Seconds until every service is ready (restarting what died), or None on timeout."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if services_ready(self.stack):
                return time.monotonic() - started
            time.sleep(0.5)
        return None


@dataclass
class Injector:
    """Applies planned faults in order, each restored before the next begins."""

    stack: Stack
    supervisor: Supervisor
    say: Callable[[str], None]
    applied: list[Applied] = field(default_factory=list)
    # Set when the run fails elsewhere: no further fault starts (the one under way is still
    # restored), so nothing is broken after the run has ended.
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self, faults: Sequence[Fault], t0: float, ready_timeout: float = 120.0) -> None:
        """Apply every fault at its time after ``t0`` (monotonic); blocking; returns early
        once ``stopped`` is set."""
        for fault in faults:
            delay = t0 + fault.at - time.monotonic()
            if self.stopped.wait(max(0.0, delay)):
                return
            self.applied.append(self.apply(fault, t0, ready_timeout))

    def apply(self, fault: Fault, t0: float, ready_timeout: float) -> Applied:
        """One fault: break, wait ``down``, restore, wait until every service is ready."""
        sup = self.supervisor
        done = Applied(fault, time.monotonic() - t0)
        sup.fault = str(fault)
        self.say(f"  * {fault}")
        try:
            if fault.kind is Kind.SERVICE_KILL:
                sup.held.add(fault.target)
                try:
                    self.stack.stop_service(fault.target, sig=signal.SIGKILL)
                    time.sleep(fault.down)
                    self.stack.start_service(fault.target)
                finally:
                    sup.held.discard(fault.target)
            else:
                sup.infra_down = True
                try:
                    if not self.stack.crash_infra(fault.target):
                        # An external broker or database (KAFKA_BOOTSTRAP_SERVERS /
                        # DATABASE_URL set): nothing local to crash.
                        done.error = f"skipped: no local {fault.target} runs"
                        self.say(f"  ! {done.error}")
                        return done
                    time.sleep(fault.down)
                    self.stack.infra()
                finally:
                    sup.infra_down = False
            done.restored = time.monotonic() - t0
            ready = sup.wait_all_ready(ready_timeout)
            if ready is None:
                done.error = f"not every service ready {ready_timeout:.0f}s after the restore"
                self.say(f"  ! {done.error}")
            else:
                done.all_ready = ready
        except (StackError, processes.StartupError, RuntimeError, OSError) as error:
            done.error = str(error).splitlines()[0][:300]
            self.say(f"  ! {fault}: {done.error}")
        finally:
            sup.fault = ""
        return done
