"""`python -m nordflow_local.chaos`: the fault harness (`make chaos`)."""

from nordflow_local.chaos.cli import main

raise SystemExit(main())
