"""python -m control_panel."""

from .entrypoints.cli import main

raise SystemExit(main())
