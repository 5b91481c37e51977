"""SMP 1.x read API (ServiceGroup, ServiceMetadata) plus an admin API to register participants."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from nordflow_sandboxes.kit.admin import admin_router

SCHEME = "iso6523-actorid-upis"
DOC_SCHEME = "busdox-docid-qns"
SMP_NS = "http://busdox.org/serviceMetadata/publishing/1.0/"
ID_NS = "http://busdox.org/transport/identifiers/1.0/"
WSA_NS = "http://www.w3.org/2005/08/addressing"
BIS3_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
TRANSPORT = "peppol-transport-as4-v2_0"


@dataclass
class SmpState:
    """Registered participants: lower-cased `scheme::value` → document type ids."""

    access_point_url: str = "https://ap.sandbox.invalid/as4"
    participants: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, participant: str, document_types: list[str]) -> None:
        """Create or replace a participant's capabilities."""
        with self.lock:
            self.participants[participant.lower()] = list(document_types)

    def remove(self, participant: str) -> bool:
        """Unregister; False if it was not registered."""
        with self.lock:
            return self.participants.pop(participant.lower(), None) is not None

    def lookup(self, participant: str) -> list[str] | None:
        """The document types of a participant, or None."""
        with self.lock:
            found = self.participants.get(participant.lower())
            return None if found is None else list(found)


class Registration(BaseModel):
    """Body of `PUT /admin/participants/{participant id}`."""

    document_types: list[str] = Field(
        min_length=1, description="e.g. busdox-docid-qns::urn:oasis:…:Invoice-2::Invoice##…::2.1"
    )


def _split(identifier: str, scheme: str) -> str:
    """`scheme::value` → value (the scheme is required and must be the expected one)."""
    prefix = f"{scheme}::"
    if not identifier.lower().startswith(prefix):
        raise ValueError(f"identifier must start with {prefix!r}")
    return identifier[len(prefix) :]


def _not_found(what: str) -> Response:
    return Response(f"<error>{escape(what)} not found</error>", 404, media_type="text/xml")


def create_app(state: SmpState | None = None) -> FastAPI:
    """The SMP sandbox app."""
    state = state or SmpState()
    app = FastAPI(title="Nordflow SMP sandbox")
    app.state.smp = state
    app.include_router(admin_router())

    @app.put("/admin/participants/{participant:path}")
    async def register(participant: str, body: Registration) -> JSONResponse:
        participant = unquote(participant)
        try:
            _split(participant, SCHEME)
            for doc in body.document_types:
                _split(doc, DOC_SCHEME)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        state.register(participant, body.document_types)
        return JSONResponse({"participant": participant, "document_types": body.document_types})

    @app.delete("/admin/participants/{participant:path}")
    async def unregister(participant: str) -> Response:
        if not state.remove(unquote(participant)):
            return JSONResponse({"error": "not registered"}, 404)
        return Response(status_code=204)

    @app.get("/{path:path}")
    async def read(path: str, request: Request) -> Response:
        path = unquote(path)
        participant, _, rest = path.partition("/services/")
        try:
            value = _split(participant, SCHEME)
        except ValueError:
            return _not_found(participant or "resource")
        documents = state.lookup(participant)
        if documents is None:
            return _not_found(participant)
        base = str(request.base_url).rstrip("/")
        if not rest:
            refs = "".join(
                f'<smp:ServiceMetadataReference href="{escape(base)}/'
                f'{quote(participant, safe="")}/services/{quote(doc, safe="")}"/>'
                for doc in documents
            )
            xml = (
                f'<smp:ServiceGroup xmlns:smp="{SMP_NS}" xmlns:id="{ID_NS}">'
                f'<id:ParticipantIdentifier scheme="{SCHEME}">{escape(value)}'
                "</id:ParticipantIdentifier>"
                f"<smp:ServiceMetadataReferenceCollection>{refs}"
                "</smp:ServiceMetadataReferenceCollection></smp:ServiceGroup>"
            )
            return Response(xml, media_type="text/xml")
        if rest not in documents:
            return _not_found(rest)
        doc_value = _split(rest, DOC_SCHEME)
        xml = (
            f'<smp:SignedServiceMetadata xmlns:smp="{SMP_NS}" xmlns:id="{ID_NS}" '
            f'xmlns:wsa="{WSA_NS}"><smp:ServiceMetadata><smp:ServiceInformation>'
            f'<id:ParticipantIdentifier scheme="{SCHEME}">{escape(value)}'
            "</id:ParticipantIdentifier>"
            f'<id:DocumentIdentifier scheme="{DOC_SCHEME}">{escape(doc_value)}'
            "</id:DocumentIdentifier><smp:ProcessList><smp:Process>"
            f'<id:ProcessIdentifier scheme="cenbii-procid-ubl">{BIS3_PROCESS}'
            "</id:ProcessIdentifier><smp:ServiceEndpointList>"
            f'<smp:Endpoint transportProfile="{TRANSPORT}"><wsa:EndpointReference>'
            f"<wsa:Address>{escape(state.access_point_url)}</wsa:Address>"
            "</wsa:EndpointReference><smp:RequireBusinessLevelSignature>false"
            "</smp:RequireBusinessLevelSignature></smp:Endpoint></smp:ServiceEndpointList>"
            "</smp:Process></smp:ProcessList></smp:ServiceInformation></smp:ServiceMetadata>"
            "</smp:SignedServiceMetadata>"
        )
        return Response(xml, media_type="text/xml")

    return app
