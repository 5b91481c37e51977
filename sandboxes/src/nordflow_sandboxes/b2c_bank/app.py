"""A bank e-invoice (B2C) API: find consumers who take e-invoices, send one with OCR/KID."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.b2c_bank.einvoices import (
    CURRENCY_OF,
    B2cBankState,
    Consumer,
    EInvoice,
    normalize_email,
    normalize_phone,
    validate_einvoice,
)
from nordflow_sandboxes.b2c_bank.references import personal_number as parse_personal_number
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


def create_app(state: B2cBankState | None = None) -> FastAPI:
    """The bank e-invoice sandbox app around `state` (a fresh default state when None)."""
    state = state or B2cBankState()
    return build_app(
        state,
        "b2c_bank",
        title="Nordflow B2C bank e-invoice sandbox",
        routers=[_api_router(state), _admin_router(state)],
    )


def _refused(field_name: str, code: str, message: str) -> ApiError:
    return ApiError(422, code, message, [FieldError(field_name, code, message)])


def _recipient_view(consumer: Consumer | None, organisation_number: str) -> dict[str, Any]:
    if consumer is None:
        return {
            "registered": False,
            "efaktura_reference": None,
            "country": None,
            "accepts_all_issuers": False,
            "accepts_issuer": False,
        }
    return {
        "registered": True,
        "efaktura_reference": consumer.efaktura_reference,
        "country": consumer.country,
        "accepts_all_issuers": consumer.accepts_all_issuers,
        "accepts_issuer": consumer.accepts(organisation_number),
    }


def _lookup(
    state: B2cBankState, personal_number: str | None, email: str | None, phone: str | None
) -> Consumer | None:
    given = {
        k: v
        for k, v in {"personal_number": personal_number, "email": email, "phone": phone}.items()
        if v
    }
    if len(given) != 1:
        raise _refused(
            "personal_number",
            "exactly_one_identifier",
            "ask by exactly one of personal_number, email or phone",
        )
    if personal_number:
        parsed = parse_personal_number(personal_number)
        if parsed is None:
            raise _refused(
                "personal_number",
                "invalid_personal_number",
                "a Swedish YYYYMMDD-NNNN or Norwegian 11-digit number with valid check digits",
            )
        return state.find_consumer(personal_number=parsed[0])
    if email:
        address = normalize_email(email)
        if address is None:
            raise _refused("email", "invalid_email", f"{email!r} is not an e-mail address")
        return state.find_consumer(email=address)
    number = normalize_phone(phone or "")
    if number is None:
        raise _refused("phone", "invalid_phone", "give the phone number as +46701234567")
    return state.find_consumer(phone=number)


def _api_router(state: B2cBankState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["e-invoices"])

    @router.get("/recipients")
    async def find_recipient(
        request: Request,
        personal_number: str | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        """Whether a consumer takes e-invoices in the bank, and the reference to send to."""
        account = current_account(request, state)
        consumer = _lookup(state, personal_number, email, phone)
        return _recipient_view(consumer, account.organisation_number)

    @router.post("/einvoices", status_code=201)
    async def send_einvoice(request: Request) -> Response:
        """Send one e-invoice to a registered consumer's internet bank."""
        account = current_account(request, state)
        key = idempotency_key(request)
        body = await request.body()
        errors = FieldErrors()
        try:
            data: Any = json.loads(body, parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            errors.add("body", "invalid_json", f"the body is not JSON: {exc}")
            data = None
        canonical = json.dumps(data, sort_keys=True, default=str) if data is not None else ""
        request_fingerprint = fingerprint("POST /einvoices", canonical or body)

        async def create() -> JSONResponse:
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "Send the e-invoice as Content-Type: application/json",
                    [FieldError("Content-Type", "unsupported", f"got {media_type or 'none'!r}")],
                )
            order = validate_einvoice(data, state.today(), errors)
            consumer = state.find_consumer(efaktura_reference=order.consumer_reference)
            if consumer is None:
                raise _refused(
                    "consumer_reference",
                    "not_registered",
                    f"no consumer has e-invoice reference {order.consumer_reference!r}; "
                    "send on paper instead",
                )
            if not consumer.accepts(account.organisation_number):
                raise _refused(
                    "consumer_reference",
                    "issuer_not_accepted",
                    "the consumer does not accept e-invoices from this issuer",
                )
            if CURRENCY_OF[consumer.country] != order.currency:
                raise _refused(
                    "currency",
                    "currency_mismatch",
                    f"a consumer in {consumer.country} pays in {CURRENCY_OF[consumer.country]}",
                )
            now = state.now()
            einvoice = EInvoice(
                id=state.new_id("ein"),
                client_reference=client_reference_param(order.client_reference),
                idempotency_key=key,
                consumer_reference=order.consumer_reference,
                payee_account_type=order.payee_account_type,
                payee_account=order.payee_account,
                payment_reference=order.payment_reference,
                amount=order.amount,
                currency=order.currency,
                due_date=order.due_date,
                invoice_number=order.invoice_number,
                issuer_name=order.issuer_name,
                has_pdf=order.pdf is not None,
                payload=body,
                content_sha256=sha256_hex(body),
                received_at=now,
                present_at=now + state.presentation_delay,
            )
            state.add_record(account, einvoice)
            return JSONResponse(
                einvoice.view(now),
                status_code=201,
                headers={"Location": f"{API_PREFIX}/einvoices/{einvoice.id}"},
            )

        return await run_idempotent(state, account, key, request_fingerprint, create)

    add_record_routes(router, state, "einvoices", "e-invoice")
    return router


