"""`nordflow-sandbox factor`: the factor's flags and how to build it (for `cli.SANDBOXES`)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from starlette.types import ASGIApp

from nordflow_sandboxes.kit.command import add_seconds_argument

HELP = "factoring company: files by SFTP and an HTTPS API, receipts, settlement files"
DEFAULT_PORT = 8194


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The factor's own flags; `--host` serves all three listeners."""
    parser.add_argument("--account", help="name of a client account to create at start")
    parser.add_argument("--token", help="its API token (generated when omitted)")
    parser.add_argument("--client-number", help="its client number at the factor")
    parser.add_argument(
        "--sftp-username", default="nordflow", help="its SFTP login (password: the token)"
    )
    parser.add_argument("--sftp-port", type=int, default=2222, help="SFTP port; 0 picks one")
    parser.add_argument("--https-port", type=int, default=8443, help="HTTPS port; 0 picks one")
    parser.add_argument(
        "--trust-dir",
        type=Path,
        help="write ca.pem (the CA of the HTTPS certificate) and sftp_host_key.pub here",
    )
    parser.add_argument("--data-dir", type=Path, help="the SFTP trees (default: a temp dir)")
    add_seconds_argument(
        parser, "--receipt-delay", 0.1, "seconds a file takes to be processed (its receipt)"
    )


def build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    """The app, its listeners bound (ports known), the trust files written; the ready
    line's facts."""
    from nordflow_sandboxes.factor.app import Listeners, create_app
    from nordflow_sandboxes.factor.state import FactorState

    state = FactorState(data_dir=args.data_dir, receipt_delay=timedelta(seconds=args.receipt_delay))
    listeners = Listeners(state, args.host, args.sftp_port, args.https_port)
    facts = {
        "sftp_port": str(listeners.sftp.port),
        "https_url": listeners.https_url,
    }
    if args.trust_dir is not None:
        ca, host_key = listeners.write_trust(args.trust_dir)
        facts |= {"ca_file": str(ca), "host_key_file": str(host_key)}
    if args.account or args.token:
        account, token, extra = state.create_factor_account(
            args.account or "Sandbox Client AB",
            args.token,
            client_number=args.client_number,
            sftp_username=args.sftp_username,
        )
        facts |= {
            "account_id": account.account_id,
            "client_number": extra.client_number,
            "sftp_username": extra.sftp_username,
            "token": token,
        }
    return create_app(state, listeners), facts
