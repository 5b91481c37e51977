"""Sirvoy sandbox: the documented booking event webhook, plus an assumed read API for polling."""

from nordflow_sandboxes.kit.state import TokenInUseError
from nordflow_sandboxes.sirvoy.app import create_app
from nordflow_sandboxes.sirvoy.domain import WebhookSettings
from nordflow_sandboxes.sirvoy.state import SirvoyState

__all__ = ["SirvoyState", "TokenInUseError", "WebhookSettings", "create_app"]
