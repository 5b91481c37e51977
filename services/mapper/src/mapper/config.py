"""mapper settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.personal_data import PersonalDataKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """mapper reads the common settings and the key it seals consumers' numbers with."""

    personal_data_key: PersonalDataKey | None = Field(
        default=None,
        description="Fernet key sealing consumers' personal numbers in the invoices it emits "
        "(required to run; commands that emit no invoice work without it)",
    )
    payload_retention_days: int = Field(
        default=45,
        ge=1,
        le=3650,
        description="Chunks of documents' contents that came by reference (erp.document.chunked) "
        "are deleted this long after they were last received: longer than the topics keep "
        "data (14 days) and the dead letters (30), so a replayed document still finds its "
        "content",
    )
