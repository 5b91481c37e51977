"""python -m distribution_router."""

from .cli import main

raise SystemExit(main())
