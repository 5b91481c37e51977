"""Channel choice and fallback: the cheapest channel the recipient can take (pure rules)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import DocumentType, Invoice, Party, PartyType

from .masking import mask_personal_number, personal_number

SEND_INVOICE = "send-invoice"  # the send job's kind; its job key is the invoice id
DOC_SCHEME = "busdox-docid-qns"
_BIS3 = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0::2.1"
# The PEPPOL document type ids of a BIS Billing 3.0 invoice and credit note (SMP lookups).
BIS3_INVOICE = (
    f"{DOC_SCHEME}::urn:oasis:names:specification:ubl:schema:xsd:Invoice-2::Invoice##{_BIS3}"
)
BIS3_CREDIT_NOTE = (
    f"{DOC_SCHEME}::urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2::CreditNote##{_BIS3}"
)

FORMATS = {
    Channel.PEPPOL: "peppol-bis-billing-3",
    Channel.B2C_BANK: "b2c-einvoice",
    Channel.EMAIL: "pdf",
    Channel.PAPER: "print",
}
# Cheapest first: the order routing tries the channels in (Channel lists them the same way).
ORDER: tuple[Channel, ...] = (Channel.PEPPOL, Channel.B2C_BANK, Channel.EMAIL, Channel.PAPER)
ELECTRONIC = frozenset({Channel.PEPPOL, Channel.B2C_BANK})
# ISO 6523 ICD of the national company registers, by country (DOMAIN: 0007 SE, 0192 NO …).
REGISTER_SCHEMES = {"SE": ("0007", 10), "NO": ("0192", 9), "DK": ("0184", 8)}


@dataclass(frozen=True)
class Route:
    """Where an invoice goes and in which format."""

    channel: Channel
    recipient: str
    document_format: str


@dataclass(frozen=True)
class Reachability:
    """What the lookups found out about one recipient, before any override."""

    participant: tuple[str, str] | None = None  # PEPPOL id registered for the document type
    b2c_registered: bool = False  # the consumer takes e-invoices in the internet bank


@dataclass(frozen=True)
class RoutePlan:
    """Every channel the recipient can take, in the order they are tried.

    The first is sent to; each later one is the fallback when the one before refuses the
    invoice for good (an e-mail bounce, a PEPPOL receiver unknown at the access point).
    ``reason`` says why an override was not followed (or None).
    """

    routes: tuple[Route, ...]
    reason: str | None = None

    @property
    def first(self) -> Route:
        """The route sent to first."""
        return self.routes[0]


def customer_key(buyer: Party) -> str:
    """How overrides, holds and suggestions name a customer.

    The seller's customer number when the ERP gives one, else the company (or personal)
    id, else the name: the same key the holds use.
    """
    return buyer.customer_number or buyer.company_id or buyer.name


def public_customer_key(key: str, buyer: Party) -> str:
    """A customer key as shared topics show it: a consumer's personal number (the key of a
    private buyer without a customer number) masked like everywhere else (decision 0010)."""
    number = personal_number(buyer)
    if number is not None and key == buyer.company_id:
        return mask_personal_number(number)
    return key


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


def available_routes(invoice: Invoice, reach: Reachability) -> tuple[Route, ...]:
    """Every channel this recipient can take, cheapest first; paper always can."""
    buyer = invoice.buyer
    out: list[Route] = []
    if reach.participant is not None:
        scheme, value = reach.participant
        out.append(Route(Channel.PEPPOL, f"{scheme}:{value}", FORMATS[Channel.PEPPOL]))
    number = personal_number(buyer)
    if reach.b2c_registered and number is not None:
        out.append(Route(Channel.B2C_BANK, number, FORMATS[Channel.B2C_BANK]))
    if buyer.email:
        out.append(Route(Channel.EMAIL, buyer.email, FORMATS[Channel.EMAIL]))
    city = buyer.address.city or buyer.address.country_code
    out.append(Route(Channel.PAPER, f"post: {city}", FORMATS[Channel.PAPER]))
    return tuple(out)


def _unreachable_reason(channel: Channel, invoice: Invoice) -> str:
    buyer = invoice.buyer
    if channel is Channel.PEPPOL:
        if buyer.party_type is PartyType.PRIVATE:
            return "override peppol not followed: the buyer is a consumer"
        return "override peppol not followed: the buyer is not registered in PEPPOL"
    if channel is Channel.B2C_BANK:
        if personal_number(buyer) is None:
            return "override b2c_bank not followed: the buyer has no personal number"
        return "override b2c_bank not followed: the consumer is not registered at the bank"
    return "override email not followed: the buyer has no e-mail address"


def plan_routes(invoice: Invoice, reach: Reachability, override: Channel | None) -> RoutePlan:
    """The channels to try in order: the override when the recipient can take it, then the
    cheapest first. An override the recipient cannot take is skipped, with the reason.
    """
    available = available_routes(invoice, reach)
    if override is None:
        return RoutePlan(available)
    chosen = [r for r in available if r.channel is override]
    if not chosen:
        return RoutePlan(available, _unreachable_reason(override, invoice))
    return RoutePlan((chosen[0], *(r for r in available if r.channel is not override)))


def choose_channel(invoice: Invoice, participant: tuple[str, str] | None) -> Route:
    """The cheapest B2B route: e-invoice if in PEPPOL, else PDF by e-mail, else paper."""
    return plan_routes(invoice, Reachability(participant=participant), None).first


def cheaper_channels(current: Channel, reach: Reachability, invoice: Invoice) -> list[Route]:
    """Routes cheaper than ``current`` this recipient could take now (for suggestions)."""
    rank = ORDER.index(current)
    return [r for r in available_routes(invoice, reach) if ORDER.index(r.channel) < rank]


def public_recipient(route: Route) -> str:
    """The recipient as events and the API show it (a personal number masked)."""
    if route.channel is Channel.B2C_BANK:
        return mask_personal_number(route.recipient)
    return route.recipient


def routes_json(routes: Sequence[Route]) -> str:
    """The route plan as stored in ``deliveries.route``."""
    return json.dumps(
        [
            {
                "channel": r.channel.value,
                "recipient": r.recipient,
                "document_format": r.document_format,
            }
            for r in routes
        ]
    )


def routes_from(value: str | list[dict[str, str]]) -> tuple[Route, ...]:
    """The stored route plan back as routes."""
    items = json.loads(value) if isinstance(value, str) else value
    return tuple(
        Route(Channel(i["channel"]), i["recipient"], i.get("document_format") or "") for i in items
    )
