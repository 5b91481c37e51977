"""erp-poller's command tree: the shared service commands (run, migrate, dlq, jobs, tokens)
plus ``connections`` and ``tenants profile``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from nordflow_runtime.cli import new_group, run_cli, service_cli, service_pool, settings_or_exit
from nordflow_schemas.common import ConnectionMode, SourceSystem
from nordflow_schemas.events import Flow
from nordflow_schemas.tenant import TenantProfile
from nordflow_schemas.topics import ERP_POLLER
from pydantic import ValidationError

from ..app import create_app
from ..config import Settings
from ..deps import Deps, deps_for
from ..domain.connections import (
    TARGET_ONLY_SYSTEMS,
    ConnectionBusyError,
    ConnectionInUseError,
    ConnectionTakenError,
    InvalidInputError,
    NotFoundError,
)
from ..domain.credentials import CredentialsError
from ..domain.profiles import SET_THE_PROFILE
from ..service import connections as connection_cases
from ..service import profiles as profile_cases

T = TypeVar("T")

cli = service_cli(ERP_POLLER, create_app, tenant_api=True)
connections = new_group("The tenants' source connections.")
cli.add_typer(connections, name="connections")
tenants = new_group("The tenants erp-poller keeps the profiles of.")
cli.add_typer(tenants, name="tenants")
profile = new_group("A tenant's profile (published on tenant.updated).")
tenants.add_typer(profile, name="profile")

TenantOption = Annotated[str, typer.Option("--tenant", help="the tenant")]
ConnectionOption = Annotated[str, typer.Option("--connection-id", help="the connection")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say what went wrong on stderr; the exit to raise."""
    print(f"{ERP_POLLER}: {message}", file=sys.stderr)
    return typer.Exit(code)


def aware(text: str | None) -> dt.datetime | None:
    """An ISO time from the command line; without a zone it is UTC."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to its end."""
    return asyncio.run(work)


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[Deps]:
    """The service's dependencies on a small pool (its schema migrated first)."""
    async with service_pool(create_app(settings), size=2) as pool:
        deps = deps_for(pool, settings)
        try:
            yield deps
        finally:
            await deps.aclose()


def settings() -> Settings:
    """erp-poller's settings from the environment, or exit 2 naming what is missing."""
    return settings_or_exit(ERP_POLLER, Settings)


# ----------------------------------------------------------------------------- connections


@connections.command("add")
def connections_add(
    tenant: TenantOption,
    connection_id: ConnectionOption,
    base_url: Annotated[str, typer.Option("--base-url", help="the source system's API")],
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help="name of the env variable holding the credentials: fortnox the access token "
            "or its OAuth JSON (client_id, client_secret, refresh_token[, token_url]); winner "
            "and on-premise the push signing secret; the other systems a JSON object (see "
            "README); not for tripletex, which erp-poller never calls",
        ),
    ] = None,
    system: Annotated[SourceSystem, typer.Option(help="the source system")] = (
        SourceSystem.FORTNOX
    ),
    mode: Annotated[ConnectionMode, typer.Option(help="test, manual or automatic")] = (
        ConnectionMode.TEST
    ),
    poll_interval: Annotated[
        int | None,
        typer.Option(
            "--poll-interval",
            help="this connection's schedule: seconds between polls (default: the service's "
            "POLL_INTERVAL_SECONDS)",
        ),
    ] = None,
    cutoff: Annotated[
        str | None,
        typer.Option(help="ISO time; documents last modified before its minute are not fetched"),
    ] = None,
    book_into: Annotated[
        str | None,
        typer.Option(
            "--book-into",
            help="flow: another connection of the tenant (fortnox, visma-eaccounting, "
            "visma-net, tripletex) that ledger-closer books this one's documents into",
        ),
    ] = None,
    factor: Annotated[
        bool, typer.Option("--factor/--no-factor", help="flow: decided under the agreements")
    ] = True,
    distribute: Annotated[
        bool,
        typer.Option("--distribute/--no-distribute", help="flow: sent to the buyer by Nordflow"),
    ] = True,
) -> None:
    """Create or update a tenant's source connection (the token is sealed before it is
    stored) and its flow; the seller is the tenant's profile's (`tenants profile set`)."""
    if system in TARGET_ONLY_SYSTEMS:
        if token_env is not None:
            raise fail(f"--token-env: {system.value} takes no credentials here", 2)
        token: str | None = "{}"  # noqa: S105 - no credentials at all
    elif token_env is None:
        raise fail("--token-env: required (the env variable holding the credentials)", 2)
    else:
        token = os.environ.get(token_env)
    if not token:
        raise fail(f"environment variable {token_env} (the token) is empty")
    flow = Flow(book_into=book_into, factor=factor, distribute=distribute)
    cutoff_at = aware(cutoff)
    config = settings()

    async def adding() -> bool:
        async with service(config) as deps, deps.uow.transaction() as repos:
            state = await connection_cases.save_connection(
                repos,
                deps.box,
                tenant,
                connection_id=connection_id,
                system=system,
                base_url=base_url,
                token=token,
                mode=mode,
                cutoff_at=cutoff_at,
                poll_interval_seconds=poll_interval,
                allow_internal_urls=True,
                now=deps.clock(),
                flow=flow,
            )
        return state.tenant_has_profile

    try:
        has_profile = run(adding())
    except InvalidInputError as exc:
        where = "" if exc.field.startswith("flow.") else f"{token_env}: "
        raise fail(f"{where}{exc}") from None
    except CredentialsError as exc:
        raise fail(f"{token_env}: {exc}") from None
    except (ConnectionTakenError, ConnectionBusyError) as exc:
        raise fail(str(exc)) from None
    print(f"connection {connection_id} for tenant {tenant}: {mode.value}, {_flow_text(flow)}")
    if not has_profile:
        print(
            f"{ERP_POLLER}: tenant {tenant} has no profile yet: {SET_THE_PROFILE}", file=sys.stderr
        )


