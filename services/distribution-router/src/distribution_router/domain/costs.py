"""What a send costs: the partner's price when it gives one, else the channel's unit price."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from nordflow_schemas.events import Channel
from nordflow_schemas.money import money

COST_CURRENCY = "SEK"
"""The currency of every cost recorded: the unit prices and the print partner's price list."""

# What one send costs when the partner does not say (SEK); settings may replace each one.
DEFAULT_UNIT_PRICES: Mapping[Channel, Decimal] = {
    Channel.PEPPOL: Decimal("0.50"),
    Channel.B2C_BANK: Decimal("0.80"),
    Channel.EMAIL: Decimal("1.00"),
    Channel.PAPER: Decimal("9.50"),
}


def unit_prices(configured: Mapping[Channel, Decimal | None]) -> dict[Channel, Decimal]:
    """The defaults, each replaced by a configured price where one is given."""
    out = dict(DEFAULT_UNIT_PRICES)
    for channel, value in configured.items():
        if value is not None:
            out[channel] = Decimal(str(value))
    return out


def send_cost(
    partner_price: Decimal | None, channel: Channel, prices: Mapping[Channel, Decimal]
) -> Decimal:
    """The cost recorded for an accepted send (``COST_CURRENCY``), to the öre."""
    return money(partner_price if partner_price is not None else prices[channel])
