"""factoring-gateway's command tree: the shared service commands plus ``agreements``."""

from __future__ import annotations

from typing import Annotated

import typer
from nordflow_runtime.cli import new_group, run_async, run_cli, service_cli, service_pool
from nordflow_schemas.events import AgreementKind
from nordflow_schemas.topics import FACTORING_GATEWAY

from ..adapters.repository import PgAgreementRepository
from ..app import create_app
from ..domain import Agreement
from ..service import set_agreement

cli = service_cli(FACTORING_GATEWAY, create_app)
agreements = new_group("The tenants' provider agreements.")
cli.add_typer(agreements, name="agreements")


def _codes(text: str | None) -> frozenset[str] | None:
    return frozenset(filter(None, (c.strip() for c in text.split(",")))) if text else None


@agreements.command("set")
def agreements_set(
    tenant: Annotated[str, typer.Option(help="the tenant")],
    provider: Annotated[str, typer.Option(help="the factor or provider's name")],
    kind: Annotated[AgreementKind, typer.Option(help="what the provider does")] = (
        AgreementKind.FACTORING
    ),
    max_age_days: Annotated[
        int, typer.Option(min=1, help="invoice date at most this many days back")
    ] = 30,
    payment_methods: Annotated[
        str | None, typer.Option(help="comma-separated; default: any payment method")
    ] = None,
    currencies: Annotated[str, typer.Option(help="comma-separated ISO codes")] = "SEK,NOK,EUR",
    no_credit_notes: Annotated[
        bool, typer.Option("--no-credit-notes", help="never transfer credit notes")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="transfer nothing")] = False,
) -> None:
    """Create or replace a tenant's provider agreement."""
    agreement = Agreement(
        tenant_id=tenant,
        provider=provider,
        kind=kind,
        enabled=not disabled,
        max_age_days=max_age_days,
        include_credit_notes=not no_credit_notes,
        payment_methods=_codes(payment_methods),
        currencies=_codes(currencies) or frozenset(),
    )

    async def saving() -> None:
        async with service_pool(create_app()) as pool:
            await set_agreement(PgAgreementRepository(pool), agreement)

    run_async(saving())
    print(f"agreement for {tenant}: {kind.value} with {provider}")


def main(argv: list[str] | None = None) -> int:
    """``factoring-gateway``'s command line."""
    return run_cli(cli, FACTORING_GATEWAY, argv)