def _flow_text(flow: Flow) -> str:
    parts = [f"book into {flow.book_into}"] if flow.book_into else []
    parts += [name for name, on in (("factor", flow.factor), ("distribute", flow.distribute)) if on]
    return "flow: " + (", ".join(parts) or "record only")


@connections.command("list")
def connections_list(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's")] = None,
) -> None:
    """Connections and their polling state."""
    config = settings()

    async def listing() -> list[Any]:
        async with service(config) as deps, deps.uow.transaction() as repos:
            return list(await repos.connections.states(tenant))

    for state in run(listing()):
        print(
            f"{state.connection_id}  tenant={state.tenant_id}  {state.system.value}  "
            f"{state.mode.value}  {_flow_text(state.flow)}  cursor={state.cursor_at}  "
            f"last_error={state.last_error}"
            + ("" if state.tenant_has_profile else "  (the tenant has no profile)")
        )


@connections.command("mode")
def connections_mode(
    tenant: TenantOption,
    connection_id: ConnectionOption,
    mode: Annotated[ConnectionMode, typer.Option(help="test, manual or automatic")],
) -> None:
    """Switch a connection to test, manual or automatic (automatic releases the pushed
    documents manual mode held back)."""
    config = settings()

    async def switching() -> int:
        async with service(config) as deps, deps.uow.transaction() as repos:
            changed = await connection_cases.set_mode(
                repos, tenant, connection_id, mode, deps.clock()
            )
        return changed.released

    try:
        released = run(switching())
    except NotFoundError:
        raise fail(f"tenant {tenant} has no connection {connection_id!r}") from None
    except ConnectionBusyError as exc:
        raise fail(str(exc)) from None
    print(f"connection {connection_id}: {mode.value}")
    if released:
        print(f"{released} pushed document(s) held back in manual mode released")


@connections.command("remove")
def connections_remove(tenant: TenantOption, connection_id: ConnectionOption) -> None:
    """Remove a connection (published as removed on connection.updated); adding it again
    brings it back with its cursor."""
    config = settings()

    async def removing() -> None:
        async with service(config) as deps, deps.uow.transaction() as repos:
            await connection_cases.remove_connection(repos, tenant, connection_id, deps.clock())

    try:
        run(removing())
    except NotFoundError:
        raise fail(f"tenant {tenant} has no connection {connection_id!r}") from None
    except (ConnectionBusyError, ConnectionInUseError) as exc:
        raise fail(str(exc)) from None
    print(f"connection {connection_id} of tenant {tenant} removed")


@connections.command("sync")
def connections_sync(
    tenant: TenantOption,
    connection_id: ConnectionOption,
    limit: Annotated[int | None, typer.Option(min=1, help="the next N new documents")] = None,
    document: Annotated[
        list[str] | None, typer.Option(help="a document number (repeatable)")
    ] = None,
) -> None:
    """Fetch N new documents, or named ones, now (the running erp-poller does it)."""
    config = settings()

    async def queueing() -> int:
        async with service(config) as deps, deps.uow.transaction() as repos:
            await connection_cases.connection_state(repos, tenant, connection_id)
            if not limit and not document:
                raise fail("give --limit N or --document NUMBER", 2)
            request = await connection_cases.request_sync(
                repos, tenant, connection_id, limit, document or []
            )
        return request.request_id

    try:
        request_id = run(queueing())
    except NotFoundError:
        raise fail(f"tenant {tenant} has no connection {connection_id!r}") from None
    print(f"sync request {request_id} queued; the running erp-poller picks it up")


