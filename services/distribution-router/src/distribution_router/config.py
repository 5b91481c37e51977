"""distribution-router settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """distribution-router reads only the common settings for now."""
