"""Personal numbers: where a consumer's comes from, and how events and the API show it."""

from __future__ import annotations

import re

from nordflow_schemas.invoice import Party, PartyType

# Swedish personnummer/samordningsnummer: 10 or 12 digits; Norwegian fødselsnummer: 11.
_PERSONAL_NUMBER_DIGITS = {"SE": (10, 12), "NO": (11,)}


def personal_number(buyer: Party) -> str | None:
    """A consumer's personal identity number, the key of the banks' e-invoice registry.

    Rule: a PRIVATE buyer's ``company_id`` (BT-47, legal registration) carries it; Fortnox
    customers of type PRIVATE keep their personnummer in ``OrganisationNumber``, which the
    mapper puts there. Visma eAccounting and Sirvoy do not give one, so those consumers
    get no B2C channel. Only digits count; a number of the wrong length is ignored.
    """
    if buyer.party_type is not PartyType.PRIVATE or not buyer.company_id:
        return None
    digits = re.sub(r"\D", "", buyer.company_id)
    lengths = _PERSONAL_NUMBER_DIGITS.get(buyer.address.country_code, ())
    return digits if len(digits) in lengths else None


def mask_personal_number(value: str) -> str:
    """A personal number as events and the API show it: only the last four digits."""
    return f"******{value[-4:]}"
