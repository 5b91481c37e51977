"""Nordflow control-panel: every invoice's journey and every error, in a web page and an API."""
