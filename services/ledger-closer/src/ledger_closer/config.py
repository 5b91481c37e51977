"""ledger-closer settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.crypto import EncryptionKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field, model_validator

# Job kinds that run `write_concurrency` at once (invoice-order runs one at a time).
CONCURRENT_KINDS = 3


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
    write_concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Jobs of each kind (post-entry, close-invoice, book-document) a process "
        "runs at once, one per tenant; writes through one connection are one at a time in "
        "every replica",
    )
    database_pool_size: int = Field(
        default=32,
        ge=2,
        le=200,
        description="Database connections (each running job uses up to two)",
    )

    @model_validator(mode="after")
    def _enough_connections(self) -> Settings:
        """Each running job holds its transaction's connection and, for a moment, a second
        (its intent row, the rate budget, a token refresh); the consumer, the relay and the
        API need some: too few would stall every job."""
        self.require_pool(
            2 * (CONCURRENT_KINDS * self.write_concurrency + 1) + 4,
            f"WRITE_CONCURRENCY {self.write_concurrency}",
        )
        return self
