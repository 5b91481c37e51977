"""python -m erp_poller."""

from .cli import main

raise SystemExit(main())
