"""distribution-router settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.settings import ServiceSettings
from pydantic import Field

from .smp import PRODUCTION_SML_ZONE


class Settings(ServiceSettings):
    """What distribution-router reads from its environment."""

    smp_url: str | None = Field(
        default=None,
        description="Ask this SMP about every participant instead of resolving it via the SML",
    )
    sml_zone: str = Field(default=PRODUCTION_SML_ZONE, description="SML DNS zone")
    participant_cache_seconds: float = Field(
        default=3600.0, gt=0, description="How long a capability lookup is trusted"
    )
