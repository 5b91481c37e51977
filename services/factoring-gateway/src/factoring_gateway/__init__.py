"""The factoring-gateway service."""
