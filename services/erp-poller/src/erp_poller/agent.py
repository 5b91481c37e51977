"""The on-premise agent (placeholder until the ingestion work lands)."""


def main() -> None:
    """Entry point of `nordflow-agent`."""
    raise SystemExit("nordflow-agent: not built yet")
