"""The command line every service shares: run, migrate, and the dead-letter tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from . import dlq
from .app import ServiceApp

S = TypeVar("S", bound=BaseSettings)


def settings_or_exit(name: str, cls: type[S]) -> S:
    """Read settings from the environment, or exit 2 naming every missing or bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper()
            print(f"{name}: setting {field}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def service_main(
    name: str, create_app: Callable[[], ServiceApp], argv: list[str] | None = None
) -> int:
    """``<service> run | migrate | dlq list | dlq replay``."""
    parser = argparse.ArgumentParser(prog=name, description=f"Nordflow {name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the service until SIGTERM")
    sub.add_parser("migrate", help="apply database migrations and exit")
    dlq_parser = sub.add_parser("dlq", help="inspect and replay this service's dead letters")
    dlq_sub = dlq_parser.add_subparsers(dest="dlq_command", required=True)
    dlq_sub.add_parser("list", help="list dead letters of this service")
    replay = dlq_sub.add_parser("replay", help="publish dead letters again to their topic")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter of this service")
    which.add_argument(
        "--offset", action="append", metavar="P:O", help="one letter by dlq partition:offset"
    )
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]).upper()
            print(f"{name}: setting {field}: {err['msg']}", file=sys.stderr)
        return 2
    if args.command == "run":
        asyncio.run(app.run())
        return 0
    if args.command == "migrate":
        for applied in asyncio.run(app.migrate()):
            print(f"applied {applied}")
        return 0
    bootstrap = app.settings.kafka_bootstrap_servers
    letters = asyncio.run(dlq.read(bootstrap, consumer=name))
    if args.dlq_command == "list":
        print(f"{len(letters)} dead letter(s) for {name}")
        for lt in letters:
            print(
                f"{lt.partition}:{lt.offset}  {lt.origin_topic}[{lt.origin_partition}]@"
                f"{lt.origin_offset}  event={lt.event_id}  tenant={lt.tenant_id}\n    {lt.reason}"
            )
        return 0
    if not args.all:
        wanted = set(args.offset)
        letters = [lt for lt in letters if f"{lt.partition}:{lt.offset}" in wanted]
        missing = wanted - {f"{lt.partition}:{lt.offset}" for lt in letters}
        if missing:
            print(f"no dead letter of {name} at {', '.join(sorted(missing))}", file=sys.stderr)
            return 1
    count = asyncio.run(dlq.replay(bootstrap, letters))
    print(f"replayed {count} dead letter(s)")
    return 0
