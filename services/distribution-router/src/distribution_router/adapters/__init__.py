"""distribution-router's adapters: PostgreSQL repositories, partner senders, the SMP lookup."""
