"""`python -m nordflow_local`: the same as the `nordflow-local` command."""

import sys

from nordflow_local.cli import main

sys.exit(main())
