"""`nordflow-sandbox print-post`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse
from datetime import timedelta

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_seconds_argument, add_tenant_arguments, start_account
from nordflow_sandboxes.print_post.app import create_app
from nordflow_sandboxes.print_post.letters import PrintPostState

HELP = "print and post: PDF letters printed, enveloped and posted (A/B), priced in SEK"
DEFAULT_PORT = 8192


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The print house's own flags."""
    add_tenant_arguments(parser, "account")
    add_seconds_argument(
        parser,
        "--cancellation-window",
        300.0,
        "seconds a letter can be cancelled before it is printed",
    )
    add_seconds_argument(parser, "--posting-delay", 3600.0, "seconds from printed to posted")


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts."""
    state = PrintPostState(
        cancellation_window=timedelta(seconds=args.cancellation_window),
        posting_delay=timedelta(seconds=args.posting_delay),
    )
    return create_app(state), start_account(state, args)
