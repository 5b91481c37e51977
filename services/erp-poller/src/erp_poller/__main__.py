"""python -m erp_poller."""

from .entrypoints.cli import main

raise SystemExit(main())
