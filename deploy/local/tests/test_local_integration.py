"""Integration tests: real Kafka and PostgreSQL started by nordflow_local, then stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from nordflow_local import processes
from nordflow_local import stack as stack_module
from nordflow_local._aio import run_sync
from nordflow_local.kafka import ensure_topics
from nordflow_local.stack import SANDBOXES, SERVICES, Stack

pytestmark = pytest.mark.integration

CLI = Path(sys.executable).parent / "nordflow-local"


def _live_processes_mentioning(path: Path) -> list[str]:
    """Command lines of live (non-zombie) processes whose arguments mention `path`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state not in ("Z", "X"):
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Under /tmp rather than tmp_path: the PostgreSQL user must traverse the parents.
    path = Path(tempfile.mkdtemp(prefix="nordflow-local-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run([str(CLI), "--state-dir", str(path), "down"], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _cli(state_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    result = subprocess.run(
        [str(CLI), "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def _parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")


async def _sql(url: str, *statements: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        result: object = None
        for statement in statements:
            result = await connection.fetchval(statement)
        return result
    finally:
        await connection.close()


async def _roundtrip(bootstrap: str, topic: str) -> bytes:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        value = uuid.uuid4().bytes
        await producer.send_and_wait(topic, value, key=b"invoice-1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=15_000)
        values = [record.value for records in batches.values() for record in records]
    finally:
        await consumer.stop()
    assert value in values
    return value


def test_cli_starts_infra_detached_survives_crashes_and_stops_everything(
    state_dir: Path,
) -> None:
    env = _parse_env(_cli(state_dir, "infra").stdout)
    bootstrap, database_url = env["KAFKA_BOOTSTRAP_SERVERS"], env["DATABASE_URL"]
    assert database_url.endswith("/nordflow")
    assert _parse_env((state_dir / "env").read_text()) == env
    assert _parse_env(_cli(state_dir, "env").stdout) == env

    # The CLI has exited; the broker and server run on, detached.
    ensure_topics(bootstrap, [("test.roundtrip", 3)])
    run_sync(_roundtrip(bootstrap, "test.roundtrip"))
    run_sync(_sql(database_url, "CREATE TABLE kept (id int)", "INSERT INTO kept VALUES (42)"))
    assert run_sync(_sql(database_url, "SELECT sum(id) FROM kept")) == 42

    status = _cli(state_dir, "status")
    assert "kafka" in status.stdout
    assert "postgres" in status.stdout
    assert "NO" not in status.stdout

    # Idempotent: a second `infra` reuses both processes.
    first = {r.name: r.pid for r in processes.records(state_dir)}
    assert _parse_env(_cli(state_dir, "infra").stdout) == env
    assert {r.name: r.pid for r in processes.records(state_dir)} == first

    # A crash: `infra` restarts what died on the same ports, with the data kept.
    for record in processes.records(state_dir):
        os.killpg(record.pgid, signal.SIGKILL)
    assert _cli(state_dir, "status", check=False).returncode == 1
    assert _parse_env(_cli(state_dir, "infra").stdout) == env
    assert {r.name: r.pid for r in processes.records(state_dir)} != first
    assert run_sync(_sql(database_url, "SELECT sum(id) FROM kept")) == 42
    run_sync(_roundtrip(bootstrap, "test.roundtrip"))

    pids = [r.pid for r in processes.records(state_dir)]
    assert "stopped: kafka, postgres" in _cli(state_dir, "down").stdout
    assert not (state_dir / "env").exists()
    assert not any(processes.pid_alive(pid) for pid in pids)
    assert _live_processes_mentioning(state_dir) == []
    assert _cli(state_dir, "status", check=False).returncode == 3
    assert "kafka.Kafka" in _cli(state_dir, "logs", "kafka").stdout


async def test_session_fixtures_give_a_real_broker_and_isolated_databases(
    kafka_bootstrap: str, database_url: str, fresh_database_url: str
) -> None:
    from nordflow_schemas.topics import TOPICS

    await _roundtrip(kafka_bootstrap, TOPICS[0].name)
    shared = await asyncpg.connect(database_url)
    fresh = await asyncpg.connect(fresh_database_url)
    try:
        assert await fresh.fetchval("SELECT current_database()") != await shared.fetchval(
            "SELECT current_database()"
        )
        await fresh.execute("CREATE TABLE only_here (id int)")
        assert await shared.fetchval("SELECT to_regclass('only_here')") is None
    finally:
        await fresh.close()
        await shared.close()


FAKE_COMPONENT = """\
#!{python}
'''Stands in for a service (`NAME run`) or a sandbox (`nordflow-sandbox PARTNER --port P`).'''
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

if sys.argv[1] == "run":
    port, path = int(os.environ["HTTP_PORT"]), "/readyz"
else:
    port, path = int(sys.argv[sys.argv.index("--port") + 1]), "/sandbox/healthz"

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"argv": sys.argv, "env": dict(os.environ)}}).encode()
        self.send_response(200 if self.path == path else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def test_stack_runs_services_and_sandboxes_on_an_existing_cluster(
    kafka_bootstrap: str,
    database_url: str,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    fake = tmp_path / "fake-component"
    fake.write_text(FAKE_COMPONENT.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setattr(stack_module, "_console_script", lambda name: fake)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("DATABASE_URL", database_url)
    lines: list[str] = []
    stack = Stack(state_dir, progress=lines.append, timeout=30)

    env = stack.up()
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == kafka_bootstrap
    assert env["DATABASE_URL"] == database_url
    expected = {
        "ENCRYPTION_KEY",
        "SANDBOX_FORTNOX_URL",
        "SANDBOX_FORTNOX_TOKEN",
        "ERP_POLLER_URL",
        "MAPPER_URL",
        "FACTORING_GATEWAY_URL",
        "DISTRIBUTION_ROUTER_URL",
        "LEDGER_CLOSER_URL",
    }
    assert expected <= set(env)
    assert stack.env() == env
    assert not any(r.kind in ("kafka", "postgres") for r in processes.records(state_dir))
    assert any(line.startswith("mapper") and "ready in" in line for line in lines)

    served = httpx.get(env["LEDGER_CLOSER_URL"] + "/readyz").json()["env"]
    assert served["OTEL_SERVICE_NAME"] == "ledger-closer"
    assert served["CLOSING_DELAY_SECONDS"] == "0"
    assert served["ENCRYPTION_KEY"] == env["ENCRYPTION_KEY"]
    assert served["HTTP_PORT"] == env["LEDGER_CLOSER_URL"].rsplit(":", 1)[1]
    sandbox_argv = httpx.get(env["SANDBOX_FORTNOX_URL"] + "/sandbox/healthz").json()["argv"]
    assert sandbox_argv[1:3] == ["fortnox", "--host"]
    assert f"--token={env['SANDBOX_FORTNOX_TOKEN']}" in sandbox_argv
    record_text = (state_dir / "pids" / "sandbox-fortnox.json").read_text()
    assert env["SANDBOX_FORTNOX_TOKEN"] not in record_text  # masked as ***

    pids = {r.name: r.pid for r in processes.records(state_dir)}
    assert set(pids) == {*SERVICES, *(s.process_name for s in SANDBOXES)}
    assert stack.up() == env  # idempotent
    assert {r.name: r.pid for r in processes.records(state_dir)} == pids

    mapper = _record(state_dir, "mapper")
    assert stack.stop_service("mapper")  # SIGKILL, as a crash
    assert not processes.is_alive(mapper)
    assert stack.start_service("mapper") == env["MAPPER_URL"]
    assert httpx.get(env["MAPPER_URL"] + "/readyz").status_code == 200
    assert stack.restart_service("ledger-closer") == env["LEDGER_CLOSER_URL"]
    assert _record(state_dir, "ledger-closer").pid != pids["ledger-closer"]

    assert all(row.alive and row.ready for row in stack.status())
    stack.down()
    assert _live_processes_mentioning(state_dir) == []
    assert processes.records(state_dir) == []


def _record(state_dir: Path, name: str) -> processes.ProcessRecord:
    record = processes.load_record(state_dir, name)
    assert record is not None
    return record
