"""PostgreSQL adapters of control-panel (all of its SQL)."""
