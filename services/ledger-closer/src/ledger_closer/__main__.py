"""python -m ledger_closer."""

from .entrypoints.cli import main

raise SystemExit(main())
