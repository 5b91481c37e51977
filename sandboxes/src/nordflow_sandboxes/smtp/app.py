"""The SMTP sandbox's HTTP inspection API (`/sandbox/...`); its lifespan runs the SMTP listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.kit.admin import ADMIN_PREFIX, admin_router
from nordflow_sandboxes.smtp.listener import SmtpListener
from nordflow_sandboxes.smtp.state import BounceRule, MessageKind, SmtpState, Stage


class FaultRequest(BaseModel):
    """Body of `POST /sandbox/faults`."""

    model_config = ConfigDict(extra="forbid")

    reply: str | None = Field(
        default=None,
        description="4xx or 5xx reply, e.g. '451 4.3.0 try later'; null: the normal reply "
        "after delay_seconds (or none, with disconnect)",
    )
    count: int | None = Field(default=1, ge=1, description="matching commands; null: until deleted")
    stage: Stage | None = Field(
        default=None,
        description="mail, rcpt or data; default rcpt with a recipient, data with after_data, "
        "else mail",
    )
    recipient: str | None = Field(
        default=None, description="only RCPT of (or, at data, a message to) this address"
    )
    after_data: bool = Field(
        default=False, description="store the message, then answer the fault (a lost answer)"
    )
    delay_seconds: float = Field(default=0.0, ge=0, le=600, description="wait before answering")
    disconnect: bool = Field(default=False, description="drop the connection instead of answering")

    def resolved_stage(self) -> Stage:
        """The stage the fault applies to, with the defaults described above."""
        if self.stage is not None:
            return self.stage
        if self.after_data:
            return "data"
        return "rcpt" if self.recipient else "mail"


class BounceRequest(BaseModel):
    """Body of `POST /sandbox/bounces`."""

    model_config = ConfigDict(extra="forbid")

    recipient: str = Field(min_length=3, description="accepted at RCPT, then bounced")
    status: str = Field(default="5.1.1", pattern=r"^[45]\.[0-9]{1,3}\.[0-9]{1,3}$")
    diagnostic: str | None = Field(
        default=None, description="the remote server's reply quoted in the DSN"
    )
    delay_seconds: float = Field(default=0.0, ge=0, le=3600)
    count: int | None = Field(default=None, ge=1, description="messages to bounce; null: all")


def _invalid(message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=422)


def create_app(state: SmtpState | None = None, listener: SmtpListener | None = None) -> FastAPI:
    """Build the inspection app around `state`; with a `listener`, serve SMTP while it runs.

    Under `httpx.ASGITransport` (no lifespan) only the HTTP side runs.
    """
    if listener is not None and state is not None and listener.state is not state:
        raise ValueError("the listener must share the app's state")
    state = state or (listener.state if listener is not None else SmtpState())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if listener is None:
            yield
            return
        await listener.start()
        try:
            yield
        finally:
            await listener.stop()

    app = FastAPI(
        title="Nordflow SMTP sandbox",
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.smtp = state
    app.include_router(admin_router())

    @app.get(f"{ADMIN_PREFIX}/info")
    async def info() -> dict[str, Any]:
        if listener is None:
            return {"smtp": None}
        config = listener.config
        return {
            "smtp": {
                "host": listener.host,
                "port": listener.port,
                "hostname": config.hostname,
                "auth": config.auth_enabled,
                "starttls": config.starttls,
                "require_starttls": config.require_starttls,
            }
        }

    @app.get(f"{ADMIN_PREFIX}/tls/certificate")
    async def certificate() -> Response:
        if listener is None or listener.certificate is None:
            raise HTTPException(404, "STARTTLS is not enabled")
        return Response(listener.certificate.certificate_pem, media_type="application/x-pem-file")

    @app.get(f"{ADMIN_PREFIX}/messages")
    async def list_messages(
        to: str | None = None,
        mail_from: str | None = Query(default=None, alias="from"),
        message_id: str | None = None,
        kind: MessageKind | None = None,
        limit: int | None = Query(default=None, ge=1, le=10_000),
    ) -> dict[str, Any]:
        found = state.messages(to=to, mail_from=mail_from, message_id=message_id, kind=kind)
        if limit is not None:
            found = found[-limit:]
        return {"messages": [m.as_json() for m in found]}

    @app.delete(f"{ADMIN_PREFIX}/messages")
    async def clear_messages() -> dict[str, int]:
        return {"deleted": state.clear_messages()}

    @app.get(f"{ADMIN_PREFIX}/messages/{{message_id}}")
    async def get_message(message_id: str) -> dict[str, Any]:
        stored = state.message(message_id)
        if stored is None:
            raise HTTPException(404, f"no message {message_id}")
        return stored.as_json()

    @app.get(f"{ADMIN_PREFIX}/messages/{{message_id}}/raw")
    async def raw_message(message_id: str) -> Response:
        stored = state.message(message_id)
        if stored is None:
            raise HTTPException(404, f"no message {message_id}")
        return Response(stored.raw, media_type="message/rfc822")

    @app.get(f"{ADMIN_PREFIX}/messages/{{message_id}}/attachments/{{index}}")
    async def attachment(message_id: str, index: int) -> Response:
        stored = state.message(message_id)
        if stored is None or not 0 <= index < len(stored.description.attachments):
            raise HTTPException(404, f"no attachment {index} in {message_id}")
        part = stored.description.attachments[index]
        disposition = "attachment"
        if part.filename:
            disposition += f"; filename*=UTF-8''{quote(part.filename)}"
        return Response(
            part.content,
            media_type=part.content_type,
            headers={"Content-Disposition": disposition},
        )

    @app.post(f"{ADMIN_PREFIX}/faults", status_code=201, response_model=None)
    async def add_fault(body: FaultRequest) -> dict[str, Any] | JSONResponse:
        try:
            fault = state.add_fault(
                stage=body.resolved_stage(),
                reply=body.reply,
                count=body.count,
                recipient=body.recipient,
                after_data=body.after_data,
                delay_seconds=body.delay_seconds,
                disconnect=body.disconnect,
            )
        except ValueError as exc:
            return _invalid(str(exc))
        return fault.as_json()

    @app.get(f"{ADMIN_PREFIX}/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [f.as_json() for f in state.faults()]}

    @app.delete(f"{ADMIN_PREFIX}/faults")
    async def clear_faults() -> dict[str, int]:
        return {"deleted": state.clear_faults()}

    @app.post(f"{ADMIN_PREFIX}/bounces", status_code=201, response_model=None)
    async def add_bounce(body: BounceRequest) -> dict[str, Any] | JSONResponse:
        diagnostic = body.diagnostic or (
            f"550 {body.status} <{body.recipient}>: Recipient address rejected: "
            "User unknown in virtual mailbox table"
        )
        try:
            rule = state.add_bounce(
                BounceRule(
                    recipient=body.recipient,
                    status=body.status,
                    diagnostic=diagnostic,
                    delay_seconds=body.delay_seconds,
                    remaining=body.count,
                )
            )
        except ValueError as exc:
            return _invalid(str(exc))
        return rule.as_json()

    @app.get(f"{ADMIN_PREFIX}/bounces")
    async def list_bounces() -> dict[str, Any]:
        return {"bounces": [b.as_json() for b in state.bounces()]}

    @app.delete(f"{ADMIN_PREFIX}/bounces")
    async def clear_bounces() -> dict[str, int]:
        return {"deleted": state.clear_bounces()}

    return app
