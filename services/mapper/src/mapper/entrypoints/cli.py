"""mapper's command tree: the shared service commands plus ``references`` (set, show) and
``payloads purge``."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from nordflow_references import LAYOUTS, KidAlgorithm, OcrControl, ReferenceKind, ReferencePolicy
from nordflow_runtime.cli import (
    new_group,
    run_async,
    run_cli,
    service_cli,
    service_pool,
    settings_or_exit,
)
from nordflow_schemas.topics import MAPPER

from .. import service
from ..adapters.repository import PgPayloadChunkRepository, PgReferencePolicyRepository
from ..app import create_app
from ..config import Settings
from ..domain.references import TenantReferencePolicy

cli = service_cli(MAPPER, create_app)
references = new_group("The tenants' payment-reference policies.")
cli.add_typer(references, name="references")
payloads = new_group("Documents' contents that came by reference (erp.document.chunked).")
cli.add_typer(payloads, name="payloads")


async def save_policy(policy: TenantReferencePolicy) -> None:
    """Store a policy in mapper's database (migrated first)."""
    async with service_pool(create_app(settings_or_exit(MAPPER, Settings))) as pool:
        await service.set_reference_policy(PgReferencePolicyRepository(pool), policy)


async def load_policy(tenant: str) -> TenantReferencePolicy | None:
    """A tenant's stored policy (mapper's database migrated first)."""
    async with service_pool(create_app(settings_or_exit(MAPPER, Settings))) as pool:
        return await service.reference_policy(PgReferencePolicyRepository(pool), tenant)


@references.command("set")
def references_set(
    tenant: Annotated[str, typer.Argument(help="the tenant")],
    kind: Annotated[
        ReferenceKind,
        typer.Option(help="none | se_ocr (Swedish OCR) | no_kid (Norwegian KID) | factor_layout"),
    ],
    ocr_control: Annotated[
        OcrControl, typer.Option(help="the OCR control level agreed with the bank (se_ocr)")
    ] = OcrControl.HARD,
    ocr_length: Annotated[
        list[int] | None,
        typer.Option(help="an agreed fixed length (fixed_length control; give it once or twice)"),
    ] = None,
    ocr_length_digit: Annotated[
        bool, typer.Option("--ocr-length-digit", help="OCR references carry a length digit")
    ] = False,
    kid_algorithm: Annotated[KidAlgorithm, typer.Option(help="no_kid")] = KidAlgorithm.MOD10,
    kid_length: Annotated[int | None, typer.Option(help="the agreed KID length (no_kid)")] = None,
    kid_allow_dash: Annotated[
        bool, typer.Option("--kid-allow-dash", help="accept '-' as the MOD11 check (no_kid)")
    ] = False,
    layout: Annotated[
        str | None,
        typer.Option(help=f"the factor's KID layout: {' | '.join(sorted(LAYOUTS))}"),
    ] = None,
    factoring_number: Annotated[
        str | None, typer.Option(help="the tenant's client number at the factor")
    ] = None,
) -> None:
    """Create or replace a tenant's payment-reference policy."""
    try:
        policy = TenantReferencePolicy(
            tenant_id=tenant,
            policy=ReferencePolicy(
                kind=kind,
                ocr_control=ocr_control,
                ocr_lengths=tuple(ocr_length or ()),
                ocr_length_digit=ocr_length_digit,
                kid_algorithm=kid_algorithm,
                kid_length=kid_length,
                kid_allow_dash=kid_allow_dash,
                factor_layout=layout,
            ),
            factoring_number=factoring_number,
        )
    except ValueError as exc:
        print(f"mapper references set: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    run_async(save_policy(policy))
    print(policy.describe())


@references.command("show")
def references_show(tenant: Annotated[str, typer.Argument(help="the tenant")]) -> None:
    """Print a tenant's payment-reference policy."""
    found = run_async(load_policy(tenant))
    print(found.describe() if found else f"{tenant}: no policy (country defaults)")


async def purge_chunks(days: int | None) -> tuple[int, int]:
    """Delete the chunks past the retention (mapper's database migrated first); how many,
    and the retention in days."""
    settings = settings_or_exit(MAPPER, Settings)
    retention = days or settings.payload_retention_days
    async with service_pool(create_app(settings)) as pool:
        count = await service.purge_payloads(
            PgPayloadChunkRepository(pool), dt.datetime.now(dt.UTC), retention
        )
    return count, retention


@payloads.command("purge")
def payloads_purge(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            "--older-than-days",
            min=1,
            help="delete chunks not received for this many days (default: PAYLOAD_RETENTION_DAYS)",
        ),
    ] = None,
) -> None:
    """Delete the chunks of contents that came by reference, past their retention (the
    service does it every hour too)."""
    count, days = run_async(purge_chunks(older_than_days))
    print(f"purged {count} payload chunk(s) not received for {days} days")


def main(argv: list[str] | None = None) -> int:
    """``mapper``'s command line."""
    return run_cli(cli, MAPPER, argv)
