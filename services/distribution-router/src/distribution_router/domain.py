"""Channel choice: the cheapest channel the recipient can take (pure rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import DocumentType, Invoice, Party, PartyType

from .smp import BIS3_CREDIT_NOTE, BIS3_INVOICE

FORMATS = {
    Channel.PEPPOL: "peppol-bis-billing-3",
    Channel.B2C_BANK: "b2c-einvoice",
    Channel.EMAIL: "pdf",
    Channel.PAPER: "print",
}
# ISO 6523 ICD of the national company registers, by country (DOMAIN: 0007 SE, 0192 NO …).
REGISTER_SCHEMES = {"SE": ("0007", 10), "NO": ("0192", 9), "DK": ("0184", 8)}


@dataclass(frozen=True)
class Route:
    """Where an invoice goes and in which format."""

    channel: Channel
    recipient: str
    document_format: str


def participant_candidates(buyer: Party) -> list[tuple[str, str]]:
    """PEPPOL identifiers to look up for a buyer, the most specific first.

    A consumer never gets a PEPPOL document; a company may be registered under its explicit
    electronic address (GLN, …) or under its national register number.
    """
    if buyer.party_type is PartyType.PRIVATE:
        return []
    out: list[tuple[str, str]] = []
    if buyer.electronic_address is not None:
        out.append((buyer.electronic_address.scheme, buyer.electronic_address.value))
    register = REGISTER_SCHEMES.get(buyer.address.country_code)
    if buyer.company_id and register is not None:
        digits = re.sub(r"\D", "", buyer.company_id)
        if len(digits) == register[1]:
            out.append((register[0], digits))
    return list(dict.fromkeys(out))


def document_type(invoice: Invoice) -> str:
    """The PEPPOL document type id of an invoice or credit note."""
    return BIS3_CREDIT_NOTE if invoice.document_type is DocumentType.CREDIT_NOTE else BIS3_INVOICE


def choose_channel(invoice: Invoice, participant: tuple[str, str] | None) -> Route:
    """e-invoice if the buyer is reachable in PEPPOL, else PDF by e-mail, else paper.

    The internet-bank channel for consumers needs the bank's registry lookup, which comes
    with the delivery adapters.
    """
    if participant is not None:
        scheme, value = participant
        return Route(Channel.PEPPOL, f"{scheme}:{value}", FORMATS[Channel.PEPPOL])
    if invoice.buyer.email:
        return Route(Channel.EMAIL, invoice.buyer.email, FORMATS[Channel.EMAIL])
    city = invoice.buyer.address.city or invoice.buyer.address.country_code
    return Route(Channel.PAPER, f"post: {city}", FORMATS[Channel.PAPER])
