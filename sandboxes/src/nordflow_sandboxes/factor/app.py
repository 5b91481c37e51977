"""The factor sandbox's HTTP side: the factor API under ``/api/v1`` (HTTPS only: bearer
token, files with Idempotency-Key, settlements) and the admin API under ``/sandbox``; its
lifespan serves SFTP and the TLS listener of the same app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
from collections.abc import AsyncIterator, Generator
from datetime import date
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from nordflow_sandboxes.factor.files import SettlementLine
from nordflow_sandboxes.factor.sftp import SftpListener
from nordflow_sandboxes.factor.state import FactorState, ReceivedFile, Refusal, SftpFault
from nordflow_sandboxes.factor.tls import Certificates, make_certificates
from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.gate import Admitted, Gate, bearer
from nordflow_sandboxes.kit.server import (
    API_PREFIX,
    Account,
    ApiError,
    FaultIn,
    FieldError,
    RequestRecord,
    admin_account,
    current_account,
    fingerprint,
    idempotency_key,
    is_api_path,
    problem,
    run_idempotent,
)
from nordflow_sandboxes.server import bind_socket

logger = logging.getLogger("nordflow_sandboxes.factor")


class _QuietServer(uvicorn.Server):
    """The TLS listener inside the sandbox's own loop; the outer server owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listeners:
    """The SFTP listener and the HTTPS socket, bound before start (port 0 resolved), and
    the certificates the HTTPS side presents."""

    def __init__(
        self, state: FactorState, host: str = "127.0.0.1", sftp_port: int = 0, https_port: int = 0
    ) -> None:
        self.sftp = SftpListener(state, host, sftp_port)
        self.certificates: Certificates = make_certificates()
        self.https_socket: socket.socket = bind_socket(host, https_port)
        self.host, self.https_port = self.https_socket.getsockname()[:2]
        self._tls_dir = tempfile.TemporaryDirectory(prefix="nordflow-factor-tls-")
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def https_url(self) -> str:
        """The HTTPS root (the API is under ``/api/v1``)."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{shown}:{self.https_port}"

    def write_trust(self, directory: Path) -> tuple[Path, Path]:
        """Write ``ca.pem`` and ``sftp_host_key.pub`` for clients to trust; their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        ca, host_key = directory / "ca.pem", directory / "sftp_host_key.pub"
        ca.write_text(self.certificates.ca_pem)
        host_key.write_text(self.sftp.public_host_key + "\n")
        return ca, host_key

    async def start(self, app: FastAPI) -> None:
        """Serve SFTP and the app over TLS."""
        await self.sftp.start()
        cert = Path(self._tls_dir.name) / "server.pem"
        key = Path(self._tls_dir.name) / "server.key"
        cert.write_text(self.certificates.server_pem + self.certificates.ca_pem)
        key.write_text(self.certificates.server_key_pem)
        key.chmod(0o600)
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
        self._server = _QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[self.https_socket])
        )

    async def stop(self) -> None:
        """Stop both listeners."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
        await self.sftp.stop()
        self._tls_dir.cleanup()


def _fault_response(fault: Fault, _admitted: Admitted[Any]) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        return problem(429, "rate_limited", "Too many requests", headers={"Retry-After": "1"})
    return problem(status, "injected_fault", f"Injected fault: HTTP {status}")


def _gate(state: FactorState) -> Gate[Account[ReceivedFile]]:
    def admit(request: Request) -> Admitted[Account[ReceivedFile]] | Response:
        challenge = {"WWW-Authenticate": 'Bearer realm="factor"'}
        if request.url.scheme != "https":
            return problem(403, "https_required", "The factor API is served over HTTPS only")
        token = bearer(request)
        if token is None:
            return problem(
                401, "missing_token", "Send 'Authorization: Bearer <token>'", headers=challenge
            )
        account = state.account_for_token(token)
        if account is None:
            return problem(401, "invalid_token", "Unknown access token", headers=challenge)
        return Admitted(account)

    def http_error(request: Request, error: Any) -> ApiError:
        if error.status_code == 404:
            return ApiError(404, "not_found", f"No such resource: {request.url.path}")
        return ApiError(error.status_code, "http_error", str(error.detail))

    def invalid(_request: Request, error: Any) -> ApiError:
        return ApiError(
            422,
            "validation_failed",
            "Invalid parameters",
            [
                FieldError(".".join(str(p) for p in e.get("loc", ())), "invalid", e["msg"])
                for e in error.errors()
            ],
        )

    return Gate(
        is_api_path=is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: problem(500, "internal_error", "Internal server error"),
        errors=(http_error, invalid),
        logger=logger,
        record=RequestRecord.of,
    )


def _api_router(state: FactorState) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["factor API"])

    @router.post("/files", status_code=201)
    async def upload(request: Request, name: str) -> Response:
        """A file, as the body; ``name`` is its file name (with the serial). 201 with the
        receipt when accepted, 422 ``file_refused`` with the reason when refused."""
        account = current_account(request, state)
        key = idempotency_key(request)
        payload = await request.body()
        if not name or "/" in name or name.startswith("."):
            raise ApiError(
                422,
                "validation_failed",
                "Invalid file name",
                [FieldError("name", "invalid", "a plain file name such as CUSIN_1_20250310_1.xml")],
            )

        async def create() -> JSONResponse:
            received = state.receive(account, name, payload, via="https", idempotency_key=key)
            if received.status == "refused":
                code, _, message = (received.reason or "E000: refused").partition(": ")
                return JSONResponse(
                    {
                        "type": "about:blank",
                        "title": "The file was refused",
                        "status": 422,
                        "code": "file_refused",
                        "errors": [{"field": "file", "code": code, "message": message}],
                        "file": received.view(state.now()),
                    },
                    status_code=422,
                    media_type="application/problem+json",
                )
            return JSONResponse(
                received.view(state.now()),
                status_code=201,
                headers={"Location": f"{API_PREFIX}/files/{received.id}"},
            )

        return await run_idempotent(
            state, account, key, fingerprint("POST /files", name, payload), create
        )

    @router.get("/files")
    async def find(request: Request, name: str | None = None) -> dict[str, Any]:
        """The account's files, or the arrivals of one name (a lookup after a lost answer)."""
        account = current_account(request, state)
        now = state.now()
        found = state.by_name(account, name) if name else [f for _, f in state.files(account)]
        return {"files": [f.view(now) for f in found]}

    @router.get("/settlements")
    async def settlements(request: Request) -> dict[str, Any]:
        """The account's settlement files."""
        account = current_account(request, state)
        return {"settlements": [{"name": n} for n in state.settlement_names(account)]}

    @router.get("/settlements/{name}")
    async def settlement(request: Request, name: str) -> Response:
        """One settlement file."""
        content = state.settlement(current_account(request, state), name)
        if content is None:
            raise ApiError(404, "not_found", f"No settlement file {name!r}")
        return Response(content, media_type="text/csv; charset=utf-8")

    return router


