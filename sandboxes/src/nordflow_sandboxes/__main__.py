"""`python -m nordflow_sandboxes ...` runs the same CLI as `nordflow-sandbox`."""

from nordflow_sandboxes.cli import main

main()
