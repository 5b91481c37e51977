"""factoring-gateway settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """factoring-gateway reads only the common settings for now."""