class ConsumerIn(BaseModel):
    """Body of `PUT /sandbox/consumers/{personal_number}`."""

    model_config = ConfigDict(extra="forbid")

    efaktura_reference: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{4,30}$")
    email: str | None = None
    phone: str | None = None
    bank: str = Field(default="Sandbox Bank", min_length=1, max_length=70)
    accepts_all_issuers: bool = True
    accepted_issuers: list[str] = Field(default_factory=list)
    blocked_issuers: list[str] = Field(default_factory=list)


def _admin_router(state: B2cBankState) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    @router.put("/consumers/{personal_number}")
    async def register_consumer(personal_number: str, body: ConsumerIn) -> JSONResponse:
        """Register a consumer for e-invoices (as the consumer would in the internet bank)."""
        parsed = parse_personal_number(personal_number)
        if parsed is None:
            raise HTTPException(422, "personal_number: not a valid Swedish or Norwegian number")
        email = normalize_email(body.email) if body.email else None
        if body.email and email is None:
            raise HTTPException(422, f"email: {body.email!r} is not an e-mail address")
        phone = normalize_phone(body.phone) if body.phone else None
        if body.phone and phone is None:
            raise HTTPException(422, "phone: give it as +46701234567")
        number, country = parsed
        existed = state.find_consumer(personal_number=number) is not None
        try:
            consumer = state.register_consumer(
                number,
                "SE" if country == "SE" else "NO",
                efaktura_reference=body.efaktura_reference,
                email=email,
                phone=phone,
                bank=body.bank,
                accepts_all_issuers=body.accepts_all_issuers,
                accepted_issuers=body.accepted_issuers,
                blocked_issuers=body.blocked_issuers,
            )
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from exc
        return JSONResponse(consumer.as_json(), status_code=200 if existed else 201)

    @router.get("/consumers")
    async def list_consumers() -> dict[str, Any]:
        with state.lock:
            return {"consumers": [c.as_json() for c in state.consumers.values()]}

    @router.delete("/consumers/{personal_number}", status_code=204)
    async def unregister_consumer(personal_number: str) -> Response:
        parsed = parse_personal_number(personal_number)
        if parsed is None or not state.unregister_consumer(parsed[0]):
            raise HTTPException(404, "no such registered consumer")
        return Response(status_code=204)

    @router.post("/einvoices/{einvoice_id}/pay")
    async def pay_einvoice(request: Request, einvoice_id: str) -> dict[str, Any]:
        """The consumer approves the e-invoice in the internet bank and it is paid."""
        account = admin_account(request, state)
        einvoice = state.get_record(account, einvoice_id, "e-invoice")
        with state.lock:
            if einvoice.paid_at is not None:
                raise ApiError(409, "already_paid", "The e-invoice is already paid")
            einvoice.paid_at = state.now()
            return einvoice.view(state.now())

    return router
