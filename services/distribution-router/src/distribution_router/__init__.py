"""The distribution-router service."""
