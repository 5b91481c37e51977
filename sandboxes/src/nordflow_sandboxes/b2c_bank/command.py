"""`nordflow-sandbox b2c-bank`: the flags and the app, for `cli.SANDBOXES`."""

from __future__ import annotations

import argparse
from datetime import timedelta

from starlette.types import ASGIApp

from nordflow_sandboxes.b2c_bank.app import create_app
from nordflow_sandboxes.b2c_bank.einvoices import B2cBankState, normalize_email
from nordflow_sandboxes.b2c_bank.references import personal_number
from nordflow_sandboxes.kit.command import add_seconds_argument, add_tenant_arguments, start_account

HELP = "bank e-invoice (B2C): consumer registry and e-invoices with OCR/KID"
DEFAULT_PORT = 8193


def _consumer(raw: str) -> tuple[str, str, str | None]:
    number, _, email = raw.partition(",")
    parsed = personal_number(number)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not a valid Swedish or Norwegian number: {number}")
    address = normalize_email(email) if email else None
    if email and address is None:
        raise argparse.ArgumentTypeError(f"not an e-mail address: {email}")
    return parsed[0], parsed[1], address


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bank's own flags."""
    add_tenant_arguments(parser, "account")
    add_seconds_argument(
        parser,
        "--presentation-delay",
        0.0,
        "seconds an e-invoice stays 'accepted' before it is 'presented' in the bank",
    )
    parser.add_argument(
        "--consumer",
        type=_consumer,
        action="append",
        default=[],
        metavar="PERSONAL_NUMBER[,EMAIL]",
        help="register a consumer at start, accepting all issuers (repeatable)",
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app and the ready-line facts (each start consumer's e-invoice reference)."""
    state = B2cBankState(presentation_delay=timedelta(seconds=args.presentation_delay))
    facts = start_account(state, args)
    for number, country, email in args.consumer:
        consumer = state.register_consumer(number, "SE" if country == "SE" else "NO", email=email)
        facts[f"consumer_{number}"] = consumer.efaktura_reference
    return create_app(state), facts
