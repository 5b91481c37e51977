"""The local stack as data (infrastructure, sandboxes, services) and its orchestration."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nordflow_local import processes
from nordflow_local._net import LOOPBACK, free_port, port_is_free
from nordflow_local.kafka import ensure_topics, kafka_ready, start_kafka
from nordflow_local.paths import default_state_dir, find_repo_root
from nordflow_local.postgres import pg_ctl_stop, postgres_ready, start_postgres
from nordflow_local.processes import ProcessStatus, StartupError

__all__ = [
    "COMMON_SERVICE_ENV",
    "SANDBOXES",
    "SERVICES",
    "SERVICE_ENV",
    "SandboxSpec",
    "Stack",
    "StackError",
    "replica_name",
    "service_of",
    "stack_topics",
]

# The services, started as `<venv>/bin/<name> run`; each has GET /readyz.
SERVICES: tuple[str, ...] = (
    "erp-poller",
    "mapper",
    "factoring-gateway",
    "distribution-router",
    "ledger-closer",
    "control-panel",
)

# Extra environment per service, on top of the common variables; like COMMON_SERVICE_ENV,
# a variable already set in the caller's environment wins.
SERVICE_ENV: dict[str, dict[str, str]] = {
    # Locally the 24-48 h closing delay would hide the journey's last step.
    "ledger-closer": {"CLOSING_DELAY_SECONDS": "0", "ALLOW_INTERNAL_URLS": "true"},
    # Hand files over quickly and read settlement files every few seconds (production: a
    # backoff from 5 s, hourly settlements), so the demo's closing follows at once.
    "factoring-gateway": {
        "UPLOAD_RETRY_INITIAL_SECONDS": "1",
        "RECEIPT_POLL_SECONDS": "0.2",
        "SETTLEMENT_POLL_SECONDS": "5",
        "ALLOW_INTERNAL_URLS": "true",  # the factor sandbox listens on loopback
    },
    # Poll every few seconds so a hand-made invoice shows up quickly (production: 30 s); the
    # sandboxes are on loopback, which the tenant API refuses in production.
    "erp-poller": {"POLL_INTERVAL_SECONDS": "3", "ALLOW_INTERNAL_URLS": "true"},
    # The panel is served over plain HTTP on loopback: its session cookie cannot be Secure.
    "control-panel": {"SESSION_COOKIE_SECURE": "false"},
}

# The services that seal (mapper) or open (the others) consumers' personal numbers.
PERSONAL_DATA_SERVICES = frozenset({"mapper", "distribution-router", "factoring-gateway"})

# Another service's URL a service is given (it links to that service's API): service →
# (variable, the other service).
SERVICE_LINKS: dict[str, tuple[tuple[str, str], ...]] = {
    "control-panel": (("DISTRIBUTION_ROUTER_URL", "distribution-router"),),
}

# Defaults for every service; a variable already set in the caller's environment wins.
# Spans are still created and propagated, just not exported (no collector runs locally).
COMMON_SERVICE_ENV: dict[str, str] = {
    "LOG_LEVEL": "INFO",
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


@dataclass(frozen=True)
class SandboxSpec:
    """A partner sandbox: `nordflow-sandbox <partner> --host --port [--token] [flags]`.

    Values in `flags` and `service_env` are templates: `{url}` and `{token}` of this
    sandbox, `{host}`, `{port_<name>}` for each of its `extra_ports` (a second listener,
    such as SMTP), `{files}` (its own directory in the state dir, for files it writes
    for clients, such as a CA certificate), and `{url_<partner>}` of a sandbox started
    before it.
    `service_env` gives a service (first item) an env variable (second) with a value;
    `env_facts` adds `<prefix>_<NAME>` lines (such as credentials) to the env file.
    Each extra port also appears in the env file as `<prefix>_<NAME>_PORT`.
    """

    partner: str
    ready_path: str = "/sandbox/healthz"
    uses_token: bool = True
    flags: tuple[str, ...] = ()
    extra_ports: tuple[str, ...] = ()
    service_env: tuple[tuple[str, str, str], ...] = ()
    env_facts: tuple[tuple[str, str], ...] = ()

    @property
    def process_name(self) -> str:
        return f"sandbox-{self.partner}"

    @property
    def env_prefix(self) -> str:
        return f"SANDBOX_{self.partner.upper().replace('-', '_')}"

    def port_name(self, extra: str) -> str:
        """The key of an extra port in the stack's port table."""
        return f"{self.process_name}:{extra}"

    def render(self, template: str, state: Mapping[str, Any]) -> str:
        """A flag or env value with this sandbox's (and earlier sandboxes') facts filled in."""
        ports: Mapping[str, int] = state.get("ports", {})
        facts = {"host": LOOPBACK, "token": state.get("tokens", {}).get(self.partner, "")}
        if "state_dir" in state:
            facts["files"] = str(Path(state["state_dir"]) / "sandboxes" / self.partner)
        if self.process_name in ports:
            facts["url"] = f"http://{LOOPBACK}:{ports[self.process_name]}"
        for extra in self.extra_ports:
            if self.port_name(extra) in ports:
                facts[f"port_{extra}"] = str(ports[self.port_name(extra)])
        for other in SANDBOXES:
            if other.process_name in ports:
                key = "url_" + other.partner.replace("-", "_")
                facts[key] = f"http://{LOOPBACK}:{ports[other.process_name]}"
        return template.format(**facts)


