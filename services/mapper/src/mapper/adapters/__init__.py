"""mapper's adapters: the PostgreSQL repositories (all of its SQL)."""
