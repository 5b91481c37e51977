"""The mapper service."""