class AccountIn(BaseModel):
    """Body of ``POST /sandbox/accounts``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=8, max_length=500)
    client_number: str | None = Field(default=None, pattern=r"^[0-9]{1,15}$")
    sftp_username: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    sftp_password: str | None = Field(default=None, min_length=8, max_length=200)


class RefusalIn(BaseModel):
    """Body of ``POST /sandbox/refusals``."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="the file could not be processed", min_length=1, max_length=500)
    code: str = Field(default="E100", pattern=r"^[A-Z0-9]{1,10}$")
    count: int = Field(default=1, ge=1, le=1000)


class SftpFaultIn(BaseModel):
    """Body of ``POST /sandbox/sftp-faults``."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["drop_connection", "delay"]
    stage: Literal["upload", "rename", "receipt"]
    count: int = Field(default=1, ge=1, le=1000)
    after_bytes: int = Field(default=0, ge=0)
    delay_seconds: float = Field(default=0.0, ge=0, le=600)


class SettlementLineIn(BaseModel):
    """One payment of ``POST /sandbox/settlements``."""

    model_config = ConfigDict(extra="forbid")

    reference: str | None = None
    invoice_number: str | None = None
    paid_on: date | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    amount_minor: int
    fee_minor: int = 0
    payer: str = "Debtor"


class SettleIn(BaseModel):
    """Body of ``POST /sandbox/settlements``: given lines, or every open invoice paid."""

    model_config = ConfigDict(extra="forbid")

    lines: list[SettlementLineIn] | None = None
    paid_on: date | None = None
    fee_percent: float = Field(default=0.0, ge=0, lt=100)
    payer: str = "Debtor"


def _admin_router(state: FactorState, listeners: Listeners | None) -> APIRouter:
    router = admin.admin_router()

    def account_of(request: Request) -> Account[ReceivedFile]:
        return admin_account(request, state)

    admin.add_tenant_routes(router, state, account_of, FaultIn, listing="accounts")

    @router.post("/accounts", status_code=201)
    async def create_account(body: AccountIn) -> dict[str, Any]:
        """A client of the factor: its API token, SFTP login and client number."""
        try:
            account, token, extra = state.create_factor_account(
                body.name,
                body.token,
                client_number=body.client_number,
                sftp_username=body.sftp_username,
                sftp_password=body.sftp_password,
            )
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return {
            "account_id": account.account_id,
            "name": account.name,
            "token": token,
            "client_number": extra.client_number,
            "sftp_username": extra.sftp_username,
            "sftp_password": extra.sftp_password,
        }

    @router.get("/info")
    async def info() -> dict[str, Any]:
        """Where the SFTP and HTTPS listeners are, and the host key clients pin."""
        if listeners is None:
            return {"sftp": None, "https": None}
        return {
            "sftp": {
                "host": listeners.sftp.host,
                "port": listeners.sftp.port,
                "host_key": listeners.sftp.public_host_key,
            },
            "https": {"url": listeners.https_url, "api": f"{listeners.https_url}{API_PREFIX}"},
        }

    @router.get("/tls/ca.pem")
    async def ca_certificate() -> Response:
        """The CA that signed the HTTPS certificate (for clients to trust)."""
        if listeners is None:
            raise HTTPException(404, "no TLS listener")
        return Response(listeners.certificates.ca_pem, media_type="application/x-pem-file")

    @router.get("/files")
    async def files(request: Request) -> dict[str, Any]:
        """What the factor received, every arrival once, oldest first: name, serial, bytes,
        status and the receipt. With a token: that account's; without: every account's."""
        account = admin_account(request, state) if bearer(request) else None
        now = state.now()
        return {
            "files": [
                {"account_id": account_id, **f.view(now)} for account_id, f in state.files(account)
            ]
        }

    @router.get("/files/{file_id}/content")
    async def content(request: Request, file_id: str) -> Response:
        """The bytes of one received file."""
        account = admin_account(request, state)
        with state.lock:
            found = account.records.get(file_id)
        if found is None:
            raise HTTPException(404, f"no file {file_id!r}")
        return Response(found.payload, media_type="application/octet-stream")

    @router.get("/files/{file_id}/answer")
    async def answer(request: Request, file_id: str) -> Response:
        """The receipt or error log the factor wrote for one file."""
        account = admin_account(request, state)
        with state.lock:
            found = account.records.get(file_id)
        if found is None:
            raise HTTPException(404, f"no file {file_id!r}")
        name, data = state.answer_file(found)
        return Response(
            data,
            media_type="application/xml",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

    @router.post("/refusals", status_code=201)
    async def refuse(request: Request, body: RefusalIn) -> dict[str, Any]:
        """Refuse the account's next ``count`` files with ``reason``."""
        refusal = Refusal(body.reason, body.code, body.count)
        state.add_refusal(account_of(request), refusal)
        return {"refusal": refusal.as_json()}

    @router.post("/sftp-faults", status_code=201)
    async def sftp_fault(request: Request, body: SftpFaultIn) -> dict[str, Any]:
        """Drop the connection mid-upload, or answer a rename (or write a receipt) late."""
        fault = SftpFault(body.action, body.stage, body.count, body.after_bytes, body.delay_seconds)
        state.add_sftp_fault(account_of(request), fault)
        return {"sftp_fault": fault.as_json()}

    @router.post("/settlements", status_code=201)
    async def settle(request: Request, body: SettleIn) -> dict[str, Any]:
        """Write a settlement file: the given lines, or every accepted invoice paid in
        full (``fee_percent`` withheld)."""
        account = account_of(request)
        lines = None
        if body.lines is not None:
            day = body.paid_on or state.now().date()
            lines = [
                SettlementLine(
                    reference=line.reference,
                    invoice_number=line.invoice_number,
                    paid_on=line.paid_on or day,
                    currency=line.currency,
                    amount_minor=line.amount_minor,
                    fee_minor=line.fee_minor,
                    payer=line.payer,
                )
                for line in body.lines
            ]
        name, count = state.settle(
            account,
            lines=lines,
            paid_on=body.paid_on,
            fee_percent=body.fee_percent,
            payer=body.payer,
        )
        return {"name": name, "lines": count}

    return router


def create_app(state: FactorState | None = None, listeners: Listeners | None = None) -> FastAPI:
    """The factor sandbox around ``state``; with ``listeners`` its lifespan serves SFTP and
    the same app over TLS (under ``httpx.ASGITransport`` nothing but HTTP runs)."""
    if listeners is not None and state is not None and listeners.sftp.state is not state:
        raise ValueError("the listeners must share the app's state")
    state = state or (listeners.sftp.state if listeners is not None else FactorState())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if listeners is None:
            yield
            return
        await listeners.start(app)
        try:
            yield
        finally:
            await listeners.stop()

    return admin.sandbox_app(
        state,
        "factor",
        title="Nordflow factor sandbox",
        routers=[_api_router(state), _admin_router(state, listeners)],
        gate=_gate(state),
        lifespan=lifespan,
    )


__all__ = ["Listeners", "create_app"]
