"""pytest fixtures: a real Kafka broker and PostgreSQL server started once per test session."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from nordflow_connectors import egress

from nordflow_local import processes
from nordflow_local._aio import run_sync
from nordflow_local.stack import Stack

__all__ = [
    "database_url",
    "fresh_database_url",
    "kafka_bootstrap",
    "nordflow_infra",
    "nordflow_stack",
    "with_database",
]


# Every partner sandbox of a test session listens on loopback: clients built without a
# transport of their own may reach it (the guard's own tests pass ``allow=False``).
egress.allow_internal(True)


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


_PREFIX = "nordflow-test-"
_OWNER = "owner"
_KEEP_MARKER = ".keep"


def _fail(stack: Stack, what: str, error: BaseException) -> None:
    (stack.state_dir / _KEEP_MARKER).touch()  # the logs stay for inspection
    pytest.fail(
        f"nordflow-local could not start {what} (state kept in {stack.state_dir}):\n{error}",
        pytrace=False,
    )


def _reap_abandoned_sessions() -> None:
    """Stop what earlier sessions left running when they died without teardown (kill -9)."""
    for state_dir in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            pid, ticks = (int(v) for v in (state_dir / _OWNER).read_text().split())
        except (OSError, ValueError):
            continue
        if processes.pid_alive(pid, ticks):
            continue
        with contextlib.suppress(Exception):
            processes.stop_all(state_dir, timeout=10.0)
        if not (state_dir / _KEEP_MARKER).exists():
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _nordflow_local_stack() -> Iterator[Stack]:
    """One stack per session in a fresh temporary state dir, stopped and removed at the end."""
    _reap_abandoned_sessions()
    # Not pytest's tmp_path: its 0700 parents would keep the PostgreSQL user (when run as
    # root) out of the data directory.
    state_dir = Path(tempfile.mkdtemp(prefix=_PREFIX))
    state_dir.chmod(0o755)
    pid = os.getpid()
    (state_dir / _OWNER).write_text(f"{pid} {processes.start_ticks(pid) or 0}\n")
    stack = Stack(state_dir)
    try:
        yield stack
    finally:
        stack.down()
        if not (state_dir / _KEEP_MARKER).exists():
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def nordflow_infra(_nordflow_local_stack: Stack) -> dict[str, str]:
    """KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL (and ENCRYPTION_KEY) of the session's infrastructure.

    Uses `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` from the environment when set; otherwise
    starts a local broker and server. Every topic of `nordflow_schemas.topics` exists.
    """
    try:
        return _nordflow_local_stack.infra()
    except Exception as error:
        _fail(_nordflow_local_stack, "Kafka and PostgreSQL", error)
        raise


@pytest.fixture(scope="session")
def kafka_bootstrap(nordflow_infra: dict[str, str]) -> str:
    """Bootstrap servers of a real Kafka broker (`host:port`) with every topic created."""
    return nordflow_infra["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def database_url(nordflow_infra: dict[str, str]) -> str:
    """URL of the session's shared database on a real PostgreSQL server."""
    return nordflow_infra["DATABASE_URL"]


@pytest.fixture(scope="session")
def nordflow_stack(_nordflow_local_stack: Stack) -> Stack:
    """The whole stack (infrastructure, sandboxes, services) up for end-to-end tests.

    `nordflow_stack.env()` gives the URLs; `stop_service` / `start_service` simulate crashes.
    """
    try:
        _nordflow_local_stack.up()
    except Exception as error:
        _fail(_nordflow_local_stack, "the stack", error)
        raise
    return _nordflow_local_stack


async def _create_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
def fresh_database_url(database_url: str) -> Iterator[str]:
    """URL of a new, empty database (`nf_<random>`) on the session's server, dropped after."""
    name = f"nf_{secrets.token_hex(6)}"
    run_sync(_create_database(database_url, name))
    try:
        yield with_database(database_url, name)
    finally:
        run_sync(_drop_database(database_url, name))
