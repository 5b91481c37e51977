"""control-panel's command tree: the shared service commands, ``tokens`` and ``openapi``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.cli import new_group, run_async, run_cli, service_cli, service_pool
from nordflow_runtime.http import build_http_app
from nordflow_runtime.kafka import GroupActiveError, rewind_group
from nordflow_schemas.common import TenantId
from nordflow_schemas.topics import CONTROL_PANEL
from pydantic import TypeAdapter, ValidationError

from ..adapters.readmodel import clear_read_model
from ..adapters.tokens import PgTokenRepository
from ..app import create_app
from ..deps import Deps
from ..service import tokens as token_use_cases
from .http import api

cli = service_cli(CONTROL_PANEL, create_app)
token_group = new_group("Tokens for the web page and the API: a tenant's, or an operator's.")
cli.add_typer(token_group, name="tokens")
_TENANT = TypeAdapter(TenantId)


def _tenant(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _TENANT.validate_python(value)
    except ValidationError:
        raise click.BadParameter("not a tenant id (a-z, 0-9 and -)", param_hint="TENANT") from None


@token_group.command("create")
def tokens_create(
    tenant_id: Annotated[
        str | None, typer.Argument(metavar="[TENANT]", help="the tenant the token sees")
    ] = None,
    operator: Annotated[
        bool, typer.Option("--operator", help="an operator's token: sees every tenant")
    ] = False,
    name: Annotated[str, typer.Option("--name", help="whose or what the token is")] = "panel",
) -> None:
    """Create a token (printed once; only its hash is kept)."""
    tenant = _tenant(tenant_id)
    if operator == (tenant is not None):
        raise click.UsageError("give either a TENANT or --operator")
    if not 1 <= len(name) <= 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--name")

    async def creating() -> str:
        async with service_pool(create_app()) as pool:
            return await token_use_cases.create_token(
                PgTokenRepository(pool), tenant, operator=operator, name=name
            )

    print(run_async(creating()))


@token_group.command("revoke")
def tokens_revoke(
    name: Annotated[str, typer.Option("--name", help="the token's name")],
    tenant_id: Annotated[
        str | None, typer.Argument(metavar="[TENANT]", help="its tenant; none: an operator's")
    ] = None,
) -> None:
    """Revoke tokens by name; their sessions end at once."""
    tenant = _tenant(tenant_id)

    async def revoking() -> int:
        async with service_pool(create_app()) as pool:
            return await PgTokenRepository(pool).revoke(name, tenant)

    count = run_async(revoking())
    print(f"revoked {count} token(s)")
    if count == 0:
        raise typer.Exit(1)


async def rebuild_read_model(app: ServiceApp[Deps], group: str | None = None) -> int:
    """Rewind the panel's consumer group to the beginning of every topic, then empty the read
    model (tokens kept); the next `run` reads everything again. How many partitions."""
    rewound = await rewind_group(
        app.settings.kafka_bootstrap_servers, group or app.name, app.topics
    )
    async with service_pool(app) as pool, pool.acquire() as conn:
        await clear_read_model(conn)
    return rewound


@cli.command("rebuild")
def rebuild(
    yes: Annotated[bool, typer.Option("--yes", help="empty the read model without asking")] = False,
) -> None:
    """Read every topic again from its beginning into an empty read model (stop every
    control-panel replica first; tokens are kept)."""
    if not yes:
        raise click.UsageError("this empties the read model: give --yes")
    try:
        partitions = run_async(rebuild_read_model(create_app()))
    except GroupActiveError as exc:
        print(f"control-panel: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"read model emptied; {partitions} partitions rewound; `control-panel run` reads them")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of /api/v1 (the pages are not in it)."""
    app = build_http_app(CONTROL_PANEL, {}, [api.router])
    app.title = "Nordflow control-panel API"
    app.description = (
        "Invoices with their journeys and errors, search, statistics, connections, failed "
        "jobs and dead letters with retry and replay. Bearer tokens from "
        "`control-panel tokens create`; see docs/api/control-panel.md."
    )
    document: dict[str, Any] = app.openapi()
    return document


@cli.command("openapi")
def openapi(
    write: Annotated[
        Path | None, typer.Option("--write", help="write to this file instead of stdout")
    ] = None,
    check: Annotated[
        Path | None, typer.Option("--check", help="exit 1 if this file is not current")
    ] = None,
) -> None:
    """Print, write or check the OpenAPI document of /api/v1; needs no settings."""
    text = json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if check is not None:
        if not check.exists() or check.read_text() != text:
            print(f"stale: {check}; run `make generate` and commit the result", file=sys.stderr)
            raise typer.Exit(1)
        return
    if write is None:
        sys.stdout.write(text)
    else:
        write.write_text(text)


def main(argv: list[str] | None = None) -> int:
    """``control-panel``'s command line."""
    return run_cli(cli, CONTROL_PANEL, argv)
