"""Consumers' personal identity numbers on shared topics: masked in clear, sealed for the few.

A private buyer's personal number (Swedish personnummer, Norwegian fødselsnummer) is what the
canonical invoice carries in ``buyer.company_id`` (BT-47). Every topic can be read by
dashboards and the control panel, which have no use for it. So where an invoice leaves the
mapper, ``seal_invoice`` replaces it by its masked form (``******1234``) and puts the number,
encrypted with ``PERSONAL_DATA_KEY`` (Fernet: AES-128-CBC + HMAC-SHA256), in
``buyer.personal_number_sealed``. Only the services that need it hold the key and call
``open_invoice`` where the event comes in: distribution-router (the banks' B2C e-invoice
registries are keyed by it) and factoring-gateway (a factor's debtor id). See
docs/decisions/0010-personal-numbers-sealed-on-shared-topics.md.
"""

from __future__ import annotations

import re
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken
from nordflow_schemas.invoice import Invoice, PartyType
from pydantic import AfterValidator, SecretStr

from .crypto import check_key
from .errors import PermanentError


def mask_personal_number(value: str) -> str:
    """How a personal number is shown where it is not needed: its last four digits only."""
    digits = re.sub(r"\D", "", value)
    return f"******{digits[-4:]}" if digits else "******"


PersonalDataKey = Annotated[SecretStr, AfterValidator(check_key)]
"""``PERSONAL_DATA_KEY``: a Fernet key, the same in the mapper and the services that open."""


class PersonalData:
    """Seals and opens consumers' personal numbers in canonical invoices."""

    def __init__(self, key: SecretStr) -> None:
        try:
            self._fernet = Fernet(key.get_secret_value().encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("PERSONAL_DATA_KEY must be a url-safe base64 32-byte key") from exc

    def seal_invoice(self, invoice: Invoice) -> Invoice:
        """The invoice as it may travel: a private buyer's number masked and sealed."""
        buyer = invoice.buyer
        if (
            buyer.party_type is not PartyType.PRIVATE
            or not buyer.company_id
            or buyer.personal_number_sealed is not None
        ):
            return invoice
        sealed = self._fernet.encrypt(buyer.company_id.encode()).decode("ascii")
        masked = buyer.model_copy(
            update={
                "company_id": mask_personal_number(buyer.company_id),
                "personal_number_sealed": sealed,
            }
        )
        return invoice.model_copy(update={"buyer": masked})

    def open_invoice(self, invoice: Invoice) -> Invoice:
        """The invoice with its buyer's personal number in clear again (in memory only);
        one that carries none sealed is returned as it is. A number that cannot be opened
        with this key is a `PermanentError` (the record is dead-lettered, never sent on)."""
        buyer = invoice.buyer
        if buyer.personal_number_sealed is None:
            return invoice
        try:
            clear = self._fernet.decrypt(buyer.personal_number_sealed.encode()).decode()
        except (InvalidToken, ValueError):
            raise PermanentError(
                "buyer.personal_number_sealed cannot be opened with this PERSONAL_DATA_KEY"
            ) from None
        opened = buyer.model_copy(update={"company_id": clear, "personal_number_sealed": None})
        return invoice.model_copy(update={"buyer": opened})


def open_invoice(personal: PersonalData | None, invoice: Invoice) -> Invoice:
    """``personal.open_invoice(invoice)``; an invoice with a sealed number arriving where no
    ``PERSONAL_DATA_KEY`` is set is a `PermanentError` (dead-lettered, replayable once set)."""
    if invoice.buyer.personal_number_sealed is None:
        return invoice
    if personal is None:
        raise PermanentError(
            "the buyer's personal number is sealed and PERSONAL_DATA_KEY is not set"
        )
    return personal.open_invoice(invoice)
