"""The access point's in-memory store: transmissions per account, the SMP it asks, failures."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit
from xml.etree.ElementTree import ParseError

import httpx

from nordflow_sandboxes.kit.server import Account, PartnerState
from nordflow_sandboxes.kit.values import utc_now
from nordflow_sandboxes.peppol_ap.ubl import PARTICIPANT_SCHEME, UnsafeXmlError, parse_xml

SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
TransmissionStatus = Literal["accepted", "delivered", "failed"]


@dataclass(frozen=True)
class Transmission:
    """One document accepted for sending; it is delivered (or fails) at `deliver_at`."""

    id: str
    client_reference: str | None
    idempotency_key: str | None
    sender: str
    receiver: str
    document_type: str
    process: str
    document_id: str
    document_kind: str
    payload: bytes
    content_sha256: str
    received_at: datetime
    deliver_at: datetime
    failure_reason: str | None

    def status_at(self, now: datetime) -> TransmissionStatus:
        """`accepted` until `deliver_at`, then `delivered`, or `failed` when one was injected."""
        if now < self.deliver_at:
            return "accepted"
        return "failed" if self.failure_reason else "delivered"

    def content(self) -> tuple[bytes, str]:
        """The UBL document exactly as received."""
        return self.payload, "application/xml"

    def view(self, now: datetime) -> dict[str, Any]:
        """The transmission as `GET /api/v1/documents/{id}` shows it."""
        status = self.status_at(now)
        done = self.deliver_at.isoformat()
        return {
            "id": self.id,
            "status": status,
            "client_reference": self.client_reference,
            "sender": self.sender,
            "receiver": self.receiver,
            "document_type": self.document_type,
            "process": self.process,
            "document_id": self.document_id,
            "document_kind": self.document_kind,
            "content_sha256": self.content_sha256,
            "received_at": self.received_at.isoformat(),
            "delivered_at": done if status == "delivered" else None,
            "failed_at": done if status == "failed" else None,
            "error": (
                {"code": "delivery_failed", "message": self.failure_reason}
                if status == "failed"
                else None
            ),
        }


@dataclass
class DeliveryFailure:
    """The next `remaining` transmissions (to `receiver`, if set) will fail to be delivered."""

    remaining: int
    receiver: str | None
    reason: str

    def as_json(self) -> dict[str, Any]:
        """The admin view."""
        return {"remaining": self.remaining, "receiver": self.receiver, "reason": self.reason}


class SmpUnavailableError(Exception):
    """The SMP could not be asked (network error, timeout, unexpected answer)."""


class PeppolApState(PartnerState[Transmission]):
    """Accounts and their transmissions, plus where and how the access point asks the SMP.

    `smp_transport` lets tests put an in-process SMP app behind the lookup
    (`httpx.ASGITransport(app=nordflow_sandboxes.smp.create_app(...))`).
    """

    def __init__(
        self,
        *,
        smp_url: str = "http://127.0.0.1:8182",
        smp_transport: httpx.AsyncBaseTransport | None = None,
        smp_timeout: float = 5.0,
        delivery_delay: timedelta = timedelta(0),
        clock: Callable[[], datetime] = utc_now,
        idempotency_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        super().__init__(clock=clock, idempotency_ttl=idempotency_ttl)
        self.smp_url = smp_url.rstrip("/")
        self.smp_transport = smp_transport
        self.smp_timeout = smp_timeout
        self.delivery_delay = delivery_delay
        self._failures: dict[str, list[DeliveryFailure]] = {}
        self._tls: ssl.SSLContext | None = None
        self._smp: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    # ------------------------------------------------------------------ delivery failures

    def add_failure(self, account: Account[Transmission], failure: DeliveryFailure) -> None:
        """Queue a delivery failure for the account's next matching transmissions."""
        with self.lock:
            self._failures.setdefault(account.account_id, []).append(failure)

    def failures(self, account: Account[Transmission]) -> list[DeliveryFailure]:
        """The account's pending delivery failures."""
        with self.lock:
            return list(self._failures.get(account.account_id, []))

    def clear_failures(self, account: Account[Transmission]) -> None:
        """Drop the account's pending delivery failures."""
        with self.lock:
            self._failures.pop(account.account_id, None)

    def take_failure(self, account: Account[Transmission], receiver: str) -> str | None:
        """The reason of the first failure matching `receiver`, with one use consumed."""
        with self.lock:
            pending = self._failures.get(account.account_id, [])
            for failure in pending:
                if failure.receiver is None or failure.receiver.lower() == receiver.lower():
                    failure.remaining -= 1
                    self._failures[account.account_id] = [f for f in pending if f.remaining > 0]
                    return failure.reason
            return None

    # ----------------------------------------------------------------------- SMP lookup

    def _tls_context(self) -> ssl.SSLContext:
        """The trust store, loaded once: loading it for every lookup took ~22 ms of CPU, most
        of what a send cost the access point."""
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def _smp_client(self) -> httpx.AsyncClient:
        """One client per event loop, its connections to the SMP kept open between lookups
        (as an access point's are): a new client and connection for every lookup was about
        half of what a send cost the sandbox."""
        loop = asyncio.get_running_loop()
        if self._smp is None or self._smp[0] is not loop or self._smp[1].is_closed:
            client = httpx.AsyncClient(
                transport=self.smp_transport, timeout=self.smp_timeout, verify=self._tls_context()
            )
            self._smp = (loop, client)
        return self._smp[1]

    async def receiver_document_types(self, participant: str) -> frozenset[str] | None:
        """The document types the SMP lists for `participant` (`0007:…`); None if unknown.

        Asks `GET {smp}/iso6523-actorid-upis::{participant}` and reads the document type
        out of each ServiceMetadataReference href (`…/services/{document type}`).
        """
        url = f"{self.smp_url}/{quote(f'{PARTICIPANT_SCHEME}::{participant}', safe=':')}"
        try:
            response = await self._smp_client().get(url)
        except httpx.HTTPError as exc:
            raise SmpUnavailableError(f"{type(exc).__name__} asking {url}") from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SmpUnavailableError(f"the SMP answered HTTP {response.status_code}")
        try:
            root = parse_xml(response.content)
        except (UnsafeXmlError, ParseError) as exc:
            raise SmpUnavailableError(f"the SMP answered unreadable XML: {exc}") from exc
        found = set()
        for ref in root.iter(f"{{{SMP_NS}}}ServiceMetadataReference"):
            path = unquote(urlsplit(ref.get("href", "")).path)
            _, _, document_type = path.partition("/services/")
            if document_type:
                found.add(document_type)
        return frozenset(found)
