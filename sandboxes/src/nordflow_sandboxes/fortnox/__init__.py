"""Fortnox API v3 sandbox: a faithful in-memory test double of Fortnox's REST API."""

from nordflow_sandboxes.fortnox.app import create_app
from nordflow_sandboxes.fortnox.state import FortnoxState
from nordflow_sandboxes.kit.state import TokenInUseError

__all__ = ["FortnoxState", "TokenInUseError", "create_app"]
