"""`nordflow-sandbox peppol-ap`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.server import PartnerState
from nordflow_sandboxes.peppol_ap.app import create_app
from nordflow_sandboxes.peppol_ap.state import PeppolApState

HELP = "PEPPOL access point: send UBL BIS 3.0 documents to receivers found in an SMP"
DEFAULT_PORT = 8191


def non_negative_seconds(raw: str) -> float:
    """An argparse type: seconds, zero or more."""
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {raw}")
    return value


def add_account_arguments(parser: argparse.ArgumentParser) -> None:
    """`--account/--token/--org-number`: an account to create at start (any sandbox here)."""
    parser.add_argument("--account", help="name of an account to create at start")
    parser.add_argument("--token", help="bearer token of that account (generated when omitted)")
    parser.add_argument("--org-number", default="", help="organisation number of that account")


def start_account(state: PartnerState[Any], args: argparse.Namespace) -> dict[str, str]:
    """Create the account the flags ask for; the ready line's `account_id=… token=…` facts."""
    if not (args.account or args.token):
        return {}
    account, token = state.create_account(args.account or "Sandbox AB", args.token, args.org_number)
    return {"account_id": account.account_id, "token": token}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The access point's own flags."""
    add_account_arguments(parser)
    parser.add_argument(
        "--smp-url",
        default="http://127.0.0.1:8182",
        help="SMP asked about every receiver (the smp sandbox's default address)",
    )
    parser.add_argument(
        "--delivery-delay",
        type=non_negative_seconds,
        default=0.0,
        help="seconds a transmission stays 'accepted' before it is 'delivered'",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts."""
    state = PeppolApState(
        smp_url=args.smp_url, delivery_delay=timedelta(seconds=args.delivery_delay)
    )
    return create_app(state), {**start_account(state, args), "smp": state.smp_url}
