"""The command line every service shares: run, migrate, and the dead-letter tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from . import db, dlq, tenants
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
    name: str,
    create_app: Callable[[], ServiceApp],
    argv: list[str] | None = None,
    *,
    tenant_api: bool = False,
) -> int:
    """``<service> run | migrate | dlq list | dlq replay`` (and ``tokens create`` with
    ``tenant_api``: the service serves a tenant API and has an ``api_tokens`` table).
    """
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
    if tenant_api:
        tokens = sub.add_parser("tokens", help="API tokens for this service's tenant API")
        tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
        create = tokens_sub.add_parser("create", help="create a tenant API token (printed once)")
        create.add_argument("tenant_id")
        create.add_argument("--name", default="api", help="what the token is for")
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
    if args.command == "tokens":
        print(asyncio.run(_create_token(app, args.tenant_id, args.name)))
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


async def _create_token(app: ServiceApp, tenant_id: str, name: str) -> str:
    await app.migrate()
    url = app.settings.database_url.get_secret_value()
    pool = await db.create_pool(url, app.schema, min_size=1, max_size=1)
    try:
        return await tenants.create_token(pool, tenant_id, name)
    finally:
        await pool.close()
