"""ledger-closer settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.crypto import EncryptionKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """What ledger-closer reads from its environment."""

    encryption_key: EncryptionKey = Field(description="Fernet key sealing stored ERP tokens")
    closing_delay_seconds: int = Field(
        default=86_400,
        ge=0,
        description="Wait after a transfer before closing the invoice in the ERP (24-48 h)",
    )
    allow_internal_urls: bool = Field(
        default=False,
        description="Let ERP connections reach loopback and private addresses (the local "
        "sandboxes); otherwise only public ones, checked after DNS",
    )
