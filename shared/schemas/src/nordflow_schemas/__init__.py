"""nordflow_schemas package."""
