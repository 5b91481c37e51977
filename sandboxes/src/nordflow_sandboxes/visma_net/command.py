"""`nordflow-sandbox visma-net`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_rate_limit_arguments, positive_int
from nordflow_sandboxes.visma_net.app import create_app
from nordflow_sandboxes.visma_net.state import VismaNetState

HELP = "Visma.net ERP API v1 (customers, customer invoices, customer payments)"
DEFAULT_PORT = 8184


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Visma.net's own flags."""
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument("--token", help="bearer token of its client (generated when omitted)")
    parser.add_argument("--company-id", help="its ipp-company-id (generated when omitted)")
    add_rate_limit_arguments(parser, 15_000, 3600.0, per="company and client", kind="fixed")
    parser.add_argument(
        "--api-timezone", default="UTC", help="time zone of lastModifiedDateTime values"
    )
    parser.add_argument(
        "--max-page-size", type=positive_int, default=1000, help="largest page a list serves"
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (the start company and its client's token)."""
    state = VismaNetState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        api_timezone=args.api_timezone,
        max_page_size=args.max_page_size,
    )
    facts: dict[str, str] = {}
    if args.company or args.token or args.company_id:
        company, token = state.create_company(
            args.company or "Sandbox AS", args.token, args.company_id
        )
        facts = {"company_id": company.company_id, "token": token}
    return create_app(state), facts
