"""The command tree every service shares (run, migrate, dlq, jobs, tokens), built on Typer.

A service's ``entrypoints/cli.py`` takes ``service_cli(...)``, adds its own command groups
(``connections``, ``agreements`` …) with ``add_typer`` and runs it with ``run_cli``, so
``<service> --help`` lists every command of the service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sys
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from . import db, dlq, jobs, outbox, tenants
from .app import ServiceApp

S = TypeVar("S", bound=BaseSettings)
_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
T = TypeVar("T")


def _settings_errors(name: str, exc: ValidationError) -> None:
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]).upper()
        print(f"{name}: setting {field}: {err['msg']}", file=sys.stderr)


def settings_or_exit(name: str, cls: type[S]) -> S:
    """Read settings from the environment, or exit 2 naming every missing or bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        _settings_errors(name, exc)
        raise typer.Exit(2) from None


def new_group(help_text: str) -> typer.Typer:
    """A command group in the house style (plain help, no completion, no rich tracebacks)."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to its end."""
    return asyncio.run(coroutine)


@asynccontextmanager
async def service_pool(app: ServiceApp[Any], *, size: int = 1) -> Any:
    """Migrate the service's schema, then a small pool on it for a command."""
    await app.migrate()
    url = app.settings.database_url.get_secret_value()
    pool: asyncpg.Pool = await db.create_pool(url, app.schema, min_size=1, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


class JobState(StrEnum):
    """A durable job's state."""

    PENDING = "pending"
    RUNNING = "running"  # a leased job while a process works on it
    DONE = "done"
    FAILED = "failed"


def service_cli(
    name: str,
    create_app: Callable[[], ServiceApp[Any]],
    *,
    tenant_api: bool = False,
    operator_tokens: bool = False,
) -> typer.Typer:
    """``<service> run | migrate | dlq list|replay | jobs list|retry`` (and ``tokens
    create|list|revoke`` with ``tenant_api``: the service serves a tenant API and has an
    ``api_tokens`` table; ``operator_tokens``: ``tokens create --operator`` too).

    ``create_app`` is called only when a command runs, so ``--help`` needs no settings.
    """
    cli = new_group(f"Nordflow {name}")

    def app_or_exit() -> ServiceApp[Any]:
        try:
            return create_app()
        except ValidationError as exc:
            _settings_errors(name, exc)
            raise typer.Exit(2) from None

    @cli.command()
    def run() -> None:
        """Run the service until SIGTERM."""
        run_async(app_or_exit().run())

    @cli.command()
    def migrate() -> None:
        """Apply database migrations and exit."""
        for applied in run_async(app_or_exit().migrate()):
            print(f"applied {applied}")

    letters = new_group("Inspect and replay this service's dead letters.")
    cli.add_typer(letters, name="dlq")

    @letters.command("list")
    def dlq_list() -> None:
        """List the dead letters of this service."""
        found = run_async(dlq.read(app_or_exit().settings.kafka_bootstrap_servers, consumer=name))
        print(f"{len(found)} dead letter(s) for {name}")
        for lt in found:
            print(
                f"{lt.partition}:{lt.offset}  {lt.origin_topic}[{lt.origin_partition}]@"
                f"{lt.origin_offset}  event={lt.event_id}  tenant={lt.tenant_id}\n    {lt.reason}"
            )

    @letters.command("replay")
    def dlq_replay(
        every: Annotated[
            bool, typer.Option("--all", help="every dead letter of this service")
        ] = False,
        offsets: Annotated[
            list[str] | None,
            typer.Option("--offset", metavar="P:O", help="one letter by dlq partition:offset"),
        ] = None,
    ) -> None:
        """Publish dead letters again to their topic (same event id)."""
        if every == bool(offsets):
            raise typer.BadParameter("give either --all or one or more --offset P:O")
        bootstrap = app_or_exit().settings.kafka_bootstrap_servers
        found = run_async(dlq.read(bootstrap, consumer=name))
        if offsets:
            wanted = set(offsets)
            found = [lt for lt in found if f"{lt.partition}:{lt.offset}" in wanted]
            missing = wanted - {f"{lt.partition}:{lt.offset}" for lt in found}
            if missing:
                print(f"no dead letter of {name} at {', '.join(sorted(missing))}", file=sys.stderr)
                raise typer.Exit(1)
        count = run_async(dlq.replay(bootstrap, found))
        print(f"replayed {count} dead letter(s)")

    work = new_group("Inspect and retry this service's durable jobs.")
    cli.add_typer(work, name="jobs")

    @work.command("list")
    def jobs_list(
        state: Annotated[JobState | None, typer.Option(help="only jobs in this state")] = None,
        kind: Annotated[str | None, typer.Option(help="only jobs of this kind")] = None,
        limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
    ) -> None:
        """Jobs, newest first."""

        async def listing() -> list[asyncpg.Record]:
            async with service_pool(app_or_exit()) as pool, pool.acquire() as conn:
                return await jobs.list_jobs(
                    conn, state=state.value if state else None, kind=kind, limit=limit
                )

        rows = run_async(listing())
        print(f"{len(rows)} job(s)")
        for r in rows:
            due = f"{r['due_at']:%Y-%m-%d %H:%M:%S}"
            print(
                f"{r['id']}  {r['kind']}  {r['job_key']}  tenant={r['tenant_id']}  "
                f"{r['state']}  attempts={r['attempts']}  due={due}"
            )
            if r["last_error"]:
                print(f"    {r['last_error']}")

    @work.command("retry")
    def jobs_retry(
        ids: Annotated[
            list[int] | None, typer.Option("--id", help="a failed job's id (repeatable)")
        ] = None,
        all_failed: Annotated[bool, typer.Option("--all-failed", help="every failed job")] = False,
        kind: Annotated[
            str | None, typer.Option(help="only failed jobs of this kind (with --all-failed)")
        ] = None,
    ) -> None:
        """Make failed jobs pending again, due now."""
        if all_failed == bool(ids):
            raise typer.BadParameter("give either --all-failed or one or more --id N")

        async def retrying() -> list[int]:
            async with (
                service_pool(app_or_exit()) as pool,
                pool.acquire() as conn,
                conn.transaction(),
            ):
                # The retried jobs and their job.retried events commit together.
                return await jobs.retry_failed(
                    conn, ids=ids or None, kind=kind, service=name, requested_by="cli"
                )

        retried = run_async(retrying())
        if ids and len(retried) < len(set(ids)):
            missing = sorted(set(ids) - set(retried))
            print(f"not failed (or no such job): {', '.join(map(str, missing))}", file=sys.stderr)
        print(f"{len(retried)} job(s) pending again: {', '.join(map(str, retried)) or '-'}")
        if ids and not retried:
            raise typer.Exit(1)

    rows = new_group("Outbox rows Kafka refused for good (set aside): list and send again.")
    cli.add_typer(rows, name="outbox")

    @rows.command("list")
    def outbox_list(
        limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
    ) -> None:
        """Rows set aside, newest first, with Kafka's reason."""

        async def listing() -> list[asyncpg.Record]:
            async with service_pool(app_or_exit()) as pool, pool.acquire() as conn:
                return await outbox.set_aside(conn, limit)

        found = run_async(listing())
        print(f"{len(found)} row(s) set aside")
        for r in found:
            print(
                f"{r['seq']}  {r['topic']}  event={r['event_id']}  tenant={r['tenant_id']}  "
                f"{r['bytes'] or 0} bytes  {r['failed_at']:%Y-%m-%d %H:%M:%S}\n"
                f"    {r['last_error']}"
            )

    @rows.command("retry")
    def outbox_retry(
        seqs: Annotated[
            list[int] | None, typer.Option("--seq", help="a row's seq (repeatable)")
        ] = None,
        every: Annotated[bool, typer.Option("--all", help="every row set aside")] = False,
    ) -> None:
        """Send rows set aside again (after the cause is fixed, e.g. a larger message limit)."""
        if every == bool(seqs):
            raise typer.BadParameter("give either --all or one or more --seq N")

        async def retrying() -> list[int]:
            async with service_pool(app_or_exit()) as pool, pool.acquire() as conn:
                return await outbox.retry_set_aside(conn, seqs or None)

        again = run_async(retrying())
        print(f"{len(again)} row(s) to be sent again: {', '.join(map(str, again)) or '-'}")
        if seqs and not again:
            raise typer.Exit(1)

    if tenant_api:
        add_token_commands(cli, app_or_exit, operators=operator_tokens)

    return cli


def add_token_commands(
    cli: typer.Typer, app_or_exit: Callable[[], ServiceApp[Any]], *, operators: bool = False
) -> None:
    """``tokens create|list|revoke`` on the service's ``api_tokens`` (``tenants``)."""
    group = new_group("API tokens: create (printed once), list, revoke.")
    cli.add_typer(group, name="tokens")

    @group.command("create")
    def tokens_create(
        tenant_id: Annotated[
            str | None, typer.Argument(metavar="[TENANT]", help="the tenant the token acts for")
        ] = None,
        label: Annotated[str, typer.Option("--name", help="what the token is for")] = "api",
        scope: Annotated[
            tenants.Scope, typer.Option(help="read (GET only) or operate (read and change)")
        ] = tenants.Scope.OPERATE,
        days: Annotated[
            int,
            typer.Option(
                "--expires-days", min=1, max=tenants.MAX_LIFETIME.days, help="days it lives"
            ),
        ] = tenants.DEFAULT_LIFETIME.days,
        operator: Annotated[
            bool, typer.Option("--operator", help="an operator's token: every tenant")
        ] = False,
    ) -> None:
        """Create a token (printed once; only its hash is kept)."""
        if operator and not operators:
            raise typer.BadParameter(
                "this service has no operators' tokens", param_hint="--operator"
            )
        if operator == (tenant_id is not None):
            raise typer.BadParameter("give a TENANT, or --operator without one")
        if tenant_id is not None and not _TENANT_ID.fullmatch(tenant_id):
            raise typer.BadParameter("not a tenant id (a-z, 0-9 and -)", param_hint="TENANT")
        if not 1 <= len(label) <= 100:
            raise typer.BadParameter("1 to 100 characters", param_hint="--name")

        async def creating() -> str:
            async with service_pool(app_or_exit()) as pool:
                return await tenants.create_token(
                    pool,
                    tenant_id,
                    label,
                    scope=scope,
                    expires_in=dt.timedelta(days=days),
                    operator=operator,
                )

        print(run_async(creating()))

    @group.command("list")
    def tokens_list(
        tenant_id: Annotated[
            str | None, typer.Argument(metavar="[TENANT]", help="only this tenant's")
        ] = None,
    ) -> None:
        """Tokens (never the tokens themselves): id, tenant, name, scope, expiry, state."""

        async def listing() -> list[tenants.TokenInfo]:
            async with service_pool(app_or_exit()) as pool:
                return await tenants.list_tokens(pool, tenant_id)

        now = tenants.utc_now()
        found = run_async(listing())
        print(f"{len(found)} token(s)")
        for t in found:
            state = "active" if t.active(now) else ("revoked" if t.revoked_at else "expired")
            owner = "operator" if t.operator else f"tenant={t.tenant_id}"
            print(
                f"{t.token_id}  {owner}  name={t.name}  scope={t.scope.value}  "
                f"expires={t.expires_at:%Y-%m-%d}  {state}"
            )

    @group.command("revoke")
    def tokens_revoke(
        token_id: Annotated[str, typer.Argument(help="the token's id (from tokens list)")],
    ) -> None:
        """Revoke a token at once."""

        async def revoking() -> bool:
            async with service_pool(app_or_exit()) as pool:
                return await tenants.revoke_token(pool, token_id)

        if not run_async(revoking()):
            print(f"no active token {token_id}", file=sys.stderr)
            raise typer.Exit(1)
        print(f"revoked {token_id}")


def run_cli(cli: typer.Typer, name: str, argv: list[str] | None = None) -> int:
    """Run a command tree on ``argv`` (default: the process's); its exit code.

    A usage error exits 2 with the parser's message; a missing or bad setting exits 2 naming
    it; a command's own failure exits with the code it gives (``typer.Exit``).
    """
    try:
        cli(args=sys.argv[1:] if argv is None else argv, prog_name=name)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # SystemExit("message"): the message, exit code 1
        return 1
    return 0
