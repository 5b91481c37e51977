"""control-panel's command tree: the shared service commands, ``tokens`` and ``openapi``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from nordflow_runtime.app import ServiceApp
from nordflow_runtime.cli import run_async, run_cli, service_cli, service_pool
from nordflow_runtime.http import build_http_app
from nordflow_runtime.kafka import GroupActiveError, rewind_group
from nordflow_schemas.topics import CONTROL_PANEL

from ..adapters.readmodel import clear_read_model
from ..app import create_app
from ..deps import Deps
from .http import api

# Tokens: the runtime's model and commands (tokens create [TENANT] | --operator, list,
# revoke ID), with operators' tokens, which only the control panel issues.
cli = service_cli(CONTROL_PANEL, create_app, tenant_api=True, operator_tokens=True)


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
