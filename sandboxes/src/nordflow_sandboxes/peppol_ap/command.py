"""`nordflow-sandbox peppol-ap`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse
from datetime import timedelta

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_seconds_argument, add_tenant_arguments, start_account
from nordflow_sandboxes.peppol_ap.app import create_app
from nordflow_sandboxes.peppol_ap.state import PeppolApState

HELP = "PEPPOL access point: send UBL BIS 3.0 documents to receivers found in an SMP"
DEFAULT_PORT = 8191


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The access point's own flags."""
    add_tenant_arguments(parser, "account")
    parser.add_argument(
        "--smp-url",
        default="http://127.0.0.1:8182",
        help="SMP asked about every receiver (the smp sandbox's default address)",
    )
    add_seconds_argument(
        parser,
        "--delivery-delay",
        0.0,
        "seconds a transmission stays 'accepted' before it is 'delivered'",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts."""
    state = PeppolApState(
        smp_url=args.smp_url, delivery_delay=timedelta(seconds=args.delivery_delay)
    )
    return create_app(state), {**start_account(state, args), "smp": state.smp_url}
