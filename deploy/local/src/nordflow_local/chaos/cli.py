"""The harness's command line: a chaos run, recovery times, the three-broker cluster run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from nordflow_local.chaos import cluster_run, observe, recovery
from nordflow_local.chaos import run as chaos_run
from nordflow_local.chaos.workload import PROFILES
from nordflow_local.stack import Stack


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def fresh_stack(keep: bool) -> Iterator[Stack]:
    """A whole stack in a new state directory, always stopped at the end (kept on request)."""
    state_dir = Path(tempfile.mkdtemp(prefix="nordflow-chaos-"))
    state_dir.chmod(0o755)  # PostgreSQL runs as another user when we are root
    stack = Stack(state_dir, progress=None)
    try:
        _say(f"chaos: starting a fresh stack in {state_dir}")
        stack.up()
        yield stack
    finally:
        stack.down()
        if keep:
            _say(f"chaos: logs and data kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m nordflow_local.chaos",
        description="Feed invoices through a fresh local stack while services, the broker "
        "and the database crash; then check that nothing was lost, doubled or left stuck.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="one chaos run with a one-line summary")
    run.add_argument("--profile", choices=sorted(PROFILES), default="full")
    run.add_argument("--seed", type=int, default=None, help="replay the faults of a run")
    run.add_argument("--report", type=Path, default=None, help="write the outcome as JSON")
    run.add_argument("--keep", action="store_true", help="keep the state dir (logs, data)")
    run.add_argument(
        "--settlements",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the factor settles what it accepted (default: the profile's choice)",
    )
    recovery = commands.add_parser(
        "recovery", help="time each service's way back after a broker and a database restart"
    )
    recovery.add_argument("--down", type=float, default=10.0, help="seconds each stays down")
    recovery.add_argument("--keep", action="store_true", help="keep the state dir (logs, data)")
    cluster = commands.add_parser(
        "cluster",
        help="the stack on three brokers in network namespaces; kill a leader, cut one off",
    )
    cluster.add_argument("--seed", type=int, default=None)
    cluster.add_argument("--keep", action="store_true", help="keep the state dir (logs, data)")
    commands.add_parser(
        "lag",
        help="each consumer group's records not yet committed, per topic "
        "(KAFKA_BOOTSTRAP_SERVERS of the running stack: load .local/env first)",
    )
    return parser


def _lag() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        print("KAFKA_BOOTSTRAP_SERVERS is not set (load .local/env first)", file=sys.stderr)
        return 2
    for group, topics in asyncio.run(observe.lag_by_topic(bootstrap)).items():
        detail = "  ".join(f"{topic}={n}" for topic, n in topics.items())
        _say(f"{group:<22} lag={sum(topics.values()):<6} {detail}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; 0 when every invariant held."""
    args = _parser().parse_args(argv)
    # aiokafka logs every refused connection while a broker is down on purpose.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    if args.command == "lag":
        return _lag()
    if args.command == "run":
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
        profile = PROFILES[args.profile]
        if args.settlements is not None:
            profile = dataclasses.replace(profile, settlements=args.settlements)
        with fresh_stack(args.keep) as stack:
            outcome = asyncio.run(chaos_run.run(stack, profile, seed, say=_say, report=args.report))
        return 0 if outcome.ok else 1
    if args.command == "recovery":
        with fresh_stack(args.keep) as stack:
            results = [
                asyncio.run(recovery.measure(stack, target, down=args.down, say=_say))
                for target in ("kafka", "postgres")
            ]
        for result in results:
            _say(result.table())
            for exit_ in result.exits:
                _say(f"  exit: {exit_.service} pid {exit_.pid}: {exit_.log}")
        return 0 if all(not r.error for r in results) else 1
    if args.command == "cluster":
        if os.geteuid() != 0 or shutil.which("ip") is None:
            print(
                "the cluster run needs root and iproute2's `ip` (network namespaces)",
                file=sys.stderr,
            )
            return 1
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
        root = Path(tempfile.mkdtemp(prefix="nordflow-cluster-"))
        root.chmod(0o755)
        try:
            outcome = cluster_run.run_cluster(root, seed, say=_say)
        finally:
            if args.keep:
                _say(f"chaos: logs and data kept in {root}")
            else:
                shutil.rmtree(root, ignore_errors=True)
        return 0 if outcome.ok else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
