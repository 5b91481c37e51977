"""E-mail channel: the invoice PDF (and any attachments) by SMTP, through `EmailSender`.

SMTP cannot be asked whether it has a message, so `can_lookup` is False: an attempt whose
answer was lost raises `TransientSendError(maybe_delivered=True)` and the job must not repeat
it. Every attempt of one delivery carries the same Message-ID (from the idempotency key), which
is the receipt's reference and what an operator searches the provider's log for.
"""

from __future__ import annotations

import asyncio
import re
from typing import Final, Literal

from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import DocumentType, Invoice

from ..email_sender import (
    DeliveryError,
    EmailAttachment,
    EmailSender,
    PermanentDeliveryError,
    SmtpAuthenticationError,
    SmtpConfigurationError,
    message_id_for,
)
from .base import Outgoing, PermanentSendError, Receipt, SendError, TransientSendError

Language = Literal["sv", "nb", "en"]
PDF: Final = "application/pdf"
# One address, no display name: what the router takes from BT-58 (buyer's e-mail).
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")

_SUBJECT: Final[dict[Language, dict[DocumentType, str]]] = {
    "sv": {DocumentType.INVOICE: "Faktura", DocumentType.CREDIT_NOTE: "Kreditfaktura"},
    "nb": {DocumentType.INVOICE: "Faktura", DocumentType.CREDIT_NOTE: "Kreditnota"},
    "en": {DocumentType.INVOICE: "Invoice", DocumentType.CREDIT_NOTE: "Credit note"},
}
_FROM: Final[dict[Language, str]] = {"sv": "från", "nb": "fra", "en": "from"}
_BODY: Final[dict[Language, str]] = {
    "sv": (
        "Hej!\n\nBifogat finns {kind} {number} från {seller} som PDF.\n{due}\n"
        "Vänliga hälsningar\n{seller}\n"
    ),
    "nb": (
        "Hei!\n\nVedlagt er {kind} {number} fra {seller} som PDF.\n{due}\n"
        "Vennlig hilsen\n{seller}\n"
    ),
    "en": (
        "Hello,\n\nPlease find attached {kind} {number} from {seller} as a PDF.\n{due}\n"
        "Kind regards\n{seller}\n"
    ),
}
_DUE: Final[dict[Language, str]] = {
    "sv": "Förfallodag: {date}.\n",
    "nb": "Forfallsdato: {date}.\n",
    "en": "Due date: {date}.\n",
}


def language_for(invoice: Invoice) -> Language:
    """The buyer's language, as the PDF uses it: Swedish for SE, Norwegian for NO, else English."""
    country = invoice.buyer.address.country_code
    return "sv" if country == "SE" else "nb" if country == "NO" else "en"


def subject_for(invoice: Invoice) -> str:
    """`Faktura 10042 från Säljare AB` in the buyer's language, on one line."""
    language = language_for(invoice)
    kind = _SUBJECT[language][invoice.document_type]
    return " ".join(f"{kind} {invoice.number} {_FROM[language]} {invoice.seller.name}".split())


def body_for(invoice: Invoice) -> str:
    """The short plain-text body; the PDF is the invoice."""
    language = language_for(invoice)
    kind = _SUBJECT[language][invoice.document_type]
    due = (
        _DUE[language].format(date=invoice.due_date.isoformat())
        if invoice.due_date is not None and invoice.document_type is DocumentType.INVOICE
        else ""
    )
    return _BODY[language].format(
        kind=kind.lower(),
        number=invoice.number,
        seller=" ".join(invoice.seller.name.split()),
        due=due,
    )


def default_message_id_domain(from_address: str) -> str:
    """The right-hand side of our Message-IDs: the sender's domain, else `nordflow`."""
    domain = from_address.rpartition("@")[2].strip().rstrip(">").lower()
    return domain if _DOMAIN.match(domain) else "nordflow"


