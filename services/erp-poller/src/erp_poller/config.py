"""erp-poller settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.crypto import EncryptionKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """What erp-poller reads from its environment."""

    encryption_key: EncryptionKey = Field(description="Fernet key sealing stored ERP tokens")
    poll_interval_seconds: float = Field(default=30.0, gt=0, description="Per connection")
    poll_overlap_seconds: int = Field(
        default=120, ge=60, description="Each poll re-reads this far back (minute-grained APIs)"
    )
    scheduler_tick_seconds: float = Field(default=1.0, gt=0)
    allow_internal_urls: bool = Field(
        default=False,
        description="Let tenant API connections point at loopback or private addresses "
        "(local sandboxes only)",
    )
