"""factoring-gateway's adapters: the PostgreSQL repositories."""