SANDBOXES: tuple[SandboxSpec, ...] = (
    SandboxSpec("fortnox"),
    # A company whose OAuth client is in the env file; its rotating refresh tokens are
    # issued by the admin route `POST /sandbox/companies/{id}/refresh-tokens`, and
    # provisioning creates a company per tenant.
    SandboxSpec(
        "visma-eaccounting",
        uses_token=False,
        flags=(
            "--company=Sandbox AB",
            "--client-id=nordflow-local",
            "--client-secret={token}",
        ),
        env_facts=(
            ("CLIENT_ID", "nordflow-local"),
            ("CLIENT_SECRET", "{token}"),
            ("TOKEN_URL", "{url}/connect/token"),
        ),
    ),
    SandboxSpec("visma-net"),
    SandboxSpec("sirvoy"),
    # Tripletex (Norway): a start company whose consumer and employee tokens are in the env
    # file; provisioning creates a company per Norwegian tenant (`POST /sandbox/companies`).
    SandboxSpec(
        "tripletex",
        uses_token=False,
        flags=(
            "--company=Sandbox AS",
            "--employee-token={token}",
            "--consumer-token=consumer-{token}",
        ),
        env_facts=(("EMPLOYEE_TOKEN", "{token}"), ("CONSUMER_TOKEN", "consumer-{token}")),
    ),
    # The PEPPOL SMP: distribution-router asks it who can receive e-invoices.
    SandboxSpec(
        "smp", uses_token=False, service_env=(("distribution-router", "SMP_URL", "{url}"),)
    ),
    # The delivery partners; the access point checks receivers against the SMP above.
    SandboxSpec(
        "peppol-ap",
        flags=("--smp-url={url_smp}",),
        service_env=(
            ("distribution-router", "PEPPOL_AP_URL", "{url}/api/v1"),
            ("distribution-router", "PEPPOL_AP_TOKEN", "{token}"),
        ),
    ),
    SandboxSpec(
        "print-post",
        service_env=(
            ("distribution-router", "PRINT_POST_URL", "{url}/api/v1"),
            ("distribution-router", "PRINT_POST_TOKEN", "{token}"),
        ),
    ),
    SandboxSpec(
        "b2c-bank",
        service_env=(
            ("distribution-router", "B2C_BANK_URL", "{url}/api/v1"),
            ("distribution-router", "B2C_BANK_TOKEN", "{token}"),
        ),
    ),
    # The factor: files by SFTP (second port) and an HTTPS API (third port, a certificate of
    # the CA it makes at start, written with its SSH host key into its files directory);
    # the HTTP port serves the admin API. Each provisioned tenant gets its own client
    # account; the one made at start (login `nordflow`, password the token) is for trying.
    SandboxSpec(
        "factor",
        extra_ports=("sftp", "https"),
        flags=(
            "--sftp-port={port_sftp}",
            "--https-port={port_https}",
            "--trust-dir={files}",
            "--data-dir={files}/data",
            "--sftp-username=nordflow",
        ),
        service_env=(("factoring-gateway", "FACTOR_CA_FILE", "{files}/ca.pem"),),
        env_facts=(
            ("API_URL", "https://{host}:{port_https}/api/v1"),
            ("CA_FILE", "{files}/ca.pem"),
            ("SFTP_HOST", "{host}"),
            ("SFTP_HOST_KEY_FILE", "{files}/sftp_host_key.pub"),
            ("SFTP_USERNAME", "nordflow"),
            ("SFTP_PASSWORD", "{token}"),
        ),
    ),
    # SMTP on its own port; the HTTP port serves the inspection API.
    SandboxSpec(
        "smtp",
        uses_token=False,
        extra_ports=("smtp",),
        flags=("--smtp-port={port_smtp}",),
        service_env=(
            ("distribution-router", "SMTP_HOST", "{host}"),
            ("distribution-router", "SMTP_PORT", "{port_smtp}"),
            ("distribution-router", "SMTP_STARTTLS", "false"),
            ("distribution-router", "SMTP_FROM_ADDRESS", "faktura@nordflow.localhost"),
        ),
    ),
)


