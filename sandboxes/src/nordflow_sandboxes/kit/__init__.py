"""What the sandboxes share: faults, state, gate, errors, admin routes, OAuth, CLI, tests."""
