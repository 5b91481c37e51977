"""`nordflow-sandbox smp`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.smp.app import SmpState, create_app

HELP = "PEPPOL SMP: participants and the document types they accept"
DEFAULT_PORT = 8182


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The SMP's own flag."""
    parser.add_argument(
        "--access-point-url",
        default="https://ap.sandbox.invalid/as4",
        help="endpoint address announced for every registered document type",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app; the SMP prints no facts."""
    return create_app(SmpState(access_point_url=args.access_point_url)), {}