def replica_name(service: str, index: int) -> str:
    """The process name of a service's replica: the service itself for 1, `<service>.<n>`
    for the others (each with its own HTTP port, in the same consumer group)."""
    if index < 1:
        raise ValueError(f"replica numbers start at 1, got {index}")
    return service if index == 1 else f"{service}.{index}"


def service_of(name: str) -> str:
    """The service a process name belongs to (`mapper.2` → `mapper`); other names unchanged."""
    base, _, index = name.rpartition(".")
    return base if base in SERVICES and index.isdigit() else name


KAFKA = "kafka"
POSTGRES = "postgres"
_STACK_FILE = "stack.json"
_ENV_FILE = "env"


class StackError(RuntimeError):
    """The stack could not be brought to the requested state."""


def stack_topics() -> list[tuple[str, int]]:
    """Every topic of the system as (name, partitions), from `nordflow_schemas.topics`."""
    from nordflow_schemas.topics import TOPICS

    return [(topic.name, topic.partitions) for topic in TOPICS]


def compacted_topics() -> list[str]:
    """The topics that keep the newest record per key (`cleanup.policy=compact`)."""
    from nordflow_schemas.topics import TOPICS

    return [topic.name for topic in TOPICS if topic.compacted]


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _url_env_name(service: str) -> str:
    return service.upper().replace("-", "_") + "_URL"


