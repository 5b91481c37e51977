"""python -m factoring_gateway."""

from .cli import main

raise SystemExit(main())
