"""`nordflow-sandbox <name> ...`: run one partner sandbox in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp

from nordflow_sandboxes.b2c_bank import command as b2c_bank_command
from nordflow_sandboxes.peppol_ap import command as peppol_ap_command
from nordflow_sandboxes.print_post import command as print_post_command
from nordflow_sandboxes.server import serve_forever
from nordflow_sandboxes.smtp.cli import add_arguments as _smtp_arguments
from nordflow_sandboxes.smtp.cli import build as _smtp_build


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


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {raw}")
    return value


def _visma_eaccounting_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument(
        "--client-id", help="OAuth client id of that company (generated if omitted)"
    )
    parser.add_argument("--client-secret", help="its client secret (generated if omitted)")
    parser.add_argument(
        "--rate-limit",
        type=_positive_int,
        default=600,
        help="requests per window per client and endpoint",
    )
    parser.add_argument(
        "--rate-window", type=_positive_float, default=60.0, help="sliding window in seconds"
    )
    parser.add_argument(
        "--access-token-lifetime",
        type=_positive_int,
        default=3600,
        help="seconds an access token is valid (expires_in)",
    )


def _visma_eaccounting_build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    from nordflow_sandboxes.visma_eaccounting import VismaEAccountingState, create_app

    state = VismaEAccountingState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        access_token_lifetime_seconds=args.access_token_lifetime,
    )
    facts: dict[str, str] = {}
    if args.company or args.client_id:
        company, client, refresh_token = state.create_company(
            args.company or "Sandbox AB",
            client_id=args.client_id,
            client_secret=args.client_secret,
        )
        facts = {
            "company_id": company.company_id,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "refresh_token": refresh_token,
            "bank_account_id": next(iter(company.bank_accounts)),
        }
    return create_app(state), facts


def _visma_net_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", help="name of a company to create at start")
    parser.add_argument("--token", help="bearer token of its client (generated when omitted)")
    parser.add_argument("--company-id", help="its ipp-company-id (generated when omitted)")
    parser.add_argument(
        "--rate-limit",
        type=_positive_int,
        default=15_000,
        help="requests per window per company and client",
    )
    parser.add_argument(
        "--rate-window", type=_positive_float, default=3600.0, help="fixed window in seconds"
    )
    parser.add_argument(
        "--api-timezone", default="UTC", help="time zone of lastModifiedDateTime values"
    )
    parser.add_argument(
        "--max-page-size", type=_positive_int, default=1000, help="largest page a list serves"
    )


def _visma_net_build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    from nordflow_sandboxes.visma_net import VismaNetState, create_app

    state = VismaNetState(
        rate_limit=args.rate_limit,
        rate_window_seconds=args.rate_window,
        api_timezone=args.api_timezone,
        max_page_size=args.max_page_size,
    )
    facts: dict[str, str] = {}
    if args.company or args.token or args.company_id:
        company, token = state.create_company(
            args.company or "Sandbox AS", args.token, args.company_id
        )
        facts = {"company_id": company.company_id, "token": token}
    return create_app(state), facts


def _sirvoy_arguments(parser: argparse.ArgumentParser) -> None:
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
        type=_non_negative_int,
        default=0,
        help="extra copies of every callback (at-least-once delivery)",
    )
    parser.add_argument(
        "--webhook-drop", action="store_true", help="drop every callback (missed webhooks)"
    )
    parser.add_argument(
        "--webhook-attempts",
        type=_positive_int,
        default=11,
        help="attempts per callback (1 + Sirvoy's documented 10 retries)",
    )
    parser.add_argument(
        "--webhook-backoff",
        type=_positive_float,
        default=1.0,
        help="seconds before the first retry, doubled for each further retry",
    )


def _sirvoy_build(args: argparse.Namespace) -> tuple[ASGIApp, dict[str, str]]:
    from nordflow_sandboxes.sirvoy import SirvoyState, WebhookSettings, create_app

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
    Sandbox(
        name="visma-eaccounting",
        help="Visma eAccounting API v2 (OAuth token endpoint, customers, invoices, payments)",
        default_port=8183,
        add_arguments=_visma_eaccounting_arguments,
        build=_visma_eaccounting_build,
    ),
    Sandbox(
        name="visma-net",
        help="Visma.net ERP API v1 (customers, customer invoices, customer payments)",
        default_port=8184,
        add_arguments=_visma_net_arguments,
        build=_visma_net_build,
    ),
    Sandbox(
        name="sirvoy",
        help="Sirvoy booking event webhooks, plus an assumed invoice/payment read API",
        default_port=8185,
        add_arguments=_sirvoy_arguments,
        build=_sirvoy_build,
    ),
    Sandbox(
        name="smtp",
        help="SMTP server (aiosmtpd) recording every message, with an HTTP inspection API",
        default_port=8190,
        add_arguments=_smtp_arguments,
        build=_smtp_build,
    ),
    Sandbox(
        name="peppol-ap",
        help=peppol_ap_command.HELP,
        default_port=peppol_ap_command.DEFAULT_PORT,
        add_arguments=peppol_ap_command.add_arguments,
        build=peppol_ap_command.build,
    ),
    Sandbox(
        name="print-post",
        help=print_post_command.HELP,
        default_port=print_post_command.DEFAULT_PORT,
        add_arguments=print_post_command.add_arguments,
        build=print_post_command.build,
    ),
    Sandbox(
        name="b2c-bank",
        help=b2c_bank_command.HELP,
        default_port=b2c_bank_command.DEFAULT_PORT,
        add_arguments=b2c_bank_command.add_arguments,
        build=b2c_bank_command.build,
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
