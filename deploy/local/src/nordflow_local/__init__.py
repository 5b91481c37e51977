"""nordflow_local package."""
