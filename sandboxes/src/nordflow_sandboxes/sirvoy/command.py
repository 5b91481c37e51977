"""`nordflow-sandbox sirvoy`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import non_negative_int, positive_float, positive_int
from nordflow_sandboxes.sirvoy.app import create_app
from nordflow_sandboxes.sirvoy.domain import WebhookSettings
from nordflow_sandboxes.sirvoy.state import SirvoyState

HELP = "Sirvoy booking event webhooks, plus an assumed invoice/payment read API"
DEFAULT_PORT = 8185


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sirvoy's own flags: a start account and how webhooks are delivered."""
    parser.add_argument("--account", help="name of an account (one property) to create at start")
    parser.add_argument("--token", help="API token of that account (generated when omitted)")
    parser.add_argument(
        "--webhook-secret", help="its webhook signing secret (generated when omitted)"
    )
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="its callback URL (repeatable, max 10)"
    )
    parser.add_argument(
        "--webhook-duplicates",
        type=non_negative_int,
        default=0,
        help="extra copies of every callback (at-least-once delivery)",
    )
    parser.add_argument(
        "--webhook-drop", action="store_true", help="drop every callback (missed webhooks)"
    )
    parser.add_argument(
        "--webhook-attempts",
        type=positive_int,
        default=11,
        help="attempts per callback (1 + Sirvoy's documented 10 retries)",
    )
    parser.add_argument(
        "--webhook-backoff",
        type=positive_float,
        default=1.0,
        help="seconds before the first retry, doubled for each further retry",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (the start account, its token and webhook secret)."""
    state = SirvoyState(
        webhook_defaults=WebhookSettings(
            duplicates=args.webhook_duplicates,
            drop=args.webhook_drop,
            max_attempts=args.webhook_attempts,
            backoff_seconds=args.webhook_backoff,
        )
    )
    facts: dict[str, str] = {}
    if args.account or args.token or args.webhook_url:
        account, token = state.create_account(
            args.account or "Sandbox Hotel", args.token, args.webhook_secret, args.webhook_url
        )
        facts = {
            "account_id": account.account_id,
            "property_id": str(account.property_id),
            "token": token,
            "webhook_secret": account.webhook_secret,
        }
    return create_app(state), facts
