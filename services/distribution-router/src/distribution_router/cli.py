"""distribution-router command line: run, migrate, dlq."""

from __future__ import annotations

from nordflow_runtime.cli import service_main

from .app import create_app


def main(argv: list[str] | None = None) -> int:
    """``distribution-router run | migrate | dlq list | dlq replay``."""
    return service_main("distribution-router", create_app, argv)
