"""`nordflow-local`: start, inspect and stop the local stack."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from nordflow_local import processes
from nordflow_local.processes import StartupError
from nordflow_local.provision import provision_tenant
from nordflow_local.stack import SANDBOXES, SERVICES, Stack, StackError

# Exit codes: 0 success, 1 failure, 2 usage (argparse), 3 nothing is running.
EXIT_FAILED = 1
EXIT_NOT_RUNNING = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nordflow-local",
        description="Run Nordflow locally: a real Kafka broker and PostgreSQL server on "
        "loopback, the partner sandboxes and the services, as background processes.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where pids, logs, data and the env file live (default: <repo>/.local)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="start everything (idempotent), write <state>/env")
    up.add_argument("--no-services", action="store_true", help="do not start the services")
    up.add_argument("--no-sandboxes", action="store_true", help="do not start the sandboxes")
    up.add_argument(
        "--timeout", type=float, default=90.0, help="seconds each component may take to be ready"
    )

    infra = commands.add_parser("infra", help="start only Kafka and PostgreSQL, print the env")
    infra.add_argument("--timeout", type=float, default=90.0)

    commands.add_parser("down", help="stop every process of the stack (data is kept)")
    commands.add_parser("status", help="a table of processes, liveness and readiness")

    env = commands.add_parser("env", help="print the env file of the running stack")
    env.add_argument("--export", action="store_true", help="prefix lines with `export `")

    scale = commands.add_parser(
        "scale", help="run N processes of a service (replicas `<service>.<n>`, own HTTP ports)"
    )
    scale.add_argument("service", choices=SERVICES)
    scale.add_argument("replicas", type=int, help="how many processes, 1 or more")
    scale.add_argument("--timeout", type=float, default=90.0)

    names = ["kafka", "postgres", *(s.process_name for s in SANDBOXES), *SERVICES]
    logs = commands.add_parser("logs", help="print a component's log")
    logs.add_argument("name", help=f"one of: {', '.join(names)}")
    logs.add_argument("-n", "--lines", type=int, default=100, help="how many last lines")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    return parser


def _print_env(env: dict[str, str], export: bool = False) -> None:
    prefix = "export " if export else ""
    for key, value in env.items():
        print(f"{prefix}{key}={value}")


def _status(stack: Stack) -> int:
    rows = stack.status()
    if not rows:
        print(f"nothing is running from {stack.state_dir}")
        return EXIT_NOT_RUNNING

    def word(value: bool | None) -> str:
        return "-" if value is None else ("yes" if value else "NO")

    table = [("NAME", "KIND", "PID", "ALIVE", "READY", "URL")]
    table += [(r.name, r.kind, str(r.pid), word(r.alive), word(r.ready), r.url or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    healthy = all(r.alive and r.ready is not False for r in rows)
    return 0 if healthy else EXIT_FAILED


def _logs(stack: Stack, name: str, lines: int, follow: bool) -> int:
    path = stack.log_path(name)
    if not path.is_file():
        print(f"no log for {name!r} at {path}", file=sys.stderr)
        return EXIT_FAILED
    tail = processes.log_tail(path, lines)
    if tail:
        print(tail)
    if not follow:
        return 0
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        handle.seek(0, 2)
        try:
            while True:
                chunk = handle.read()
                if chunk:
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                else:
                    time.sleep(0.3)
        except KeyboardInterrupt:
            return 0


DEMO_TENANT = "demo"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and as a console script exits with) the exit code."""
    args = _parser().parse_args(argv)
    timeout = getattr(args, "timeout", 90.0)
    stack = Stack(args.state_dir, timeout=timeout)
    try:
        if args.command == "up":
            env = stack.up(services=not args.no_services, sandboxes=not args.no_sandboxes)
            if not args.no_services and not args.no_sandboxes:
                # The demo tenant's Fortnox sandbox company is connected in automatic mode, so
                # an invoice created there flows with no further step.
                provision_tenant(env, DEMO_TENANT, token=env["SANDBOX_FORTNOX_TOKEN"])
                print(
                    f"tenant {DEMO_TENANT!r}: Fortnox sandbox connected, automatic mode",
                    file=sys.stderr,
                )
            print(f"env written to {stack.env_file}", file=sys.stderr)
            return 0
        if args.command == "infra":
            _print_env(stack.infra())
            return 0
        if args.command == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
            return 0
        if args.command == "status":
            return _status(stack)
        if args.command == "env":
            _print_env(stack.env(), export=args.export)
            return 0
        if args.command == "scale":
            for url in stack.scale_service(args.service, args.replicas):
                print(url)
            return 0
        if args.command == "logs":
            return _logs(stack, args.name, args.lines, args.follow)
    except (StackError, StartupError, RuntimeError, OSError) as error:
        print(f"nordflow-local {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; `nordflow-local down` stops what was started", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
