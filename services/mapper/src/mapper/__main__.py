"""python -m mapper."""

from .entrypoints.cli import main

raise SystemExit(main())
