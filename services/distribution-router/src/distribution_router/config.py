"""distribution-router settings (env variables)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from nordflow_runtime.personal_data import PersonalDataKey
from nordflow_runtime.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator

from .adapters.smp import PRODUCTION_SML_ZONE


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

    # Delivery adapters (channels/): a channel whose URL (or SMTP host) is unset is not built.
    peppol_ap_url: str | None = Field(
        default=None, description="The PEPPOL access point's API root, e.g. https://ap/api/v1"
    )
    peppol_ap_token: SecretStr | None = Field(
        default=None, description="Bearer token of our account at the access point"
    )
    print_post_url: str | None = Field(
        default=None, description="The print-and-post provider's API root"
    )
    print_post_token: SecretStr | None = Field(
        default=None, description="Bearer token of our account at the print-and-post provider"
    )
    print_post_postage: Literal["A", "B"] = Field(
        default="B", description="Default postage: A (priority) or B (economy)"
    )
    print_post_colour: bool = Field(default=False, description="Print in colour by default")
    print_post_duplex: bool = Field(default=True, description="Print on both sides by default")
    b2c_bank_url: str | None = Field(
        default=None, description="The internet banks' e-invoice service API root"
    )
    b2c_bank_token: SecretStr | None = Field(
        default=None, description="Bearer token of our issuer account at the bank service"
    )
    delivery_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one HTTP call to a delivery partner"
    )
    smtp_host: str | None = Field(default=None, description="SMTP submission server")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = Field(default=None, description="SMTP AUTH login")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password")
    smtp_starttls: bool = Field(default=True, description="Require STARTTLS before AUTH/MAIL")
    smtp_ca_file: str | None = Field(
        default=None, description="PEM file of the CA to trust for STARTTLS (else system CAs)"
    )
    smtp_from_address: str | None = Field(
        default=None, description="The invoices' From address; required with SMTP_HOST"
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, description="SMTP socket timeout")

    # The send job (service/sending.py; deps.py and app.py read these).
    send_retry_initial_seconds: float = Field(
        default=2.0, gt=0, description="First backoff after a transient send failure"
    )
    send_retry_max_seconds: float = Field(default=600.0, gt=0, description="Send backoff cap")
    send_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=3600,
        description="A running send's lease, renewed while it runs: a send whose process "
        "died is taken up again by another replica this long after",
    )
    send_concurrency: int = Field(
        default=8, ge=1, le=64, description="Send jobs a process runs at once"
    )
    send_per_tenant: int = Field(
        default=4, ge=1, le=64, description="Of those, at most this many of one tenant"
    )
    send_per_channel: int = Field(
        default=8, ge=1, le=64, description="Sends to one partner (channel) at once"
    )
    render_processes: int = Field(
        default=2,
        ge=0,
        le=32,
        description="Processes that render documents and run the official rules (0: in the "
        "service's own process, on its event loop)",
    )
    database_pool_size: int = Field(
        default=32,
        ge=2,
        le=200,
        description="Database connections (each running send uses up to two)",
    )
    suggestion_snooze_days: float = Field(
        default=90.0, gt=0, description="Days before a cheaper-channel suggestion is repeated"
    )
    unit_price_peppol: Decimal | None = Field(
        default=None, ge=0, description="SEK per PEPPOL send when the partner gives no price"
    )
    unit_price_b2c_bank: Decimal | None = Field(
        default=None, ge=0, description="SEK per bank e-invoice when the partner gives no price"
    )
    unit_price_email: Decimal | None = Field(default=None, ge=0, description="SEK per e-mail")
    unit_price_paper: Decimal | None = Field(
        default=None, ge=0, description="SEK per letter when the provider gives no price"
    )

    @model_validator(mode="after")
    def _enough_connections(self) -> Settings:
        """Each running send holds two connections (its job's and its attempt log's), and
        the consumer, the relay and the API need some: too few would stall every send."""
        self.require_pool(
            2 * self.send_concurrency + 4, f"SEND_CONCURRENCY {self.send_concurrency}"
        )
        return self

    @model_validator(mode="after")
    def _channels_complete(self) -> Settings:
        """A channel is configured completely or not at all; the error names the variables."""
        for url, token, name in (
            (self.peppol_ap_url, self.peppol_ap_token, "PEPPOL_AP"),
            (self.print_post_url, self.print_post_token, "PRINT_POST"),
            (self.b2c_bank_url, self.b2c_bank_token, "B2C_BANK"),
        ):
            if url and (token is None or not token.get_secret_value()):
                raise ValueError(f"{name}_TOKEN is required when {name}_URL is set")
        if self.smtp_host:
            if not self.smtp_from_address:
                raise ValueError("SMTP_FROM_ADDRESS is required when SMTP_HOST is set")
            if (self.smtp_username is None) != (self.smtp_password is None):
                raise ValueError("set both SMTP_USERNAME and SMTP_PASSWORD, or neither")
        return self

    personal_data_key: PersonalDataKey | None = Field(
        default=None,
        description="Fernet key (the mapper's PERSONAL_DATA_KEY) opening consumers' sealed "
        "personal numbers in invoices; without it such an invoice is dead-lettered",
    )
