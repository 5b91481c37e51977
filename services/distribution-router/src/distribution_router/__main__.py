"""python -m distribution_router."""

from .entrypoints.cli import main

raise SystemExit(main())
