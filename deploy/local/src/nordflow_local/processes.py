"""A small supervisor for detached background processes recorded in a state directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

__all__ = [
    "ProcessRecord",
    "ProcessStatus",
    "StartupError",
    "http_ok",
    "is_alive",
    "load_record",
    "log_path",
    "log_tail",
    "records",
    "register",
    "spawn",
    "status",
    "stop",
    "stop_all",
    "wait_until",
]

REDACTED = "***"


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


# Stopping order: what depends on the infrastructure goes first.
_STOP_TIERS: tuple[tuple[str, ...], ...] = (("service", "sandbox"), ("kafka", "postgres"))

# Popen objects of children started by this interpreter, so they can be reaped, and the
# exit codes of those reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_EXIT_CODES: dict[int, int] = {}


class StartupError(RuntimeError):
    """A component did not start or did not become ready in time."""


@dataclass(frozen=True)
class ProcessRecord:
    """What the supervisor knows about one background process (persisted as JSON)."""

    name: str
    kind: str
    pid: int
    pgid: int
    start_ticks: int | None
    command: list[str]
    log: str
    env_keys: list[str] = field(default_factory=list)
    port: int | None = None
    url: str | None = None
    ready_url: str | None = None
    data_dir: str | None = None
    run_as: str | None = None
    started_at: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class ProcessStatus:
    """A process as `status` reports it; `ready` is None when it has no readiness URL."""

    name: str
    kind: str
    pid: int
    alive: bool
    url: str | None
    ready: bool | None


def _pids_dir(state_dir: Path) -> Path:
    return state_dir / "pids"


def log_path(state_dir: Path, name: str) -> Path:
    """`<state>/logs/<name>.log`: stdout and stderr of the named process."""
    return state_dir / "logs" / f"{name}.log"


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgrp, starttime) of a process from /proc, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks after boot), to tell it from a later reuse of the pid."""
    stat = _proc_stat(pid) if _has_proc() else None
    return stat[2] if stat is not None else None


def _has_proc() -> bool:
    return Path("/proc/self/stat").exists()


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None:
        code = child.poll()
        if code is not None:
            _EXIT_CODES[pid] = code
            del _CHILDREN[pid]


