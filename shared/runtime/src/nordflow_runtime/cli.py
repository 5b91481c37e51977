"""The command line every service shares: run, migrate, and the dead-letter tools."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from . import db, dlq, jobs, tenants
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
    jobs_parser = sub.add_parser("jobs", help="inspect and retry this service's durable jobs")
    jobs_sub = jobs_parser.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="jobs, newest first")
    listing.add_argument("--state", choices=["pending", "done", "failed"])
    listing.add_argument("--kind", help="only jobs of this kind")
    listing.add_argument("--limit", type=int, default=50)
    retry = jobs_sub.add_parser("retry", help="make failed jobs pending again, due now")
    chosen = retry.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", type=int, action="append", dest="ids", help="a job id")
    chosen.add_argument("--all-failed", action="store_true", help="every failed job")
    retry.add_argument("--kind", help="only failed jobs of this kind (with --all-failed)")
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
    if args.command == "jobs":
        return asyncio.run(_jobs(app, args))
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


async def _jobs(app: ServiceApp, args: argparse.Namespace) -> int:
    await app.migrate()
    url = app.settings.database_url.get_secret_value()
    pool = await db.create_pool(url, app.schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            if args.jobs_command == "list":
                rows = await jobs.list_jobs(
                    conn, state=args.state, kind=args.kind, limit=args.limit
                )
                print(f"{len(rows)} job(s)")
                for r in rows:
                    due = f"{r['due_at']:%Y-%m-%d %H:%M:%S}"
                    print(
                        f"{r['id']}  {r['kind']}  {r['job_key']}  tenant={r['tenant_id']}  "
                        f"{r['state']}  attempts={r['attempts']}  due={due}"
                    )
                    if r["last_error"]:
                        print(f"    {r['last_error']}")
                return 0
            retried = await jobs.retry_failed(conn, ids=args.ids, kind=args.kind)
    finally:
        await pool.close()
    if args.ids and len(retried) < len(set(args.ids)):
        missing = sorted(set(args.ids) - set(retried))
        print(f"not failed (or no such job): {', '.join(map(str, missing))}", file=sys.stderr)
    print(f"{len(retried)} job(s) pending again: {', '.join(map(str, retried)) or '-'}")
    return 0 if retried or not args.ids else 1
