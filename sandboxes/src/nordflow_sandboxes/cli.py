"""`nordflow-sandbox <name> ...`: run one partner sandbox in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp

from nordflow_sandboxes.b2c_bank import command as b2c_bank
from nordflow_sandboxes.factor import command as factor
from nordflow_sandboxes.fortnox import command as fortnox
from nordflow_sandboxes.peppol_ap import command as peppol_ap
from nordflow_sandboxes.print_post import command as print_post
from nordflow_sandboxes.server import serve_forever
from nordflow_sandboxes.sirvoy import command as sirvoy
from nordflow_sandboxes.smp import command as smp
from nordflow_sandboxes.smtp import command as smtp
from nordflow_sandboxes.tripletex import command as tripletex
from nordflow_sandboxes.visma_eaccounting import command as visma_eaccounting
from nordflow_sandboxes.visma_net import command as visma_net


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


SANDBOXES: tuple[Sandbox, ...] = tuple(
    Sandbox(name, command.HELP, command.DEFAULT_PORT, command.add_arguments, command.build)
    for name, command in (
        ("fortnox", fortnox),
        ("smp", smp),
        ("visma-eaccounting", visma_eaccounting),
        ("visma-net", visma_net),
        ("sirvoy", sirvoy),
        ("tripletex", tripletex),
        ("smtp", smtp),
        ("peppol-ap", peppol_ap),
        ("print-post", print_post),
        ("b2c-bank", b2c_bank),
        ("factor", factor),
    )
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
