"""`nordflow-sandbox visma-eaccounting`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_rate_limit_arguments, positive_int
from nordflow_sandboxes.visma_eaccounting.app import create_app
from nordflow_sandboxes.visma_eaccounting.state import VismaEAccountingState

HELP = "Visma eAccounting API v2 (OAuth token endpoint, customers, invoices, payments)"
DEFAULT_PORT = 8183


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """eAccounting's own flags."""
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument(
        "--client-id", help="OAuth client id of that company (generated if omitted)"
    )
    parser.add_argument("--client-secret", help="its client secret (generated if omitted)")
    add_rate_limit_arguments(parser, 600, 60.0, per="client and endpoint", kind="sliding")
    parser.add_argument(
        "--access-token-lifetime",
        type=positive_int,
        default=3600,
        help="seconds an access token is valid (expires_in)",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (the start company's client, grant and bank account)."""
    state = VismaEAccountingState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        access_token_lifetime_seconds=args.access_token_lifetime,
    )
    facts: dict[str, str] = {}
    if args.company or args.client_id:
        company, client, refresh_token = state.create_company(
            args.company or "Sandbox AB",
            client_id=args.client_id,
            client_secret=args.client_secret,
        )
        facts = {
            "company_id": company.company_id,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": refresh_token,
            "bank_account_id": next(iter(company.bank_accounts)),
        }
    return create_app(state), facts
