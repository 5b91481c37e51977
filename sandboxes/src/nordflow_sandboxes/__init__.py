"""nordflow_sandboxes package."""
