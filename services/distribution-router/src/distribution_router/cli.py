def main() -> None:
    """Entry point placeholder replaced by the service CLI."""
