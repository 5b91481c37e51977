"""python -m factoring_gateway."""

from .entrypoints.cli import main

raise SystemExit(main())
