"""python -m ledger_closer."""

from .cli import main

raise SystemExit(main())
