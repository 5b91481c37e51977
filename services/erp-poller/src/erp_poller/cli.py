"""erp-poller command line: the service commands plus connection management."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys

import asyncpg
from nordflow_runtime import db
from nordflow_runtime.cli import service_main, settings_or_exit
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.common import ConnectionMode, SourceSystem

from .app import create_app
from .config import Settings
from .domain import PLAIN_KEYS, CredentialsError, seal_form
from .ingest import release_pending
from .repository import ConnectionBusyError, PgConnectionRepository, PgTenantRepository


def sealed_text(system: SourceSystem, value: str) -> str:
    """What is sealed for a connection: the token, or the checked JSON credentials."""
    if system in PLAIN_KEYS:
        return seal_form(system, {PLAIN_KEYS[system]: value})
    try:
        fields = json.loads(value)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        raise CredentialsError(system, None, "must be a JSON object (the value is not one)")
    return seal_form(system, fields)


def aware(text: str, option: str) -> dt.datetime:
    """An ISO time from the command line; without a zone it is UTC."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"erp-poller: {option} {text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


async def _with_repo(settings: Settings) -> tuple[asyncpg.Pool, PgConnectionRepository]:
    pool = await db.create_pool(
        settings.database_url.get_secret_value(),
        db.schema_name("erp-poller"),
        min_size=1,
        max_size=2,
    )
    return pool, PgConnectionRepository(pool)


async def add_connection(settings: Settings, args: argparse.Namespace) -> None:
    """Create or update a connection; the token is sealed before it is stored."""
    app = create_app(settings)
    await app.migrate()
    token = os.environ.get(args.token_env)
    if not token:
        raise SystemExit(f"erp-poller: environment variable {args.token_env} (the token) is empty")
    system = SourceSystem(args.system)
    try:
        sealed_value = sealed_text(system, token)
    except CredentialsError as exc:
        raise SystemExit(f"erp-poller: {args.token_env}: {exc}") from None
    seller = json.loads(args.seller)
    if not isinstance(seller, dict) or not seller.get("name"):
        raise SystemExit('erp-poller: --seller must be a JSON object with at least "name"')
    cutoff = aware(args.cutoff, "--cutoff") if args.cutoff else dt.datetime.now(dt.UTC)
    pool, repo = await _with_repo(settings)
    try:
        await repo.add(
            connection_id=args.connection_id,
            tenant_id=args.tenant,
            system=system,
            base_url=args.base_url,
            token_sealed=SecretBox(settings.encryption_key).seal(sealed_value),
            mode=ConnectionMode(args.mode),
            seller=seller,
            cutoff_at=cutoff,
            poll_interval_seconds=args.poll_interval,
        )
    finally:
        await pool.close()
    print(f"connection {args.connection_id} for tenant {args.tenant}: {args.mode}")


async def list_connections(settings: Settings, tenant: str | None) -> None:
    """Print connections and their polling state."""
    pool, repo = await _with_repo(settings)
    try:
        for row in await repo.list(tenant):
            print(
                f"{row['connection_id']}  tenant={row['tenant_id']}  {row['system']}  "
                f"{row['mode']}  cursor={row['cursor_at']}  last_error={row['last_error']}"
            )
    finally:
        await pool.close()


async def backfill_command(settings: Settings, args: argparse.Namespace) -> int:
    """connections backfill (queue one) and connections backfills (show their progress)."""
    app = create_app(settings)
    await app.migrate()
    pool, _ = await _with_repo(settings)
    try:
        repo = PgTenantRepository(pool)
        row = await pool.fetchrow(
            "SELECT tenant_id FROM connections WHERE connection_id = $1 "
            "AND ($2::text IS NULL OR tenant_id = $2)",
            args.connection_id,
            args.tenant,
        )
        if row is None:
            print(f"erp-poller: no connection {args.connection_id!r}", file=sys.stderr)
            return 1
        if args.command == "backfill":
            since = aware(args.since, "--since")
            request_id = await repo.request_backfill(row["tenant_id"], args.connection_id, since)
            print(
                f"backfill request {request_id} queued for {args.connection_id} since "
                f"{since.isoformat()}; the running erp-poller picks it up"
            )
            return 0
        for item in await repo.backfill_requests(row["tenant_id"], args.connection_id):
            state = (
                "running or queued"
                if item["finished_at"] is None
                else ("done" if item["error"] is None else "failed")
            )
            print(
                f"{item['request_id']}  since={item['since'].isoformat()}  {state}  "
                f"listed={item['listed']}  emitted={item['emitted']}  "
                f"attempts={item['attempts']}  error={item['error']}"
            )
        return 0
    finally:
        await pool.close()


async def _tenant_command(settings: Settings, args: argparse.Namespace) -> int:
    """tokens create, connections mode, connections sync."""
    app = create_app(settings)
    await app.migrate()
    pool, _ = await _with_repo(settings)
    try:
        repo = PgTenantRepository(pool)
        if args.group == "tokens":
            token = await repo.create_token(args.tenant, args.name)
            print(token)
            print("(shown once; store it now)", file=sys.stderr)
            return 0
        if await repo.connection(args.tenant, args.connection_id) is None:
            print(
                f"erp-poller: tenant {args.tenant} has no connection {args.connection_id!r}",
                file=sys.stderr,
            )
            return 1
        if args.command == "mode":
            mode = ConnectionMode(args.mode)
            try:
                await repo.set_mode(args.tenant, args.connection_id, mode)
            except ConnectionBusyError as exc:
                print(f"erp-poller: {exc}", file=sys.stderr)
                return 1
            print(f"connection {args.connection_id}: {args.mode}")
            connection = await repo.configured(args.tenant, args.connection_id)
            if mode is ConnectionMode.AUTOMATIC and connection is not None:
                released = await release_pending(
                    repo.pool, connection, limit=None, documents=(), committed=lambda: None
                )
                if released:
                    print(f"{released} pushed document(s) held back in manual mode released")
            return 0
        if not args.limit and not args.document:
            print("erp-poller: give --limit N or --document NUMBER", file=sys.stderr)
            return 2
        request_id = await repo.request_sync(
            args.tenant, args.connection_id, args.limit, list(args.document or [])
        )
        print(f"sync request {request_id} queued; the running erp-poller picks it up")
        return 0
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    """``erp-poller run | migrate | dlq … | connections add|list|mode|sync|backfill|backfills |
    tokens create``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in {"connections", "tokens"}:
        return service_main("erp-poller", create_app, argv)
    parser = argparse.ArgumentParser(prog="erp-poller")
    groups = parser.add_subparsers(dest="group", required=True)
    connections = groups.add_parser("connections", help="tenants' source connections")
    sub = connections.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create or update a tenant's source connection")
    add.add_argument("--tenant", required=True)
    add.add_argument("--connection-id", required=True)
    add.add_argument("--system", choices=[s.value for s in SourceSystem], default="fortnox")
    add.add_argument("--base-url", required=True)
    add.add_argument(
        "--token-env",
        required=True,
        help="name of the env variable holding the credentials: fortnox the access token or "
        "its OAuth JSON (client_id, client_secret, refresh_token[, token_url]); winner and "
        "on-premise the push signing secret; the other systems a JSON object (see README)",
    )
    add.add_argument("--mode", choices=[m.value for m in ConnectionMode], default="test")
    add.add_argument("--seller", required=True, help="seller party as JSON")
    add.add_argument(
        "--poll-interval",
        type=int,
        help="this connection's schedule: seconds between polls (default: the service's "
        "POLL_INTERVAL_SECONDS)",
    )
    add.add_argument(
        "--cutoff", help="ISO time; documents last modified before its minute are not fetched"
    )
    lst = sub.add_parser("list", help="list connections")
    lst.add_argument("--tenant")
    mode = sub.add_parser("mode", help="switch a connection to test, manual or automatic")
    mode.add_argument("--tenant", required=True)
    mode.add_argument("--connection-id", required=True)
    mode.add_argument("--mode", choices=[m.value for m in ConnectionMode], required=True)
    sync = sub.add_parser("sync", help="fetch N new documents, or named ones, now")
    sync.add_argument("--tenant", required=True)
    sync.add_argument("--connection-id", required=True)
    sync.add_argument("--limit", type=int)
    sync.add_argument("--document", action="append", help="a document number (repeatable)")
    backfill = sub.add_parser(
        "backfill", help="re-read every document modified since a time (new versions flow)"
    )
    backfill.add_argument("connection_id")
    backfill.add_argument("--since", required=True, help="ISO time (without a zone: UTC)")
    backfill.add_argument("--tenant", help="refuse unless the connection is this tenant's")
    backfills = sub.add_parser("backfills", help="a connection's backfill requests and progress")
    backfills.add_argument("connection_id")
    backfills.add_argument("--tenant", help="refuse unless the connection is this tenant's")
    tokens = groups.add_parser("tokens", help="API tokens for the tenant API")
    tokens_sub = tokens.add_subparsers(dest="command", required=True)
    create = tokens_sub.add_parser("create", help="create a tenant API token (printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="api")
    args = parser.parse_args(argv)
    settings = settings_or_exit("erp-poller", Settings)
    if args.group == "tokens" or args.command in {"mode", "sync"}:
        return asyncio.run(_tenant_command(settings, args))
    if args.command in {"backfill", "backfills"}:
        return asyncio.run(backfill_command(settings, args))
    if args.command == "add":
        try:
            asyncio.run(add_connection(settings, args))
        except (PermissionError, ConnectionBusyError) as exc:
            print(f"erp-poller: {exc}", file=sys.stderr)
            return 1
    else:
        asyncio.run(list_connections(settings, args.tenant))
    return 0
