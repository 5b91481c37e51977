"""A PEPPOL access point's send API: check UBL BIS 3.0, ask the SMP, accept, then deliver."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.kit.admin import ADMIN_PREFIX
from nordflow_sandboxes.kit.server import (
    API_PREFIX,
    ApiError,
    FieldError,
    FieldErrors,
    add_record_routes,
    admin_account,
    build_app,
    client_reference_param,
    current_account,
    fingerprint,
    idempotency_key,
    run_idempotent,
    sha256_hex,
)
from nordflow_sandboxes.peppol_ap.state import (
    DeliveryFailure,
    PeppolApState,
    SmpUnavailableError,
    Transmission,
)
from nordflow_sandboxes.peppol_ap.ubl import (
    DOC_SCHEME,
    PROCESS_SCHEME,
    UblDocument,
    normalize_participant,
    read_ubl,
    with_scheme,
)

XML_TYPES = ("application/xml", "text/xml")


def create_app(state: PeppolApState | None = None) -> FastAPI:
    """The access-point sandbox app around `state` (a fresh default state when None)."""
    state = state or PeppolApState()
    return build_app(
        state,
        "peppol_ap",
        title="Nordflow PEPPOL access point sandbox",
        routers=[_api_router(state), _admin_router(state)],
    )


def _participant(
    field_name: str, given: str | None, from_document: str | None, errors: FieldErrors
) -> str:
    raw = given if given is not None and given.strip() else from_document
    if raw is None:
        errors.add(
            field_name,
            "missing",
            f"give ?{field_name}=ICD:identifier, or an EndpointID with schemeID in the document",
        )
        return ""
    participant = normalize_participant(raw)
    if participant is None:
        errors.add(
            field_name,
            "invalid_participant_id",
            f"{raw!r} is not an ISO 6523 participant id such as 0007:5567321707",
        )
        return ""
    return participant


def _check_envelope(
    document: UblDocument,
    query: dict[str, str | None],
    errors: FieldErrors,
) -> tuple[str, str, str, str]:
    """Sender, receiver, document type and process: given, or read from the document."""
    sender = _participant("sender", query["sender"], document.supplier_endpoint, errors)
    receiver = _participant("receiver", query["receiver"], document.customer_endpoint, errors)
    document_type = document.document_type
    given_type = query["document_type"]
    if (
        given_type
        and not errors.has("CustomizationID")
        and with_scheme(given_type, DOC_SCHEME) != document_type
    ):
        errors.add(
            "document_type",
            "document_type_mismatch",
            f"the document is {document_type!r}, not {given_type!r}",
        )
    process = document.process
    given_process = query["process"]
    if (
        given_process
        and not errors.has("ProfileID")
        and with_scheme(given_process, PROCESS_SCHEME) != process
    ):
        errors.add(
            "process",
            "process_mismatch",
            f"the document's ProfileID gives {process!r}, not {given_process!r}",
        )
    return sender, receiver, document_type, process


def _api_router(state: PeppolApState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["access point"])

    @router.post("/documents", status_code=201)
    async def send_document(
        request: Request,
        sender: str | None = None,
        receiver: str | None = None,
        document_type: str | None = None,
        process: str | None = None,
        client_reference: str | None = None,
    ) -> Response:
        """Send one UBL document (the body) to a PEPPOL participant."""
        account = current_account(request, state)
        key = idempotency_key(request)
        reference = client_reference_param(client_reference)
        payload = await request.body()
        query = {
            "sender": sender,
            "receiver": receiver,
            "document_type": document_type,
            "process": process,
        }
        request_fingerprint = fingerprint(
            "POST /documents", *(value or "" for value in query.values()), reference or "", payload
        )

        async def create() -> JSONResponse:
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type not in XML_TYPES and not media_type.endswith("+xml"):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "Send the UBL document as Content-Type: application/xml",
                    [FieldError("Content-Type", "unsupported", f"got {media_type or 'none'!r}")],
                )
            errors = FieldErrors()
            document = read_ubl(payload, errors)
            if document is None:
                raise ApiError(
                    422, "validation_failed", "The body is not a UBL 2.1 document", errors.items
                )
            from_sender, to_receiver, doc_type, doc_process = _check_envelope(
                document, query, errors
            )
            errors.raise_if_any("The document was refused: see errors")
            await _check_receiver(state, to_receiver, doc_type)
            now = state.now()
            transmission = Transmission(
                id=state.new_id("tx"),
                client_reference=reference,
                idempotency_key=key,
                sender=from_sender,
                receiver=to_receiver,
                document_type=doc_type,
                process=doc_process,
                document_id=document.document_id,
                document_kind=document.kind,
                payload=payload,
                content_sha256=sha256_hex(payload),
                received_at=now,
                deliver_at=now + state.delivery_delay,
                failure_reason=state.take_failure(account, to_receiver),
            )
            state.add_record(account, transmission)
            return JSONResponse(
                transmission.view(now),
                status_code=201,
                headers={"Location": f"{API_PREFIX}/documents/{transmission.id}"},
            )

        return await run_idempotent(state, account, key, request_fingerprint, create)

    add_record_routes(router, state, "documents", "document")
    return router


async def _check_receiver(state: PeppolApState, receiver: str, document_type: str) -> None:
    """422 unless the SMP lists `document_type` for `receiver`; 502 when it cannot be asked."""
    try:
        accepted = await state.receiver_document_types(receiver)
    except SmpUnavailableError as exc:
        raise ApiError(
            502, "smp_unavailable", f"The receiver's capabilities could not be looked up: {exc}"
        ) from exc
    if accepted is None:
        raise ApiError(
            422,
            "receiver_not_registered",
            "The receiver is not registered in the PEPPOL network",
            [
                FieldError(
                    "receiver",
                    "receiver_not_registered",
                    f"no SMP registration for {receiver}; send another way (PDF, paper)",
                )
            ],
        )
    if document_type not in accepted:
        listed = ", ".join(sorted(accepted)) or "nothing"
        raise ApiError(
            422,
            "document_type_not_supported",
            "The receiver does not accept this document type",
            [
                FieldError(
                    "receiver",
                    "document_type_not_supported",
                    f"{receiver} accepts {listed}; not {document_type}",
                )
            ],
        )


class DeliveryFailureIn(BaseModel):
    """Body of `POST /sandbox/delivery-failures`."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=1, le=10_000)
    receiver: str | None = None
    reason: str = Field(
        default="the receiving access point did not acknowledge the message",
        min_length=1,
        max_length=500,
    )


def _admin_router(state: PeppolApState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    @router.post("/delivery-failures", status_code=201)
    async def add_failure(request: Request, body: DeliveryFailureIn) -> dict[str, Any]:
        """The account's next `count` accepted transmissions end `failed`, not `delivered`."""
        account = admin_account(request, state)
        receiver = normalize_participant(body.receiver) if body.receiver else None
        failure = DeliveryFailure(body.count, receiver, body.reason)
        state.add_failure(account, failure)
        return {"delivery_failure": failure.as_json()}

    @router.get("/delivery-failures")
    async def list_failures(request: Request) -> dict[str, Any]:
        account = admin_account(request, state)
        return {"delivery_failures": [f.as_json() for f in state.failures(account)]}

    @router.delete("/delivery-failures", status_code=204)
    async def clear_failures(request: Request) -> Response:
        state.clear_failures(admin_account(request, state))
        return Response(status_code=204)

    return router