def _console_script(name: str) -> Path:
    candidates = [Path(sys.executable).parent / name, find_repo_root() / ".venv" / "bin" / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise StackError(f"console script {name!r} not found in {candidates[0].parent}; run `uv sync`")


class Stack:
    """The local stack kept in one state directory (default `<repo>/.local`).

    Layout: `env` (KEY=VALUE for clients), `stack.json` (ports, keys), `pids/`, `logs/`,
    `data/kafka`, `data/postgres`.
    """

    def __init__(
        self,
        state_dir: Path | None = None,
        *,
        progress: Callable[[str], None] | None = _stderr,
        timeout: float = 90.0,
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.timeout = timeout
        self._progress = progress

    # -- paths and persisted state -------------------------------------------------------

    @property
    def env_file(self) -> Path:
        return self.state_dir / _ENV_FILE

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    def log_path(self, name: str) -> Path:
        """The log of a component (`kafka`, `postgres`, `sandbox-fortnox`, a service)."""
        return processes.log_path(self.state_dir, name)

    def _say(self, name: str, message: str) -> None:
        if self._progress is not None:
            self._progress(f"{name:<22} {message}")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Postgres runs as another user when we are root and must traverse this directory.
        with contextlib.suppress(PermissionError):
            self.state_dir.chmod(self.state_dir.stat().st_mode | 0o111)
        with (self.state_dir / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(
                (self.state_dir / _STACK_FILE).read_text(encoding="utf-8")
            )
        except FileNotFoundError:
            loaded = {}
        if "encryption_key" not in loaded:
            from cryptography.fernet import Fernet

            # Kept across down/up: data encrypted with it stays in data/postgres.
            loaded["encryption_key"] = Fernet.generate_key().decode("ascii")
        if "personal_data_key" not in loaded:
            from cryptography.fernet import Fernet

            # The mapper seals consumers' personal numbers with it; distribution-router and
            # factoring-gateway open them (decision 0010). Kept like the encryption key.
            loaded["personal_data_key"] = Fernet.generate_key().decode("ascii")
        loaded.setdefault("tokens", {})
        loaded.setdefault("ports", {})
        loaded["state_dir"] = str(self.state_dir)
        for sandbox in SANDBOXES:
            loaded["tokens"].setdefault(sandbox.partner, secrets.token_urlsafe(24))
        return loaded

    def _save(self, state: Mapping[str, Any]) -> None:
        self._write_private(self.state_dir / _STACK_FILE, json.dumps(state, indent=2) + "\n")

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        tmp.replace(path)

    # -- infrastructure ------------------------------------------------------------------

    def _up_infra(self, state: dict[str, Any]) -> None:
        external_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        external_db = os.environ.get("DATABASE_URL")
        kafka_handle = None
        kafka_started = 0.0
        kafka_reused = False
        if external_kafka:
            state["kafka_bootstrap"] = external_kafka
            state["external_kafka"] = True
            self._say(KAFKA, f"using KAFKA_BOOTSTRAP_SERVERS={external_kafka}")
            if not kafka_ready(external_kafka, timeout=10.0):
                raise StackError(
                    f"KAFKA_BOOTSTRAP_SERVERS is set but no broker answers: {external_kafka} "
                    "(unset it to start a local broker)"
                )
        else:
            state["external_kafka"] = False
            running = processes.load_record(self.state_dir, KAFKA)
            kafka_reused = running is not None and processes.is_alive(running)
            if not kafka_reused:
                self._say(KAFKA, "starting…")
            kafka_started = time.monotonic()
            try:
                kafka_handle = start_kafka(self.data_dir / KAFKA, state_dir=self.state_dir)
            except (StartupError, RuntimeError) as error:
                raise StackError(str(error)) from error
            state["kafka_bootstrap"] = kafka_handle.bootstrap

        if external_db:
            state["database_url"] = external_db
            state["external_database"] = True
            self._say(POSTGRES, "using DATABASE_URL from the environment")
            if not postgres_ready(external_db, timeout=10.0):
                raise StackError(
                    f"DATABASE_URL is set but the database does not answer: {external_db} "
                    "(unset it to start a local server)"
                )
        else:
            state["external_database"] = False
            running = processes.load_record(self.state_dir, POSTGRES)
            reused = running is not None and processes.is_alive(running)
            if not reused:
                self._say(POSTGRES, "starting…")
            started = time.monotonic()
            try:
                pg = start_postgres(
                    self.data_dir / POSTGRES, state_dir=self.state_dir, timeout=self.timeout
                )
            except (StartupError, RuntimeError) as error:
                raise StackError(str(error)) from error
            state["database_url"] = pg.url
            elapsed = time.monotonic() - started
            self._say(POSTGRES, f"{'running' if reused else 'ready'} in {elapsed:.1f} s ({pg.url})")

        if kafka_handle is not None:
            try:
                kafka_handle.wait_ready(timeout=self.timeout)
            except StartupError as error:
                raise StackError(str(error)) from error
            elapsed = time.monotonic() - kafka_started
            how = "running" if kafka_reused else "ready"
            self._say(KAFKA, f"{how} in {elapsed:.1f} s ({kafka_handle.bootstrap})")

        started = time.monotonic()
        topics = stack_topics()
        try:
            created = ensure_topics(
                state["kafka_bootstrap"],
                topics,
                replication_factor=None if state["external_kafka"] else 1,
                compacted=compacted_topics(),
            )
        except Exception as error:
            raise StackError(f"creating topics failed: {error}") from error
        self._say(
            "topics",
            f"{len(topics)} present, {len(created)} created in {time.monotonic() - started:.1f} s",
        )

    # -- sandboxes and services ----------------------------------------------------------

    def _port_for(self, state: dict[str, Any], name: str) -> int:
        saved = state["ports"].get(name)
        taken = {p for n, p in state["ports"].items() if n != name}
        if isinstance(saved, int) and port_is_free(saved):
            return saved
        port = free_port(frozenset(taken))
        state["ports"][name] = port
        return port

    def _service_env(
        self, state: Mapping[str, Any], name: str, port: int
    ) -> tuple[dict[str, str], list[str]]:
        """The service's full environment, and the names of the variables the stack set."""
        specific = {
            "KAFKA_BOOTSTRAP_SERVERS": state["kafka_bootstrap"],
            "DATABASE_URL": state["database_url"],
            "HTTP_HOST": LOOPBACK,
            "HTTP_PORT": str(port),
            "OTEL_SERVICE_NAME": service_of(name),
            "ENCRYPTION_KEY": state["encryption_key"],
        }
        if service_of(name) in PERSONAL_DATA_SERVICES:
            specific["PERSONAL_DATA_KEY"] = state["personal_data_key"]
        for sandbox in SANDBOXES:
            for service, variable, template in sandbox.service_env:
                if service == service_of(name) and sandbox.process_name in state.get("ports", {}):
                    specific[variable] = sandbox.render(template, state)
        for variable, other in SERVICE_LINKS.get(service_of(name), ()):
            if other in state.get("ports", {}):
                specific[variable] = f"http://{LOOPBACK}:{state['ports'][other]}"
        local = {**COMMON_SERVICE_ENV, **SERVICE_ENV.get(service_of(name), {})}
        defaults = {k: v for k, v in local.items() if k not in os.environ}
        return {**os.environ, **defaults, **specific}, [*defaults, *specific]

    def _spawn(self, state: dict[str, Any], name: str) -> processes.ProcessRecord:
        """Start a sandbox or service (not waiting); reuse it when it already runs."""
        record = processes.load_record(self.state_dir, name)
        if record is not None and processes.is_alive(record):
            return record
        if record is not None:
            processes.stop(self.state_dir, name, timeout=5.0)  # clear leftovers of a dead one
        port = self._port_for(state, name)
        base = f"http://{LOOPBACK}:{port}"
        sandbox = next((s for s in SANDBOXES if s.process_name == name), None)
        if sandbox is not None:
            command = [
                str(_console_script("nordflow-sandbox")),
                sandbox.partner,
                "--host",
                LOOPBACK,
                "--port",
                str(port),
            ]
            if sandbox.uses_token:
                # One argument: a random token may start with "-" and read as an option.
                command.append(f"--token={state['tokens'][sandbox.partner]}")
            for extra in sandbox.extra_ports:
                self._port_for(state, sandbox.port_name(extra))
            command += [sandbox.render(flag, state) for flag in sandbox.flags]
            return processes.spawn(
                self.state_dir,
                name,
                command,
                kind="sandbox",
                port=port,
                url=base,
                ready_url=base + sandbox.ready_path,
                cwd=self.state_dir,
                secrets=[state["tokens"][sandbox.partner]],
            )
        env, keys = self._service_env(state, name, port)
        return processes.spawn(
            self.state_dir,
            name,
            [str(_console_script(service_of(name))), "run"],
            kind="service",
            env=env,
            env_keys=keys,
            port=port,
            url=base,
            ready_url=base + "/readyz",
            cwd=self.state_dir,
        )

    def _start_many(self, state: dict[str, Any], names: list[str]) -> None:
        started = time.monotonic()
        spawned: list[tuple[processes.ProcessRecord, bool]] = []
        for name in names:
            before = processes.load_record(self.state_dir, name)
            reused = before is not None and processes.is_alive(before)
            if not reused:
                self._say(name, "starting…")
            spawned.append((self._spawn(state, name), reused))
        self._save(state)
        for record, reused in spawned:
            ready_url = record.ready_url
            assert ready_url is not None
            try:
                processes.wait_until(
                    functools.partial(processes.http_ok, ready_url),
                    record=record,
                    what=f"ready (GET {ready_url} = 200)",
                    timeout=self.timeout,
                    interval=0.2,
                )
            except StartupError as error:
                raise StackError(
                    f"{error}\n  (what started is left running for inspection; "
                    "`nordflow-local down` stops it)"
                ) from error
            if reused:
                self._say(record.name, f"running ({record.url})")
            else:
                elapsed = time.monotonic() - started
                self._say(record.name, f"ready in {elapsed:.1f} s ({record.url})")

    def _running_env(self, state: Mapping[str, Any]) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": state["kafka_bootstrap"],
            "DATABASE_URL": state["database_url"],
            "ENCRYPTION_KEY": state["encryption_key"],
        }
        for sandbox in SANDBOXES:
            record = processes.load_record(self.state_dir, sandbox.process_name)
            if record is not None and record.url is not None and processes.is_alive(record):
                env[f"{sandbox.env_prefix}_URL"] = record.url
                if sandbox.uses_token:
                    env[f"{sandbox.env_prefix}_TOKEN"] = state["tokens"][sandbox.partner]
                for name, template in sandbox.env_facts:
                    env[f"{sandbox.env_prefix}_{name}"] = sandbox.render(template, state)
                for extra in sandbox.extra_ports:
                    port = state["ports"].get(sandbox.port_name(extra))
                    if port is not None:
                        env[f"{sandbox.env_prefix}_{extra.upper()}_PORT"] = str(port)
        for service in SERVICES:
            record = processes.load_record(self.state_dir, service)
            if record is not None and record.url is not None and processes.is_alive(record):
                env[_url_env_name(service)] = record.url
        return env

    def _write_env(self, env: Mapping[str, str]) -> None:
        lines = ["# Written by nordflow-local: the running local stack, one variable a line."]
        lines += [f"{key}={value}" for key, value in env.items()]
        self._write_private(self.env_file, "\n".join(lines) + "\n")

    # -- public API ----------------------------------------------------------------------

    def up(self, services: bool = True, sandboxes: bool = True) -> dict[str, str]:
        """Bring the stack up (idempotent: reuse what runs, restart what died); returns the env."""
        with self._locked():
            state = self._load()
            self._save(state)
            self._up_infra(state)
            self._save(state)
            if sandboxes:
                self._start_many(state, [s.process_name for s in SANDBOXES])
            if services:
                self._start_many(state, list(SERVICES))
            env = self._running_env(state)
            self._write_env(env)
            return env

    def infra(self) -> dict[str, str]:
        """Only Kafka and PostgreSQL (with topics); returns the env."""
        return self.up(services=False, sandboxes=False)

    def down(self) -> list[str]:
        """Stop every process of the stack (services first); keeps data. Returns names stopped."""
        with self._locked():
            stopped = processes.stop_all(self.state_dir)
            self.env_file.unlink(missing_ok=True)
            return stopped

    def status(self) -> list[ProcessStatus]:
        """Every recorded process with liveness and readiness."""
        result = []
        for entry in processes.status(self.state_dir):
            ready = entry.ready
            if entry.alive and entry.kind == KAFKA and entry.url is not None:
                ready = kafka_ready(entry.url)
            elif entry.alive and entry.kind == POSTGRES and entry.url is not None:
                ready = postgres_ready(entry.url)
            elif not entry.alive and entry.kind in (KAFKA, POSTGRES):
                ready = False
            result.append(
                ProcessStatus(entry.name, entry.kind, entry.pid, entry.alive, entry.url, ready)
            )
        return result

    def env(self) -> dict[str, str]:
        """The env file of the running stack as a dict."""
        try:
            text = self.env_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StackError(
                f"no {self.env_file}: the stack is not up (run `nordflow-local up`)"
            ) from None
        env = {}
        for line in text.splitlines():
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key] = value
        return env

    def _known(self, name: str) -> None:
        names = [*SERVICES, *(s.process_name for s in SANDBOXES)]
        if service_of(name) not in names:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(names)}")

    def start_service(self, name: str) -> str:
        """Start a service or sandbox of a stack that is up and wait until ready; its URL."""
        self._known(name)
        with self._locked():
            state = self._load()
            if "kafka_bootstrap" not in state:
                raise StackError("the stack is not up (run `nordflow-local up` first)")
            self._start_many(state, [name])
            env = self._running_env(state)
            self._write_env(env)
            record = processes.load_record(self.state_dir, name)
            if record is None or record.url is None:
                raise StackError(f"{name} is not recorded after starting")
            return record.url

    def stop_service(self, name: str, sig: int = signal.SIGKILL, timeout: float = 15.0) -> bool:
        """Stop a service or sandbox with `sig` (default SIGKILL: a crash); False if not running."""
        self._known(name)
        with self._locked():
            return processes.stop(self.state_dir, name, sig=sig, timeout=timeout)

    def crash_infra(self, name: str) -> bool:
        """Stop the local Kafka broker (SIGKILL) or PostgreSQL server (`pg_ctl stop -m
        immediate`: no shutdown checkpoint) at once, as a crash would; False if it was not
        running. `infra()` (or `up()`) starts it again on the same ports with its data."""
        if name not in (KAFKA, POSTGRES):
            raise ValueError(f"unknown infrastructure {name!r}; known: {KAFKA}, {POSTGRES}")
        with self._locked():
            record = processes.load_record(self.state_dir, name)
            if record is None or not processes.is_alive(record):
                return False
            if name == POSTGRES and record.data_dir is not None:
                pg_ctl_stop(Path(record.data_dir), run_as=record.run_as, mode="immediate")
            processes.stop(self.state_dir, name, sig=signal.SIGKILL, timeout=10.0)
            return True

    def scale_service(self, name: str, replicas: int) -> list[str]:
        """Run exactly `replicas` processes of a service (1 = the service alone; each other
        replica `<service>.<n>` gets its own HTTP port) and wait until each is ready; stops
        the replicas above that number. Returns the running replicas' URLs."""
        if name not in SERVICES:
            raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
        if replicas < 1:
            raise ValueError(f"a service runs at least one replica, got {replicas}")
        with self._locked():
            state = self._load()
            if "kafka_bootstrap" not in state:
                raise StackError("the stack is not up (run `nordflow-local up` first)")
            prefix = f"{name}."
            for running in processes.records(self.state_dir):
                index = running.name.removeprefix(prefix)
                if running.name.startswith(prefix) and index.isdigit() and int(index) > replicas:
                    processes.stop(self.state_dir, running.name)
            wanted = [replica_name(name, i) for i in range(1, replicas + 1)]
            self._start_many(state, wanted)
            self._write_env(self._running_env(state))
            urls = []
            for replica in wanted:
                record = processes.load_record(self.state_dir, replica)
                if record is None or record.url is None:
                    raise StackError(f"{replica} is not recorded after starting")
                urls.append(record.url)
            return urls

    def restart_service(self, name: str, sig: int = signal.SIGTERM) -> str:
        """Stop (with `sig`) and start again on the same port; returns its URL."""
        self.stop_service(name, sig=sig)
        return self.start_service(name)
