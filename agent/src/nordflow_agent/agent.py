"""nordflow-agent: watches a folder on the customer's machine and pushes each export as a batch.

An on-premise ERP (Visma Administration, Dynamics NAV, ...) exports invoices into a folder as
JSON batches (`.json`) or SIE 4i files (`.se`, `.si`); the agent pushes each finished file to
erp-poller's `POST /api/v1/ingest/batches/{connection}`, signed with the connection's push
secret (`nordflow_signing`), and files it away: `sent/` after a 2xx, `failed/` (with
`<name>.error.txt`) after a 4xx that retrying cannot fix. The batch id is the SHA-256 of
the file, so pushing a file again (after a crash between the answer and the move) answers
the first result and emits nothing twice. The secret comes only from the environment
(`NORDFLOW_AGENT_SECRET`).

A `customers.json` in the folder is the ERP's customer register (SIE 4 carries no customer
addresses): it is pushed to `PUT /api/v1/ingest/customers/{connection}` before the batches of
the same round, and filed the same way, so the vouchers of those batches find their customers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from nordflow_signing import signature_headers

log = logging.getLogger("nordflow_agent")

SECRET_ENV = "NORDFLOW_AGENT_SECRET"  # noqa: S105 - the variable's name, not a secret
SUFFIXES = {".json": "application/json", ".se": "text/plain", ".si": "text/plain"}
SENT, FAILED = "sent", "failed"
REGISTER_NAME = "customers.json"
# Answers that mean "try later" rather than "this file is bad"; 401/403 mean the agent is
# misconfigured (wrong secret or connection): files stay where they are until that is fixed.
RETRYABLE = frozenset({408, 425, 429})
CONFIG_ERRORS = frozenset({401, 403, 404})


class ConfigurationError(Exception):
    """The server refused the agent itself (secret, connection); no file is to blame."""


@dataclass
class AgentConfig:
    """What one agent watches and where it pushes."""

    folder: Path
    url: str
    connection: str
    secret: str = field(repr=False)
    interval: float = 2.0
    settle: float = 1.0
    max_attempts: int = 5
    backoff: float = 1.0
    timeout: float = 60.0

    @property
    def endpoint(self) -> str:
        """The batch endpoint of the connection."""
        return f"{self.url.rstrip('/')}/api/v1/ingest/batches/{self.connection}"

    @property
    def customers_endpoint(self) -> str:
        """The customer register endpoint of the connection."""
        return f"{self.url.rstrip('/')}/api/v1/ingest/customers/{self.connection}"


def is_register(path: Path) -> bool:
    """Whether the file is the customer register (any case: Windows exports vary)."""
    return path.name.lower() == REGISTER_NAME


def candidates(folder: Path) -> list[Path]:
    """Files to push, oldest name first (sub-folders such as sent/ are never looked into)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def _size(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


def stable_files(folder: Path, seen: dict[Path, tuple[int, int]]) -> list[Path]:
    """Files whose size and mtime did not change since the previous look (then updated).

    A file still being written grows between two looks, so it waits for the next round.
    """
    ready = []
    current: dict[Path, tuple[int, int]] = {}
    for path in candidates(folder):
        size = _size(path)
        if size is None:
            continue
        current[path] = size
        if seen.get(path) == size:
            ready.append(path)
    seen.clear()
    seen.update(current)
    return ready


def _destination(folder: Path, name: str) -> Path:
    target = folder / name
    counter = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{counter}{Path(name).suffix}"
        counter += 1
    return target


def _move(path: Path, sub: str) -> Path:
    folder = path.parent / sub
    folder.mkdir(exist_ok=True)
    target = _destination(folder, path.name)
    path.rename(target)
    return target


def batch_id_of(path: Path, body: bytes) -> str:
    """The file's SHA-256, or the batch_id a JSON batch names itself."""
    if path.suffix.lower() == ".json":
        try:
            named = json.loads(body).get("batch_id")
        except (ValueError, AttributeError):
            named = None
        if isinstance(named, str) and named:
            return named
    return hashlib.sha256(body).hexdigest()


def push_file(
    config: AgentConfig,
    client: httpx.Client,
    path: Path,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Push one file and file it away; returns "sent", "failed" or "retry" (left in place).

    A batch is POSTed under its batch id; the customer register (`customers.json`) is PUT to
    the register endpoint, where an upsert makes a repeated push harmless. Raises
    `ConfigurationError` when the server refuses the agent itself.
    """
    body = path.read_bytes()
    register = is_register(path)
    batch_id = None if register else batch_id_of(path, body)
    method, endpoint = ("PUT", config.customers_endpoint) if register else ("POST", config.endpoint)
    what = "customer register" if register else f"batch {(batch_id or '')[:16]}"
    content_type = SUFFIXES[path.suffix.lower()]
    for attempt in range(1, config.max_attempts + 1):
        headers = {
            "Content-Type": content_type,
            # Signed afresh (stamps expire), the batch id included in what is signed.
            **signature_headers(config.secret, body, batch_id=batch_id),
        }
        try:
            response = client.request(method, endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}"
        else:
            if 200 <= response.status_code < 300:
                target = _move(path, SENT)
                counts = _register_counts(response) if register else _counts(response)
                log.info("sent %s (%s): %s -> %s", path.name, what, counts, target)
                return SENT
            if response.status_code in CONFIG_ERRORS:
                raise ConfigurationError(
                    f"{response.status_code} from {endpoint}: {_reason(response)}"
                )
            if 400 <= response.status_code < 500 and response.status_code not in RETRYABLE:
                target = _move(path, FAILED)
                error = target.with_name(target.name + ".error.txt")
                error.write_text(
                    f"HTTP {response.status_code} from {endpoint}\n"
                    + (f"batch id: {batch_id}\n" if batch_id else "")
                    + f"\n{response.text}\n",
                    encoding="utf-8",
                )
                log.error(
                    "rejected %s (HTTP %d), moved to %s; see %s",
                    path.name,
                    response.status_code,
                    target,
                    error.name,
                )
                return FAILED
            problem = f"HTTP {response.status_code}"
        if attempt < config.max_attempts:
            delay = min(60.0, config.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
            log.warning(
                "push of %s failed (%s), attempt %d of %d; retrying in %.1f s",
                path.name,
                problem,
                attempt,
                config.max_attempts,
                delay,
            )
            sleep(delay)
        else:
            log.warning("push of %s failed (%s); will try again later", path.name, problem)
    return "retry"


def _reason(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail or response.text[:200])


def _counts(response: httpx.Response) -> object:
    try:
        return response.json().get("counts")
    except (ValueError, AttributeError):
        return None


def _register_counts(response: httpx.Response) -> object:
    try:
        answer = response.json()
        return {key: answer.get(key) for key in ("created", "updated", "unchanged")}
    except (ValueError, AttributeError):
        return None


def run_once(config: AgentConfig, client: httpx.Client, seen: dict[Path, tuple[int, int]]) -> int:
    """One round: push the files that were stable since the previous look, the customer
    register first, then the batches oldest first; how many are left.

    A file left for a retry ends the round: a later export of the same document must never
    reach the server before an earlier one, nor a batch before the register its vouchers'
    customers are looked up in. For that reason, too, a register still being written holds
    the round's batches back until it is stable and pushed.
    """
    ready = stable_files(config.folder, seen)
    if any(is_register(p) and p not in ready for p in seen):
        log.info("waiting for %s to be written completely before pushing batches", REGISTER_NAME)
        return len(ready)
    ready.sort(key=lambda p: not is_register(p))  # stable: the batches keep their order
    for index, path in enumerate(ready):
        if push_file(config, client, path) == "retry":
            return len(ready) - index
    return 0


def watch(config: AgentConfig, *, once: bool = False) -> int:
    """Push files until stopped (or, with ``once``, what is there now); the exit code."""
    config.folder.mkdir(parents=True, exist_ok=True)
    seen: dict[Path, tuple[int, int]] = {}
    log.info(
        "watching %s for %s and .json/.se/.si files, pushing to %s",
        config.folder,
        REGISTER_NAME,
        config.endpoint,
    )
    with httpx.Client(timeout=config.timeout) as client:
        try:
            stable_files(config.folder, seen)  # the first look
            if once:
                time.sleep(config.settle)
                left = run_once(config, client, seen)
                waiting = len(candidates(config.folder))
                log.info("done: %d file(s) left in %s", waiting, config.folder)
                return 1 if left else 0
            while True:
                time.sleep(config.interval)
                run_once(config, client, seen)
        except ConfigurationError as exc:
            log.error("the server refused the agent: %s", exc)
            return 2
        except KeyboardInterrupt:
            log.info("stopped")
            return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (the secret is never one of its arguments)."""
    parser = argparse.ArgumentParser(
        prog="nordflow-agent",
        description=f"Push ERP exports to Nordflow. The push secret is read from ${SECRET_ENV}.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    w = commands.add_parser(
        "watch", help="push customers.json, then each new .json/.se/.si file in a folder"
    )
    w.add_argument("--folder", type=Path, required=True, help="the export folder")
    w.add_argument(
        "--url", required=True, help="erp-poller's base URL, e.g. https://nordflow.example"
    )
    w.add_argument("--connection", required=True, help="the on-premise connection id")
    w.add_argument("--once", action="store_true", help="push what is there now, then exit")
    w.add_argument("--interval", type=float, default=2.0, help="seconds between looks")
    w.add_argument(
        "--settle", type=float, default=1.0, help="with --once: seconds between the two looks"
    )
    w.add_argument("--max-attempts", type=int, default=5, help="tries per file and round")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """The agent's command line; returns the exit code."""
    args = parse_args(argv)
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "")
    if not secret:
        log.error("set %s to the connection's push secret", SECRET_ENV)
        return 2
    config = AgentConfig(
        folder=args.folder,
        url=args.url,
        connection=args.connection,
        secret=secret,
        interval=args.interval,
        settle=args.settle,
        max_attempts=max(1, args.max_attempts),
    )
    return watch(config, once=args.once)


def main() -> None:
    """Entry point of `nordflow-agent`."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    raise SystemExit(run())
