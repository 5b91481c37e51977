"""nordflow_runtime package."""
