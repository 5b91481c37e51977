"""`nordflow-sandbox tripletex`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_rate_limit_arguments
from nordflow_sandboxes.tripletex.app import create_app
from nordflow_sandboxes.tripletex.state import TripletexState

HELP = "Tripletex API v2 (customers, projects, products, orders, invoices)"
DEFAULT_PORT = 8186


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Tripletex's own flags."""
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument("--employee-token", help="its employee token (generated when omitted)")
    parser.add_argument(
        "--consumer-token", help="the integration's consumer token (generated when omitted)"
    )
    add_rate_limit_arguments(parser, 100, 10.0, per="company", kind="sliding")


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (the start company and its tokens)."""
    state = TripletexState(rate_limit=args.rate_limit, rate_window_seconds=args.rate_window)
    facts: dict[str, str] = {}
    if args.company or args.employee_token or args.consumer_token:
        company, employee, consumer = state.create_company(
            args.company or "Sandbox AS", args.employee_token, args.consumer_token
        )
        facts = {
            "company_id": str(company.company_id),
            "employee_token": employee,
            "consumer_token": consumer,
        }
    return create_app(state), facts