def pid_alive(pid: int, start_ticks: int | None = None) -> bool:
    """Whether `pid` runs (zombies do not count), and started at `start_ticks` when given."""
    _reap(pid)
    if _has_proc():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return False
        return start_ticks is None or stat[2] == start_ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alive(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (a reused pid does not count)."""
    return pid_alive(record.pid, record.start_ticks)


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes in a process group."""
    if not _has_proc():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def _record_file(state_dir: Path, name: str) -> Path:
    return _pids_dir(state_dir) / f"{name}.json"


def register(state_dir: Path, record: ProcessRecord) -> None:
    """Persist a record: `<state>/pids/<name>.pid` and `<state>/pids/<name>.json`."""
    pids = _pids_dir(state_dir)
    pids.mkdir(parents=True, exist_ok=True)
    (pids / f"{record.name}.pid").write_text(f"{record.pid}\n", encoding="utf-8")
    tmp = pids / f".{record.name}.json.tmp"
    tmp.write_text(record.to_json(), encoding="utf-8")
    tmp.replace(_record_file(state_dir, record.name))


def _forget(state_dir: Path, name: str) -> None:
    for suffix in (".pid", ".json"):
        (_pids_dir(state_dir) / f"{name}{suffix}").unlink(missing_ok=True)


def load_record(state_dir: Path, name: str) -> ProcessRecord | None:
    """The record of the named process, or None when none is kept."""
    path = _record_file(state_dir, name)
    try:
        return ProcessRecord.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def records(state_dir: Path) -> list[ProcessRecord]:
    """Every recorded process, in the order they were started."""
    directory = _pids_dir(state_dir)
    if not directory.is_dir():
        return []
    found = [
        ProcessRecord.from_json(path.read_text(encoding="utf-8"))
        for path in directory.glob("*.json")
    ]
    return sorted(found, key=lambda r: (r.started_at, r.name))


def now() -> str:
    """The current UTC time in ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def make_record(
    *,
    name: str,
    kind: str,
    pid: int,
    command: Sequence[str],
    log: Path,
    env_keys: Iterable[str] = (),
    port: int | None = None,
    url: str | None = None,
    ready_url: str | None = None,
    data_dir: Path | None = None,
    run_as: str | None = None,
) -> ProcessRecord:
    """A record for a running pid, with its process group and start time read from /proc."""
    stat = _proc_stat(pid) if _has_proc() else None
    pgid = stat[1] if stat is not None else os.getpgid(pid)
    return ProcessRecord(
        name=name,
        kind=kind,
        pid=pid,
        pgid=pgid,
        start_ticks=stat[2] if stat is not None else None,
        command=list(command),
        log=str(log),
        env_keys=sorted(env_keys),
        port=port,
        url=url,
        ready_url=ready_url,
        data_dir=str(data_dir) if data_dir is not None else None,
        run_as=run_as,
        started_at=now(),
    )


def spawn(
    state_dir: Path,
    name: str,
    command: Sequence[str],
    *,
    kind: str,
    env: Mapping[str, str] | None = None,
    env_keys: Iterable[str] = (),
    port: int | None = None,
    url: str | None = None,
    ready_url: str | None = None,
    data_dir: Path | None = None,
    cwd: Path | None = None,
    secrets: Iterable[str] = (),
) -> ProcessRecord:
    """Start `command` detached in its own session, output appended to its log, and record it.

    Every occurrence of one of `secrets` in an argument is shown as `***` in the log and the
    record (also inside `--option=secret`).
    """
    hidden = [s for s in secrets if s]
    shown = [_redact(arg, hidden) for arg in command]
    log = log_path(state_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"=== {now()} starting: {' '.join(shown)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[child.pid] = child
    _EXIT_CODES.pop(child.pid, None)
    record = make_record(
        name=name,
        kind=kind,
        pid=child.pid,
        command=shown,
        log=log,
        env_keys=env_keys,
        port=port,
        url=url,
        ready_url=ready_url,
        data_dir=data_dir,
    )
    register(state_dir, record)
    return record


def _exit_code(pid: int) -> int | None:
    _reap(pid)
    return _EXIT_CODES.get(pid)


def log_tail(path: Path | str, lines: int = 40) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def describe_failure(record: ProcessRecord, problem: str, lines: int = 40) -> str:
    """A failure message ending with the last lines of the process log."""
    tail = log_tail(record.log, lines) or "(the log is empty)"
    indented = "\n".join(f"    {line}" for line in tail.splitlines())
    return f"{record.name}: {problem}\n  last {lines} lines of {record.log}:\n{indented}"


def wait_until(
    check: Callable[[], bool],
    *,
    record: ProcessRecord,
    what: str,
    timeout: float,
    interval: float = 0.1,
) -> float:
    """Poll `check` until it holds; fail early if the process dies. Returns seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if check():
            return time.monotonic() - started
        if not is_alive(record):
            code = _exit_code(record.pid)
            how = f"exited with code {code}" if code is not None else "is no longer running"
            raise StartupError(describe_failure(record, f"{how} before {what}"))
        if time.monotonic() >= deadline:
            raise StartupError(describe_failure(record, f"not {what} after {timeout:.0f} s"))
        time.sleep(interval)


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether `GET url` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _signal_group(record: ProcessRecord, sig: int) -> None:
    leader = _proc_stat(record.pid) if _has_proc() else None
    if leader is not None and record.start_ticks is not None and leader[2] != record.start_ticks:
        return  # the pid (and so the group id) now belongs to an unrelated process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(record.pgid, sig)


def _gone(record: ProcessRecord) -> bool:
    _reap(record.pid)
    return not is_alive(record) and not group_members(record.pgid)


def _pg_ctl_stop(record: ProcessRecord, timeout: float) -> None:
    from nordflow_local.postgres import pg_ctl_stop

    if record.data_dir is not None and is_alive(record):
        pg_ctl_stop(Path(record.data_dir), run_as=record.run_as, timeout=timeout)


def _terminate(recs: Sequence[ProcessRecord], sig: int, timeout: float) -> list[ProcessRecord]:
    """Signal every group, wait up to `timeout`, SIGKILL the rest; returns what survived."""
    for record in recs:
        if record.kind == "postgres" and sig == signal.SIGTERM:
            _pg_ctl_stop(record, timeout)
        _signal_group(record, sig)
    deadline = time.monotonic() + timeout
    pending = [r for r in recs if not _gone(r)]
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [r for r in pending if not _gone(r)]
    for record in pending:
        _signal_group(record, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [r for r in pending if not _gone(r)]
    return pending


def stop(state_dir: Path, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
    """Stop the named process group (`sig`, then SIGKILL after `timeout`); False if none ran."""
    record = load_record(state_dir, name)
    if record is None:
        return False
    was_alive = is_alive(record)
    survivors = _terminate([record], sig, timeout)
    if survivors:
        raise RuntimeError(f"{name} (pid {record.pid}) survived SIGKILL")
    _forget(state_dir, name)
    return was_alive


def stop_all(state_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop every recorded process, services before infrastructure; returns the names stopped."""
    stopped: list[str] = []
    known = records(state_dir)
    tiers = [[r for r in known if r.kind in kinds] for kinds in _STOP_TIERS]
    tiers.append([r for r in known if not any(r.kind in kinds for kinds in _STOP_TIERS)])
    survivors: list[ProcessRecord] = []
    for tier in tiers:
        if not tier:
            continue
        alive = {r.name for r in tier if is_alive(r)}
        left = _terminate(tier, signal.SIGTERM, timeout)
        survivors.extend(left)
        for record in tier:
            if record not in left:
                _forget(state_dir, record.name)
                if record.name in alive:
                    stopped.append(record.name)
    if survivors:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
        raise RuntimeError(f"could not stop: {names}")
    return stopped


def status(state_dir: Path, http_timeout: float = 2.0) -> list[ProcessStatus]:
    """Each recorded process: alive?, and for HTTP components whether readiness answers 200."""
    result = []
    for record in records(state_dir):
        alive = is_alive(record)
        ready: bool | None = None
        if record.ready_url is not None:
            ready = alive and http_ok(record.ready_url, timeout=http_timeout)
        result.append(
            ProcessStatus(
                name=record.name,
                kind=record.kind,
                pid=record.pid,
                alive=alive,
                url=record.url,
                ready=ready,
            )
        )
    return result
