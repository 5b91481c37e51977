"""Local HTTP test doubles of Nordflow's partner systems (run with `nordflow-sandbox`)."""
