"""mapper settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.settings import ServiceSettings


class Settings(ServiceSettings):
    """mapper reads only the common settings."""
