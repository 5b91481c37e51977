"""factoring-gateway command line: the service commands plus agreement management."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg
from nordflow_runtime.cli import service_main, settings_or_exit
from nordflow_schemas.events import AgreementKind

from .app import create_app
from .config import Settings
from .domain import Agreement
from .service import set_agreement


async def _set(args: argparse.Namespace) -> None:
    app = create_app(settings_or_exit("factoring-gateway", Settings))
    await app.migrate()

    conn = await asyncpg.connect(
        app.settings.database_url.get_secret_value(),
        server_settings={"search_path": app.schema},
    )
    try:
        await set_agreement(
            conn,
            Agreement(
                tenant_id=args.tenant,
                provider=args.provider,
                kind=AgreementKind(args.kind),
                enabled=not args.disabled,
                max_age_days=args.max_age_days,
                include_credit_notes=not args.no_credit_notes,
                payment_methods=frozenset(args.payment_methods.split(","))
                if args.payment_methods
                else None,
                currencies=frozenset(args.currencies.split(",")),
            ),
        )
    finally:
        await conn.close()
    print(f"agreement for {args.tenant}: {args.kind} with {args.provider}")


def main(argv: list[str] | None = None) -> int:
    """``factoring-gateway run | migrate | dlq … | agreements set``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "agreements":
        return service_main("factoring-gateway", create_app, argv)
    parser = argparse.ArgumentParser(prog="factoring-gateway agreements")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set", help="create or replace a tenant's provider agreement")
    s.add_argument("--tenant", required=True)
    s.add_argument("--provider", required=True)
    s.add_argument("--kind", choices=[k.value for k in AgreementKind], default="factoring")
    s.add_argument("--max-age-days", type=int, default=30)
    s.add_argument("--payment-methods", help="comma-separated; default: any")
    s.add_argument("--currencies", default="SEK,NOK,EUR")
    s.add_argument("--no-credit-notes", action="store_true")
    s.add_argument("--disabled", action="store_true")
    args = parser.parse_args(argv[1:])
    asyncio.run(_set(args))
    return 0
