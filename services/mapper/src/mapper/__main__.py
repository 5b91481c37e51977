"""python -m mapper."""

from .cli import main

raise SystemExit(main())
