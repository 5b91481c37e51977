"""What the sandboxes' `nordflow-sandbox` subcommands share: argument types and common flags."""

from __future__ import annotations

import argparse
from typing import Any

from nordflow_sandboxes.kit.server import PartnerState


def positive_int(raw: str) -> int:
    """An argparse type: a whole number, at least 1."""
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw}")
    return value


def non_negative_int(raw: str) -> int:
    """An argparse type: a whole number, at least 0."""
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {raw}")
    return value


def positive_float(raw: str) -> float:
    """An argparse type: a number above 0."""
    value = float(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {raw}")
    return value


def non_negative_seconds(raw: str) -> float:
    """An argparse type: seconds, zero or more."""
    value = float(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {raw}")
    return value


def add_tenant_arguments(parser: argparse.ArgumentParser, noun: str) -> None:
    """`--<noun>/--token/--org-number`: a company or account to create at start."""
    article = "an" if noun[0] in "aeiou" else "a"
    parser.add_argument(f"--{noun}", help=f"name of {article} {noun} to create at start")
    parser.add_argument("--token", help=f"bearer token of that {noun} (generated when omitted)")
    parser.add_argument("--org-number", default="", help=f"organisation number of that {noun}")


def add_rate_limit_arguments(
    parser: argparse.ArgumentParser, limit: int, window: float, *, per: str, kind: str
) -> None:
    """`--rate-limit N --rate-window S`: requests allowed per window of the partner's kind."""
    parser.add_argument(
        "--rate-limit", type=positive_int, default=limit, help=f"requests per window per {per}"
    )
    parser.add_argument(
        "--rate-window", type=positive_float, default=window, help=f"{kind} window in seconds"
    )


def add_seconds_argument(
    parser: argparse.ArgumentParser,
    flag: str,
    default: float,
    help: str,  # noqa: A002
) -> None:
    """A flag taking seconds, zero or more."""
    parser.add_argument(flag, type=non_negative_seconds, default=default, help=help)


def start_account(state: PartnerState[Any], args: argparse.Namespace) -> dict[str, str]:
    """Create the account `add_tenant_arguments(…, "account")` asks for; the ready line's
    `account_id=… token=…` facts."""
    if not (args.account or args.token):
        return {}
    account, token = state.create_account(args.account or "Sandbox AB", args.token, args.org_number)
    return {"account_id": account.account_id, "token": token}
