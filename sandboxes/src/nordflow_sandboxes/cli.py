"""`nordflow-sandbox <name> ...`: run one partner sandbox in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp

from nordflow_sandboxes.server import serve_forever


@dataclass(frozen=True)
class Sandbox:
    """One runnable sandbox: its subcommand, its own flags, and how to build its app.

    `build` returns the ASGI app and a few `key=value` facts for the ready line
    (credentials a launcher needs, for instance). Adding a sandbox = one more entry.
    """

    name: str
    help: str
    default_port: int
    add_arguments: Callable[[argparse.ArgumentParser], None]
    build: Callable[[argparse.Namespace], tuple[ASGIApp, dict[str, str]]]


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw}")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {raw}")
    return value


def _fortnox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument("--token", help="bearer token of that company (generated when omitted)")
    parser.add_argument("--org-number", default="", help="organisation number of that company")
    parser.add_argument(
        "--rate-limit", type=_positive_int, default=25, help="requests per window per token"
    )
    parser.add_argument(
        "--rate-window", type=_positive_float, default=5.0, help="sliding window in seconds"
    )
    parser.add_argument(
        "--payments-require-booked-invoice",
        action="store_true",
        help="reject payments on invoices that are not booked yet",
    )


def _fortnox_build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    from nordflow_sandboxes.fortnox import FortnoxState, create_app

    state = FortnoxState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        payments_require_booked_invoice=args.payments_require_booked_invoice,
    )
    facts: dict[str, str] = {}
    if args.company or args.token:
        company, token = state.create_company(
            args.company or "Sandbox AB", args.token, args.org_number
        )
        facts = {"company_id": company.company_id, "token": token}
    return create_app(state), facts


def _smp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--access-point-url",
        default="https://ap.sandbox.invalid/as4",
        help="endpoint address announced for every registered document type",
    )


def _smp_build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    from nordflow_sandboxes.smp import SmpState, create_app

    return create_app(SmpState(access_point_url=args.access_point_url)), {}


SANDBOXES: tuple[Sandbox, ...] = (
    Sandbox(
        name="fortnox",
        help="Fortnox API v3 (customers, invoices, invoice payments)",
        default_port=8181,
        add_arguments=_fortnox_arguments,
        build=_fortnox_build,
    ),
    Sandbox(
        name="smp",
        help="PEPPOL SMP: participants and the document types they accept",
        default_port=8182,
        add_arguments=_smp_arguments,
        build=_smp_build,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per sandbox."""
    parser = argparse.ArgumentParser(prog="nordflow-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="sandbox", required=True, metavar="SANDBOX")
    for sandbox in SANDBOXES:
        sub = commands.add_parser(sandbox.name, help=sandbox.help, description=sandbox.help)
        sub.add_argument("--host", default="127.0.0.1", help="interface to listen on")
        sub.add_argument(
            "--port", type=int, default=sandbox.default_port, help="0 picks a free port"
        )
        sub.add_argument("--log-level", default="warning", help="uvicorn log level")
        sub.add_argument("--access-log", action="store_true", help="log every request")
        sandbox.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve the chosen sandbox until interrupted."""
    args = build_parser().parse_args(argv)
    sandbox = next(s for s in SANDBOXES if s.name == args.sandbox)
    app, facts = sandbox.build(args)

    def ready(base_url: str) -> None:
        extra = "".join(f" {key}={value}" for key, value in facts.items())
        print(f"nordflow-sandbox {sandbox.name} ready url={base_url}{extra}", flush=True)

    try:
        serve_forever(
            app,
            args.host,
            args.port,
            on_ready=ready,
            log_level=args.log_level,
            access_log=args.access_log,
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"nordflow-sandbox {sandbox.name}: cannot listen on {args.host}:{args.port}: {exc}",
            file=sys.stderr,
        )
        raise SystemExit(1) from exc
