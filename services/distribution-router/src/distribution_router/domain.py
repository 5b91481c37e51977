"""Channel choice: the cheapest channel the recipient can take (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass

from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import Invoice, PartyType

FORMATS = {
    Channel.PEPPOL: "peppol-bis-billing-3",
    Channel.B2C_BANK: "b2c-einvoice",
    Channel.EMAIL: "pdf",
    Channel.PAPER: "print",
}


@dataclass(frozen=True)
class Route:
    """Where an invoice goes and in which format."""

    channel: Channel
    recipient: str
    document_format: str


def choose_channel(invoice: Invoice) -> Route:
    """e-invoice if the buyer has an electronic address, else PDF by e-mail, else paper.

    Consumers never get a PEPPOL document; the internet-bank channel needs the bank registry
    lookup, which arrives with the delivery adapters.
    """
    buyer = invoice.buyer
    address = buyer.electronic_address
    if address is not None and buyer.party_type is PartyType.COMPANY:
        return Route(Channel.PEPPOL, f"{address.scheme}:{address.value}", FORMATS[Channel.PEPPOL])
    if buyer.email:
        return Route(Channel.EMAIL, buyer.email, FORMATS[Channel.EMAIL])
    city = buyer.address.city or buyer.address.country_code
    return Route(Channel.PAPER, f"post: {city}", FORMATS[Channel.PAPER])
