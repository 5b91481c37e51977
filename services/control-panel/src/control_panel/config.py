"""control-panel settings (env variables)."""

from __future__ import annotations

from decimal import Decimal

from nordflow_runtime.settings import ServiceSettings
from nordflow_schemas.events import Channel
from pydantic import Field


class Settings(ServiceSettings):
    """The common settings, the web session's, and the price list for cost estimates."""

    session_hours: int = Field(default=12, ge=1, le=24 * 30, description="How long a sign-in lasts")
    session_cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie over HTTPS only (false only for plain-HTTP local use)",
    )
    unit_price_peppol: Decimal = Field(default=Decimal("0.50"), ge=0, le=1000)
    unit_price_b2c_bank: Decimal = Field(default=Decimal("0.80"), ge=0, le=1000)
    unit_price_email: Decimal = Field(default=Decimal("1.00"), ge=0, le=1000)
    unit_price_paper: Decimal = Field(default=Decimal("9.50"), ge=0, le=1000)
    price_currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    distribution_router_url: str | None = Field(
        default=None,
        description="distribution-router's public base URL: the pages link its tenant API "
        "(archived documents, suggestions, holds)",
    )
    refresh_seconds: int = Field(
        default=3, ge=1, le=300, description="How often open pages fetch what is new"
    )

    def unit_prices(self) -> dict[Channel, Decimal]:
        """What one send costs per channel: the estimate for sends whose event carries no
        price (in ``price_currency``)."""
        return {
            Channel.PEPPOL: self.unit_price_peppol,
            Channel.B2C_BANK: self.unit_price_b2c_bank,
            Channel.EMAIL: self.unit_price_email,
            Channel.PAPER: self.unit_price_paper,
        }