BackfillTenant = Annotated[
    str | None, typer.Option(help="refuse unless the connection is this tenant's")
]


@connections.command("backfill")
def connections_backfill(
    connection_id: Annotated[str, typer.Argument(help="the connection")],
    since: Annotated[str, typer.Option(help="ISO time (without a zone: UTC)")],
    tenant: BackfillTenant = None,
) -> None:
    """Re-read every document modified since a time (new or changed versions flow)."""
    since_at = aware(since)
    assert since_at is not None
    config = settings()

    async def queueing() -> int:
        async with service(config) as deps, deps.uow.transaction() as repos:
            connection = await repos.connections.get(connection_id, tenant)
            if connection is None:
                raise NotFoundError(connection_id)
            request = await connection_cases.request_backfill(
                repos, connection.tenant_id, connection_id, since_at
            )
        return request.request_id

    try:
        request_id = run(queueing())
    except NotFoundError:
        raise fail(f"no connection {connection_id!r}") from None
    print(
        f"backfill request {request_id} queued for {connection_id} since "
        f"{since_at.isoformat()}; the running erp-poller picks it up"
    )


@connections.command("backfills")
def connections_backfills(
    connection_id: Annotated[str, typer.Argument(help="the connection")],
    tenant: BackfillTenant = None,
) -> None:
    """A connection's backfill requests and their progress, newest first."""
    config = settings()

    async def listing() -> list[Any] | None:
        async with service(config) as deps, deps.uow.transaction() as repos:
            connection = await repos.connections.get(connection_id, tenant)
            if connection is None:
                return None
            return list(await repos.requests.backfill_requests(connection.tenant_id, connection_id))

    requests = run(listing())
    if requests is None:
        raise fail(f"no connection {connection_id!r}")
    for item in requests:
        state = (
            "running or queued"
            if item.finished_at is None
            else ("done" if item.error is None else "failed")
        )
        print(
            f"{item.request_id}  since={item.since.isoformat()}  {state}  "
            f"listed={item.listed}  emitted={item.emitted}  "
            f"attempts={item.attempts}  error={item.error}"
        )


# --------------------------------------------------------------------------------- tenants


@profile.command("set")
def profile_set(
    tenant: Annotated[str, typer.Argument(help="the tenant")],
    file: Annotated[
        str, typer.Option("--file", help="the profile as JSON (TenantProfile); - for stdin")
    ],
) -> None:
    """Create or replace a tenant's profile; a change is a new revision, published on
    tenant.updated."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{file}: {exc.strerror}", 2) from None
    try:
        new = TenantProfile.model_validate_json(text)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "(profile)"
            print(f"{ERP_POLLER}: {file}: {where}: {error['msg']}", file=sys.stderr)
        raise typer.Exit(2) from None
    config = settings()

    async def saving() -> tuple[int, bool]:
        async with service(config) as deps, deps.uow.transaction() as repos:
            stored, changed = await profile_cases.set_profile(repos, tenant, new, deps.clock())
        return stored.revision, changed

    try:
        revision, changed = run(saving())
    except InvalidInputError as exc:
        raise fail(str(exc), 2) from None
    if changed:
        print(f"profile of {tenant}: revision {revision}, published on tenant.updated")
    else:
        print(f"profile of {tenant} unchanged (revision {revision})")


@profile.command("show")
def profile_show(tenant: Annotated[str, typer.Argument(help="the tenant")]) -> None:
    """A tenant's profile and its revision, as JSON."""
    config = settings()

    async def reading() -> dict[str, Any] | None:
        async with service(config) as deps, deps.uow.transaction() as repos:
            stored = await profile_cases.stored_profile(repos, tenant)
        if stored is None:
            return None
        return {
            "tenant_id": stored.tenant_id,
            "revision": stored.revision,
            "updated_at": stored.updated_at.isoformat(),
            "profile": stored.profile.model_dump(mode="json"),
        }

    shown = run(reading())
    if shown is None:
        raise fail(f"tenant {tenant} has no profile: {SET_THE_PROFILE}")
    print(json.dumps(shown, indent=2, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    """``erp-poller``'s command line."""
    return run_cli(cli, ERP_POLLER, argv)
