"""ledger-closer's command tree: the shared service commands plus ``connections``."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
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
from ..domain import (
    DEFAULT_ACCOUNTS,
    ConnectionOfAnotherTenantError,
    WriteConnection,
    WriteSystem,
    default_accounts,
)
from ..service import add_connection

cli = service_cli(LEDGER_CLOSER, create_app)
connections = new_group("The tenants' ERP write connections (where ledger-closer writes).")
cli.add_typer(connections, name="connections")


@connections.command("add")
def connections_add(
    tenant: Annotated[str, typer.Option(help="the tenant")],
    connection_id: Annotated[str, typer.Option(help="the erp-poller connection id")],
    base_url: Annotated[str, typer.Option(help="the ERP's API base URL")],
    token_env: Annotated[
        str,
        typer.Option(
            help="env variable holding the credentials: fortnox the token or ledger-closer's own "
            'OAuth grant as JSON ({"client_id", "client_secret", "refresh_token"[, '
            '"token_url"]}); visma-eaccounting its OAuth grant as JSON (plus "token_url"); '
            'visma-net {"token", "company_id"} or {"client_id", "client_secret", "tenant_id", '
            '"company_id"}; tripletex {"consumer_token", "employee_token"}'
        ),
    ],
    system: Annotated[WriteSystem, typer.Option(help="the ERP")] = WriteSystem.FORTNOX,
    country: Annotated[
        str, typer.Option(help="the chart the default accounts follow: SE (BAS) or NO")
    ] = "SE",
    mode_of_payment: Annotated[str, typer.Option(help="the ERP's mode of payment")] = "FACT",
    receivable_account: Annotated[
        int | None, typer.Option(help="customer receivables (SE 1510, NO 1500)")
    ] = None,
    factoring_account: Annotated[
        int | None, typer.Option(help="what a closing moves them to (SE 1512, NO 1510)")
    ] = None,
    bank_account: Annotated[
        int | None, typer.Option(help="where a reported payment is booked (SE 1930, NO 1920)")
    ] = None,
    fee_account: Annotated[
        int | None, typer.Option(help="a factor's fee (SE 6064, NO 7770)")
    ] = None,
    liability_account: Annotated[
        int | None, typer.Option(help="a financing advance (SE 2840, NO 2380)")
    ] = None,
) -> None:
    """Create where ledger-closer writes for a connection, or replace it (not its system)."""
    settings = settings_or_exit(LEDGER_CLOSER, Settings)
    if country.upper() not in DEFAULT_ACCOUNTS:
        raise typer.BadParameter(f"one of {sorted(DEFAULT_ACCOUNTS)}", param_hint="--country")
    token = os.environ.get(token_env)
    if not token:
        raise SystemExit(f"ledger-closer: environment variable {token_env} (the token) is empty")
    try:
        checked = sealed_text(token, system)
    except CredentialsError as exc:
        raise SystemExit(f"ledger-closer: {token_env}: {exc}") from None
    defaults = default_accounts(country)
    given = {
        "receivable": receivable_account,
        "factoring": factoring_account,
        "bank": bank_account,
        "fee": fee_account,
        "liability": liability_account,
    }
    for name, number in given.items():
        if number is not None and not 1000 <= number <= 99_999:
            raise typer.BadParameter(
                "an account number of 4 or 5 digits", param_hint=f"--{name}-account"
            )
    accounts = replace(defaults, **{k: v for k, v in given.items() if v is not None})
    connection = WriteConnection(
        connection_id=connection_id,
        tenant_id=tenant,
        system=system.value,
        base_url=base_url,
        token_sealed=SecretBox(settings.encryption_key).seal(checked),
        mode_of_payment=mode_of_payment,
        accounts=accounts,
    )

    async def saving() -> None:
        async with service_pool(create_app(settings)) as pool:
            await add_connection(PgConnectionRepository(pool), connection)

    try:
        run_async(saving())
    except ConnectionOfAnotherTenantError as exc:
        print(f"ledger-closer: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(
        f"ledger connection {connection_id} for tenant {tenant}: {system.value}, accounts "
        f"receivable {accounts.receivable}, factoring {accounts.factoring}, bank "
        f"{accounts.bank}, fee {accounts.fee}, liability {accounts.liability}"
    )


def main(argv: list[str] | None = None) -> int:
    """``ledger-closer``'s command line."""
    return run_cli(cli, LEDGER_CLOSER, argv)
