"""`nordflow-sandbox fortnox`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.fortnox.app import create_app
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.kit.command import add_rate_limit_arguments, add_tenant_arguments

HELP = "Fortnox API v3 (customers, invoices, payments, articles, projects, orders, vouchers)"
DEFAULT_PORT = 8181


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Fortnox's own flags."""
    add_tenant_arguments(parser, "company")
    add_rate_limit_arguments(parser, 25, 5.0, per="token", kind="sliding")
    parser.add_argument(
        "--payments-require-booked-invoice",
        action="store_true",
        help="reject payments on invoices that are not booked yet",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (the start company and its token)."""
    state = FortnoxState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        payments_require_booked_invoice=args.payments_require_booked_invoice,
    )
    facts: dict[str, str] = {}
    if args.company or args.token:
        company, token = state.create_company(
            args.company or "Sandbox AB", args.token, args.org_number
        )
        facts = {"company_id": company.company_id, "token": token}
    return create_app(state), facts
