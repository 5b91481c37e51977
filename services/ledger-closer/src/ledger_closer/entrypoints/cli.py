"""ledger-closer's command tree: the shared service commands plus ``connections``."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from nordflow_runtime.cli import (
    new_group,
    run_async,
    run_cli,
    service_cli,
    service_pool,
    settings_or_exit,
)
from nordflow_runtime.crypto import SecretBox
from nordflow_schemas.topics import LEDGER_CLOSER

from ..adapters.repository import PgConnectionRepository
from ..app import create_app
from ..config import Settings
from ..credentials import CredentialsError, sealed_text
from ..domain import ConnectionOfAnotherTenantError, WriteConnection, WriteSystem
from ..service import add_connection

cli = service_cli(LEDGER_CLOSER, create_app)
connections = new_group("The tenants' ERP write connections (where payments are written).")
cli.add_typer(connections, name="connections")


@connections.command("add")
def connections_add(
    tenant: Annotated[str, typer.Option(help="the tenant")],
    connection_id: Annotated[str, typer.Option(help="the erp-poller connection id")],
    base_url: Annotated[str, typer.Option(help="the ERP's API base URL")],
    token_env: Annotated[
        str,
        typer.Option(
            help="env variable holding the API token, or the OAuth credentials as a JSON "
            'object ({"client_id", "client_secret", "refresh_token"[, "token_url"]}: an '
            "authorization of ledger-closer's own, never erp-poller's)"
        ),
    ],
    system: Annotated[WriteSystem, typer.Option(help="the ERP")] = WriteSystem.FORTNOX,
    mode_of_payment: Annotated[str, typer.Option(help="the ERP's mode of payment")] = "FACT",
    factoring_account: Annotated[
        int, typer.Option(help="account a closing (the factor's payment) is booked on")
    ] = 1512,
    bank_account: Annotated[
        int, typer.Option(help="account a reported payment is booked on")
    ] = 1930,
) -> None:
    """Create where payments are written for a source connection, or replace it (not its system)."""
    settings = settings_or_exit(LEDGER_CLOSER, Settings)
    token = os.environ.get(token_env)
    if not token:
        raise SystemExit(f"ledger-closer: environment variable {token_env} (the token) is empty")
    try:
        checked = sealed_text(token)
    except CredentialsError as exc:
        raise SystemExit(f"ledger-closer: {token_env}: {exc}") from None
    connection = WriteConnection(
        connection_id=connection_id,
        tenant_id=tenant,
        system=system.value,
        base_url=base_url,
        token_sealed=SecretBox(settings.encryption_key).seal(checked),
        mode_of_payment=mode_of_payment,
        factoring_account=factoring_account,
        bank_account=bank_account,
    )

    async def saving() -> None:
        async with service_pool(create_app(settings)) as pool:
            await add_connection(PgConnectionRepository(pool), connection)

    try:
        run_async(saving())
    except ConnectionOfAnotherTenantError as exc:
        print(f"ledger-closer: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"ledger connection {connection_id} for tenant {tenant}")


def main(argv: list[str] | None = None) -> int:
    """``ledger-closer``'s command line."""
    return run_cli(cli, LEDGER_CLOSER, argv)