class EmailChannelSender:
    """`Sender` for `Channel.EMAIL`, wrapping one `EmailSender` (one SMTP submission account).

    Errors: the recipient refused (5xx at RCPT or for the message: a hard bounce) →
    `PermanentSendError(fallback=True)`, the job posts a letter instead; our SMTP settings
    wrong (credentials, sender address, STARTTLS, certificate) → `TransientSendError` whose
    message names the setting to fix (the job retries until an operator has fixed it);
    4xx, timeouts and dropped connections → `TransientSendError`, with `maybe_delivered` when
    the whole message had been sent.
    """

    channel: Channel = Channel.EMAIL
    can_lookup: bool = False

    def __init__(self, sender: EmailSender, *, message_id_domain: str | None = None) -> None:
        self._sender = sender
        self.message_id_domain = message_id_domain or default_message_id_domain(sender.from_address)

    def __repr__(self) -> str:
        return f"EmailChannelSender({self._sender!r})"

    async def aclose(self) -> None:
        """QUIT the SMTP sessions kept for the next sends."""
        await asyncio.to_thread(self._sender.close)

    def message_id(self, idempotency_key: str) -> str:
        """The Message-ID every attempt of this delivery carries."""
        return message_id_for(idempotency_key, self.message_id_domain)

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Send the e-mail once; see the class docstring for what each error means."""
        to = outgoing.recipient.strip()
        if not _ADDRESS.match(to):
            raise PermanentSendError(
                f"recipient: {outgoing.recipient!r} is not one e-mail address", fallback=True
            )
        if outgoing.content_type.split(";")[0].strip().lower() != PDF:
            raise PermanentSendError(
                f"the e-mail channel sends the invoice as a PDF, not {outgoing.content_type!r}",
                fallback=False,
            )
        message_id = self.message_id(outgoing.idempotency_key)
        failure: SendError | None = None
        try:
            result = await self._sender.send_invoice(
                to=to,
                subject=subject_for(outgoing.invoice),
                body_text=body_for(outgoing.invoice),
                pdf=outgoing.document,
                pdf_name=outgoing.filename,
                attachments=[
                    EmailAttachment(a.filename, a.content, a.content_type)
                    for a in outgoing.attachments
                ],
                message_id=message_id,
            )
        except DeliveryError as error:
            failure = _send_error(error, self._sender)
        except ValueError as error:
            # A header value that cannot be sent (a line break in a file name, a bad MIME type).
            failure = PermanentSendError(f"the e-mail cannot be built: {error}", fallback=False)
        if failure is not None:
            # Raised outside the except clauses: no chain leads back to the SMTP exchange.
            raise failure
        return Receipt(channel=self.channel, reference=result.message_id)

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """Never answers: an SMTP server cannot be asked (`can_lookup` is False)."""
        raise NotImplementedError(
            "SMTP cannot be asked whether it took a message; the send job must not call "
            f"lookup for the e-mail channel (Message-ID {self.message_id(idempotency_key)})"
        )


def _send_error(error: DeliveryError, sender: EmailSender) -> SendError:
    """The contract's error for an `EmailSender` error (whose texts are already redacted)."""
    if isinstance(error, SmtpAuthenticationError):
        return TransientSendError(
            f"the SMTP server {sender.host}:{sender.port} refused our login ({error}); "
            "check SMTP_USERNAME and SMTP_PASSWORD (and SMTP_STARTTLS: many servers only offer "
            "AUTH over TLS)"
        )
    if isinstance(error, SmtpConfigurationError):
        return TransientSendError(
            f"the SMTP settings do not work with {sender.host}:{sender.port} ({error}); "
            "check SMTP_HOST, SMTP_PORT, SMTP_STARTTLS, SMTP_CA_FILE and SMTP_FROM_ADDRESS"
        )
    if isinstance(error, PermanentDeliveryError):
        return PermanentSendError(
            f"the recipient's mail server refused the e-mail ({error})", fallback=True
        )
    return TransientSendError(str(error), maybe_delivered=error.maybe_delivered)
