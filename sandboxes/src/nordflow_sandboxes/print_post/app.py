"""A print-and-post provider's letter API: upload a PDF with an address, get a priced letter."""

from __future__ import annotations

import email.policy
import json
from email import message_from_bytes
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
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
    current_account,
    fingerprint,
    idempotency_key,
    run_idempotent,
    sha256_hex,
)
from nordflow_sandboxes.print_post.letters import Letter, PrintPostState, validate_order
from nordflow_sandboxes.print_post.pricing import MAX_SHEETS, quote

MAX_BODY_BYTES = 12 * 1024 * 1024


def create_app(state: PrintPostState | None = None) -> FastAPI:
    """The print-and-post sandbox app around `state` (a fresh default state when None)."""
    state = state or PrintPostState()
    return build_app(
        state,
        "print_post",
        title="Nordflow print-and-post sandbox",
        routers=[_api_router(state), _admin_router(state)],
    )


def parse_form(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a `multipart/form-data` body by name (415 when it is not one)."""
    if (
        not content_type.lower().startswith("multipart/form-data")
        or "boundary=" not in content_type
    ):
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send multipart/form-data with a 'file' part (the PDF) and a 'metadata' part (JSON)",
            [FieldError("Content-Type", "unsupported", f"got {content_type or 'none'!r}")],
        )
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = message_from_bytes(header + body, policy=email.policy.HTTP)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes) and name not in parts:
            parts[name] = payload
    return parts


def _metadata(raw: bytes | None, errors: FieldErrors) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        errors.add("metadata", "invalid_json", f"metadata is not JSON: {exc}")
        return None


def _api_router(state: PrintPostState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["letters"])

    @router.post("/letters", status_code=201)
    async def send_letter(request: Request) -> Response:
        """Print, envelope and post one PDF to the address in the metadata."""
        account = current_account(request, state)
        key = idempotency_key(request)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the request is larger than {MAX_BODY_BYTES} bytes")
        parts = parse_form(request.headers.get("content-type", ""), body)
        pdf, raw_metadata = parts.get("file"), parts.get("metadata")
        errors = FieldErrors()
        metadata = _metadata(raw_metadata, errors)
        # The multipart boundary differs on every retry: fingerprint the meaning instead.
        canonical = json.dumps(metadata, sort_keys=True) if metadata is not None else ""
        request_fingerprint = fingerprint("POST /letters", sha256_hex(pdf or b""), canonical)

        async def create() -> JSONResponse:
            order = validate_order(pdf, metadata, errors)
            now = state.now()
            letter = Letter(
                id=state.new_id("ltr"),
                client_reference=order.client_reference,
                idempotency_key=key,
                recipient=order.recipient,
                postage=order.postage,
                colour=order.colour,
                duplex=order.duplex,
                quote=order.quote,
                pdf=order.pdf,
                content_sha256=sha256_hex(order.pdf),
                received_at=now,
                print_at=now + state.cancellation_window,
                post_at=now + state.cancellation_window + state.posting_delay,
            )
            state.add_record(account, letter)
            return JSONResponse(
                letter.view(now),
                status_code=201,
                headers={"Location": f"{API_PREFIX}/letters/{letter.id}"},
            )

        return await run_idempotent(state, account, key, request_fingerprint, create)

    add_record_routes(router, state, "letters", "letter")

    @router.post("/letters/{letter_id}/cancel")
    async def cancel_letter(request: Request, letter_id: str) -> dict[str, Any]:
        """Cancel before the print window closes; cancelling again answers the same."""
        letter = state.get_record(current_account(request, state), letter_id, "letter")
        with state.lock:
            now = state.now()
            status = letter.status_at(now)
            if status == "received":
                letter.cancelled_at = now
            elif status != "cancelled":
                raise ApiError(
                    409,
                    "print_window_closed",
                    f"The letter is {status}; it could be cancelled until {letter.print_at}",
                )
            return letter.view(now)

    @router.get("/prices")
    async def price(
        pages: int = Query(ge=1),
        postage: Literal["A", "B"] = "B",
        colour: bool = False,
        duplex: bool = True,
    ) -> dict[str, Any]:
        """What a letter of `pages` pages would cost, without sending one."""
        try:
            found = quote(pages, postage=postage, colour=colour, duplex=duplex)
        except ValueError as exc:
            raise ApiError(
                422,
                "validation_failed",
                "No letter can be that large",
                [FieldError("pages", "too_many_pages", f"{exc}; at most {MAX_SHEETS} sheets")],
            ) from exc
        return {"sheets": found.sheets, "weight_grams": found.weight_grams, **found.as_json()}

    return router


class ReturnIn(BaseModel):
    """Body of `POST /sandbox/letters/{id}/return`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="addressee unknown", min_length=1, max_length=200)


def _admin_router(state: PrintPostState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    @router.post("/letters/{letter_id}/return")
    async def return_letter(request: Request, letter_id: str, body: ReturnIn) -> dict[str, Any]:
        """The postal service brings a posted letter back (the address did not reach anyone)."""
        account = admin_account(request, state)
        letter = state.get_record(account, letter_id, "letter")
        with state.lock:
            now = state.now()
            if letter.status_at(now) != "posted":
                raise ApiError(409, "not_posted", "Only a posted letter can come back")
            letter.returned_at = now
            letter.return_reason = body.reason
            return letter.view(now)

    return router
