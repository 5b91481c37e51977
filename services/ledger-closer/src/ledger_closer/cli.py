"""ledger-closer command line: the service commands plus ERP write connections."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncpg
from nordflow_runtime.cli import service_main, settings_or_exit
from nordflow_runtime.crypto import SecretBox

from .app import create_app
from .config import Settings
from .credentials import CredentialsError, sealed_text
from .repository import upsert_connection


async def _add(args: argparse.Namespace) -> None:
    settings = settings_or_exit("ledger-closer", Settings)
    token = os.environ.get(args.token_env)
    if not token:
        raise SystemExit(
            f"ledger-closer: environment variable {args.token_env} (the token) is empty"
        )
    try:
        sealed_value = sealed_text(token)
    except CredentialsError as exc:
        raise SystemExit(f"ledger-closer: {args.token_env}: {exc}") from None
    app = create_app(settings)
    await app.migrate()
    conn = await asyncpg.connect(
        settings.database_url.get_secret_value(), server_settings={"search_path": app.schema}
    )
    try:
        await upsert_connection(
            conn,
            connection_id=args.connection_id,
            tenant_id=args.tenant,
            system=args.system,
            base_url=args.base_url,
            token_sealed=SecretBox(settings.encryption_key).seal(sealed_value),
            mode_of_payment=args.mode_of_payment,
            factoring_account=args.factoring_account,
            bank_account=args.bank_account,
        )
    finally:
        await conn.close()
    print(f"ledger connection {args.connection_id} for tenant {args.tenant}")


def main(argv: list[str] | None = None) -> int:
    """``ledger-closer run | migrate | dlq … | connections add``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "connections":
        return service_main("ledger-closer", create_app, argv)
    parser = argparse.ArgumentParser(prog="ledger-closer connections")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="where to write payments for a source connection")
    add.add_argument("--tenant", required=True)
    add.add_argument("--connection-id", required=True, help="the erp-poller connection id")
    add.add_argument("--system", choices=["fortnox"], default="fortnox")
    add.add_argument("--base-url", required=True)
    add.add_argument(
        "--token-env",
        required=True,
        help="env variable holding the API token, or the OAuth credentials as a JSON object "
        '({"client_id", "client_secret", "refresh_token"[, "token_url"]}: an authorization '
        "of ledger-closer's own, never erp-poller's)",
    )
    add.add_argument("--mode-of-payment", default="FACT")
    add.add_argument("--factoring-account", type=int, default=1512)
    add.add_argument("--bank-account", type=int, default=1930)
    args = parser.parse_args(argv[1:])
    try:
        asyncio.run(_add(args))
    except PermissionError as exc:
        print(f"ledger-closer: {exc}", file=sys.stderr)
        return 1
    return 0
