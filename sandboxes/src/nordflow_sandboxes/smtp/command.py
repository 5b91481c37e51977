"""`nordflow-sandbox smtp`: the SMTP sandbox's flags and how to build it (for `cli.SANDBOXES`)."""

from __future__ import annotations

import argparse
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

HELP = "SMTP server (aiosmtpd) recording every message, with an HTTP inspection API"
DEFAULT_PORT = 8190
DEFAULT_SMTP_PORT = 2525


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """SMTP flags; `--host` (both servers) and `--port` (the HTTP API) are the CLI's own."""
    parser.add_argument(
        "--smtp-port", type=int, default=DEFAULT_SMTP_PORT, help="SMTP port; 0 picks a free one"
    )
    parser.add_argument(
        "--smtp-hostname",
        default="smtp.sandbox.nordflow.invalid",
        help="name the server announces in its greeting and bounces",
    )
    parser.add_argument("--username", help="require AUTH PLAIN/LOGIN with this login")
    parser.add_argument(
        "--password", help="the AUTH password (generated and printed when only --username)"
    )
    parser.add_argument(
        "--starttls", action="store_true", help="offer STARTTLS with a self-signed certificate"
    )
    parser.add_argument(
        "--require-starttls", action="store_true", help="refuse commands before STARTTLS"
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The inspection app (its lifespan serves SMTP) and the ready line's facts.

    The SMTP port is bound here, so `--smtp-port 0` shows the real port on the ready line.
    """
    from nordflow_sandboxes.smtp.app import create_app
    from nordflow_sandboxes.smtp.listener import SmtpConfig, SmtpListener
    from nordflow_sandboxes.smtp.state import SmtpState

    username: str | None = args.username
    password: str | None = args.password
    if password and not username:
        username = "sandbox"
    if username and not password:
        password = secrets.token_urlsafe(12)
    config = SmtpConfig(
        hostname=args.smtp_hostname,
        username=username,
        password=password,
        starttls=args.starttls or args.require_starttls,
        require_starttls=args.require_starttls,
    )
    state = SmtpState()
    listener = SmtpListener(state, host=args.host, port=args.smtp_port, config=config)
    facts = {"smtp_host": listener.host, "smtp_port": str(listener.port)}
    if username and password:
        # A sandbox credential, printed for launchers as the Fortnox sandbox prints its token.
        facts |= {"username": username, "password": password}
    if config.starttls:
        facts["starttls"] = "required" if config.require_starttls else "offered"
    return create_app(state, listener), facts
