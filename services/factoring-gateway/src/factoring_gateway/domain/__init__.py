"""Pure rules of factoring-gateway: agreements, eligibility, windows, batches and formats."""
