"""factoring-gateway settings (env variables)."""

from __future__ import annotations

from nordflow_runtime.crypto import EncryptionKey
from nordflow_runtime.personal_data import PersonalDataKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field


class Settings(ServiceSettings):
    """What factoring-gateway reads from its environment."""

    encryption_key: EncryptionKey = Field(
        description="Fernet key sealing the agreements' SFTP passwords, keys and API tokens"
    )
    factor_ca_file: str | None = Field(
        default=None,
        description="PEM file of the CA to trust for factor APIs over HTTPS (else system CAs)",
    )
    transfer_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Connect and request timeout towards a factor"
    )
    receipt_timeout_seconds: float = Field(
        default=60.0, gt=0, description="How long one upload run waits for a factor's receipt"
    )
    receipt_poll_seconds: float = Field(
        default=1.0, gt=0, description="Pause between two looks for a receipt over SFTP"
    )
    upload_retry_initial_seconds: float = Field(
        default=5.0, gt=0, description="First backoff of an upload that failed or had no receipt"
    )
    upload_retry_max_seconds: float = Field(default=900.0, gt=0, description="Upload backoff cap")
    settlement_poll_seconds: float = Field(
        default=3600.0, gt=0, description="How often each agreement's settlement files are read"
    )
    allow_internal_urls: bool = Field(
        default=False,
        description="Let agreements' SFTP hosts and API URLs be loopback or private addresses "
        "(the local factor sandbox); otherwise only public ones, checked after DNS (422 on the "
        "field when the name itself is internal)",
    )
    personal_data_key: PersonalDataKey | None = Field(
        default=None,
        description="Fernet key (the mapper's PERSONAL_DATA_KEY) opening consumers' sealed "
        "personal numbers in invoices; without it such an invoice is dead-lettered",
    )
