"""PEPPOL channel: hands the UBL document to our access point, which sends it over the network.

`POST {base}/documents?sender=&receiver=&document_type=&process=&client_reference=` with the
document as the body and an `Idempotency-Key`; `GET {base}/documents?client_reference=` finds
an earlier send. The receipt's reference is the access point's transmission id.
"""

from __future__ import annotations

from typing import Final

import httpx
from nordflow_documents.peppol import organisation_number
from nordflow_schemas.events import Channel
from nordflow_schemas.invoice import Invoice
from pydantic import SecretStr

from ...domain import document_type
from ..smp import PARTICIPANT_SCHEME
from .base import Outgoing, PermanentSendError, Receipt, TransientSendError
from .partner_http import (
    IDEMPOTENCY_HEADER,
    PartnerHttp,
    client_reference,
    created_record,
    found_id,
    read_problem,
)

PARTNER: Final = "PEPPOL access point"
BIS3_PROCESS: Final = "cenbii-procid-ubl::urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
# Refusals that say the receiver cannot take this document in PEPPOL: another channel can.
_RECEIVER_CODES: Final = frozenset({"receiver_not_registered", "document_type_not_supported"})


def participant(raw: str) -> str:
    """`0007:5567321707` from that or from `iso6523-actorid-upis::0007:5567321707`."""
    value = raw.strip()
    prefix = f"{PARTICIPANT_SCHEME}::"
    return value[len(prefix) :] if value.lower().startswith(prefix) else value


def sender_participant(invoice: Invoice) -> str | None:
    """The seller's participant id: its electronic address, else its org. no. (0007/0192)."""
    address = invoice.seller.electronic_address
    if address is not None:
        return f"{address.scheme}:{address.value.strip()}"
    found = organisation_number(invoice.seller)
    return f"{found[0]}:{found[1]}" if found is not None else None


class PeppolAccessPointSender:
    """`Sender` for `Channel.PEPPOL` over an access point's REST API.

    Refusals: the receiver not registered (or not for this document type) →
    `PermanentSendError(fallback=True)`, the job tries e-mail or paper; the document refused
    (BIS 3.0 ids, syntax) → `fallback=False`, the data must be fixed. 429/5xx/timeouts →
    `TransientSendError`.
    """

    channel: Channel = Channel.PEPPOL
    can_lookup: bool = True

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = PartnerHttp(PARTNER, base_url, token, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"PeppolAccessPointSender(base_url={self._http.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def send(self, outgoing: Outgoing) -> Receipt:
        """Send the UBL document once; the access point dedupes on the idempotency key."""
        reference = client_reference(outgoing.idempotency_key)
        params = {
            "receiver": participant(outgoing.recipient),
            "document_type": document_type(outgoing.invoice),
            "process": BIS3_PROCESS,
            "client_reference": reference,
        }
        sender = sender_participant(outgoing.invoice)
        if sender is not None:
            params["sender"] = sender
        response = await self._http.request(
            "POST",
            "documents",
            creates=True,
            params=params,
            content=outgoing.document,
            headers={
                "Content-Type": outgoing.content_type or "application/xml",
                IDEMPOTENCY_HEADER: reference,
            },
        )
        if response.status_code in (200, 201):
            record = created_record(PARTNER, response)
            return Receipt(channel=self.channel, reference=str(record["id"]))
        problem = read_problem(response)
        transient = self._http.transient_refusal(response, problem, creates=True)
        if transient is not None:
            raise transient
        described = self._http.redact(problem.describe())
        if "idempotency_key_reused" in problem.codes():
            # The key was carried out for a different body (a re-rendered document): the
            # first send went through, so its receipt is the answer.
            earlier = await self.lookup(outgoing.idempotency_key)
            if earlier is not None:
                return earlier
            raise TransientSendError(f"{PARTNER}: {described}; no earlier send was found")
        if problem.codes() & _RECEIVER_CODES:
            raise PermanentSendError(
                f"{PARTNER}: {params['receiver']} cannot receive this document in PEPPOL: "
                f"{described}",
                fallback=True,
            )
        raise PermanentSendError(
            f"{PARTNER} refused the document (HTTP {response.status_code}): {described}",
            fallback=False,
        )

    async def lookup(self, idempotency_key: str) -> Receipt | None:
        """The transmission sent under this key, whatever its delivery status, or None."""
        record = await self._http.find_by_reference(
            "documents", "documents", client_reference(idempotency_key)
        )
        if record is None:
            return None
        return Receipt(channel=self.channel, reference=found_id(PARTNER, record))
