"""PEPPOL capability lookup: SML (DNS NAPTR) → SMP → the document types a participant accepts."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

import httpx
from lxml import etree

from ..domain.channels import BIS3_CREDIT_NOTE, BIS3_INVOICE, DOC_SCHEME

PARTICIPANT_SCHEME = "iso6523-actorid-upis"
__all__ = ["BIS3_CREDIT_NOTE", "BIS3_INVOICE", "DOC_SCHEME", "ParticipantLookup"]
PRODUCTION_SML_ZONE = "edelivery.tech.ec.europa.eu"
_SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
_NAPTR_REGEXP = re.compile(r"^!\^\.\*\$!(?P<url>[^!]+)!$")


def participant_id(scheme: str, value: str) -> str:
    """`iso6523-actorid-upis::0007:5567321707` for an ICD scheme and an identifier."""
    return f"{PARTICIPANT_SCHEME}::{scheme}:{value.strip()}"


def sml_domain(scheme: str, value: str, zone: str) -> str:
    """The DNS name whose NAPTR record points at the participant's SMP.

    Label = base32(sha256(lower-cased `scheme:value`)) without padding, then the identifier
    scheme and the SML zone, as the Peppol SML specification (BDXL) prescribes.
    """
    digest = hashlib.sha256(f"{scheme}:{value.strip()}".lower().encode()).digest()
    label = base64.b32encode(digest).decode().rstrip("=").lower()
    return f"{label}.{PARTICIPANT_SCHEME}.{zone}"


class ParticipantLookup:
    """Document types a participant can receive, cached for ``ttl`` seconds.

    With ``smp_url`` set every participant is looked up at that SMP (tests, a private
    network); otherwise the SML's DNS says which SMP serves the participant.
    """

    def __init__(
        self,
        *,
        smp_url: str | None,
        sml_zone: str = PRODUCTION_SML_ZONE,
        ttl: float = 3600.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.smp_url = smp_url.rstrip("/") if smp_url else None
        self.sml_zone = sml_zone
        self.ttl = ttl
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def document_types(self, scheme: str, value: str) -> frozenset[str]:
        """What the participant accepts (empty when it is not in the network)."""
        key = participant_id(scheme, value).lower()
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        smp = self.smp_url or await self._smp_from_sml(scheme, value)
        found = frozenset() if smp is None else await self._service_group(smp, key)
        self._cache[key] = (self.clock(), found)
        return found

    async def accepts(self, scheme: str, value: str, document_type: str) -> bool:
        """Whether the participant accepts one document type."""
        return document_type in await self.document_types(scheme, value)

    async def _service_group(self, smp: str, participant: str) -> frozenset[str]:
        response = await self.http.get(f"{smp}/{quote(participant, safe=':')}")
        if response.status_code == 404:
            return frozenset()
        response.raise_for_status()
        root = etree.fromstring(response.content)
        out = set()
        for ref in root.iterfind(f".//{{{_SMP_NS}}}ServiceMetadataReference"):
            _, _, doc = unquote(urlsplit(ref.get("href", "")).path).partition("/services/")
            if doc:
                out.add(doc)
        return frozenset(out)

    async def _smp_from_sml(self, scheme: str, value: str) -> str | None:
        import dns.asyncresolver
        import dns.exception
        import dns.resolver

        name = sml_domain(scheme, value, self.sml_zone)
        try:
            answer = await dns.asyncresolver.resolve(name, "NAPTR")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as exc:
            raise LookupError(f"SML lookup of {name} failed: {type(exc).__name__}") from exc
        for record in answer:
            if record.service.decode().lower() == "meta:smp":
                match = _NAPTR_REGEXP.match(record.regexp.decode())
                if match:
                    return match["url"].rstrip("/")
        return None
