"""distribution-router command line: run, migrate, dlq, tokens."""

from __future__ import annotations

from nordflow_runtime.cli import service_main

from .app import create_app


def main(argv: list[str] | None = None) -> int:
    """``distribution-router run | migrate | dlq list | dlq replay | tokens create``."""
    return service_main("distribution-router", create_app, argv, tenant_api=True)
