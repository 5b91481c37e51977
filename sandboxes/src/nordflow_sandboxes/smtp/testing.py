"""Test helpers for other teams: run the SMTP sandbox in-process and drive its inspection API."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from nordflow_sandboxes.server import BackgroundServer
from nordflow_sandboxes.smtp.app import create_app
from nordflow_sandboxes.smtp.listener import SmtpConfig, SmtpListener
from nordflow_sandboxes.smtp.state import SmtpState, Stage

MessageKindFilter = Literal["message", "bounce"]


@dataclass(frozen=True)
class SmtpFault:
    """What `POST /sandbox/faults` takes (see the README for the semantics)."""

    reply: str | None = "451 4.3.0 Try again later"
    count: int | None = 1
    stage: Stage | None = None
    recipient: str | None = None
    after_data: bool = False
    delay_seconds: float = 0.0
    disconnect: bool = False

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        return {
            "reply": self.reply,
            "count": self.count,
            "stage": self.stage,
            "recipient": self.recipient,
            "after_data": self.after_data,
            "delay_seconds": self.delay_seconds,
            "disconnect": self.disconnect,
        }


@dataclass(frozen=True)
class SmtpBounce:
    """What `POST /sandbox/bounces` takes: accept mail for `recipient`, then send a DSN."""

    recipient: str
    status: str = "5.1.1"
    diagnostic: str | None = None
    delay_seconds: float = 0.0
    count: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        return {
            "recipient": self.recipient,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "delay_seconds": self.delay_seconds,
            "count": self.count,
        }


def _message_params(
    to: str | None, message_id: str | None, mail_from: str | None, kind: str | None
) -> dict[str, str]:
    params = {"to": to, "message_id": message_id, "from": mail_from, "kind": kind}
    return {key: value for key, value in params.items() if value is not None}


def _messages_of(response: httpx.Response) -> list[dict[str, Any]]:
    response.raise_for_status()
    return list(response.json()["messages"])


def _json(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    return dict(response.json())


class SmtpSandboxAdmin:
    """Blocking client of the sandbox's `/sandbox/...` inspection API."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._client.close()

    def __enter__(self) -> SmtpSandboxAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def healthy(self) -> bool:
        """True when `/sandbox/healthz` answers ok."""
        return self._client.get("/sandbox/healthz").status_code == 200

    def messages(
        self,
        *,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Stored messages, oldest first (see the README for the JSON shape)."""
        return _messages_of(
            self._client.get(
                "/sandbox/messages", params=_message_params(to, message_id, mail_from, kind)
            )
        )

    def wait_for_messages(
        self,
        *,
        count: int = 1,
        timeout: float = 5.0,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` messages match (delayed bounces); raises on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(to=to, message_id=message_id, mail_from=mail_from, kind=kind)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages after {timeout} s")
            time.sleep(0.05)

    def message(self, sandbox_id: str) -> dict[str, Any]:
        """One stored message by its sandbox id (`msg_…`, `dsn_…`)."""
        return _json(self._client.get(f"/sandbox/messages/{sandbox_id}"))

    def raw(self, sandbox_id: str) -> bytes:
        """The message exactly as received (after SMTP dot-unstuffing)."""
        response = self._client.get(f"/sandbox/messages/{sandbox_id}/raw")
        response.raise_for_status()
        return response.content

    def attachment(self, sandbox_id: str, index: int) -> bytes:
        """The decoded content of one attachment."""
        response = self._client.get(f"/sandbox/messages/{sandbox_id}/attachments/{index}")
        response.raise_for_status()
        return response.content

    def clear_messages(self) -> int:
        """Forget every stored message (prefer random recipients to cleaning up)."""
        return int(_json(self._client.delete("/sandbox/messages"))["deleted"])

    def inject_fault(self, fault: SmtpFault | None = None) -> dict[str, Any]:
        """Queue a fault; returns it as stored (with its id and resolved stage)."""
        return _json(self._client.post("/sandbox/faults", json=(fault or SmtpFault()).as_json()))

    def faults(self) -> list[dict[str, Any]]:
        """Pending faults."""
        return list(_json(self._client.get("/sandbox/faults"))["faults"])

    def clear_faults(self) -> int:
        """Drop every pending fault."""
        return int(_json(self._client.delete("/sandbox/faults"))["deleted"])

    def add_bounce(self, bounce: SmtpBounce) -> dict[str, Any]:
        """Register a recipient whose mail is accepted and then bounced."""
        return _json(self._client.post("/sandbox/bounces", json=bounce.as_json()))

    def bounces(self) -> list[dict[str, Any]]:
        """Registered bounce rules."""
        return list(_json(self._client.get("/sandbox/bounces"))["bounces"])

    def clear_bounces(self) -> int:
        """Drop every bounce rule."""
        return int(_json(self._client.delete("/sandbox/bounces"))["deleted"])


class AsyncSmtpSandboxAdmin:
    """The same inspection client for asyncio code; also the provider-log lookup in tests."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> AsyncSmtpSandboxAdmin:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def messages(
        self,
        *,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Stored messages, oldest first."""
        return _messages_of(
            await self._client.get(
                "/sandbox/messages", params=_message_params(to, message_id, mail_from, kind)
            )
        )

    async def was_accepted(self, message_id: str, to: str | None = None) -> bool:
        """Whether the provider took a message with this Message-ID (for `to`, if given).

        This is the lookup a sender does after an ambiguous failure, before retrying.
        """
        return bool(await self.messages(message_id=message_id, to=to, kind="message"))

    async def wait_for_messages(
        self,
        *,
        count: int = 1,
        timeout: float = 5.0,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until at least `count` messages match; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.messages(
                to=to, message_id=message_id, mail_from=mail_from, kind=kind
            )
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages after {timeout} s")
            await asyncio.sleep(0.05)

    async def message(self, sandbox_id: str) -> dict[str, Any]:
        """One stored message by its sandbox id."""
        return _json(await self._client.get(f"/sandbox/messages/{sandbox_id}"))

    async def raw(self, sandbox_id: str) -> bytes:
        """The message exactly as received."""
        response = await self._client.get(f"/sandbox/messages/{sandbox_id}/raw")
        response.raise_for_status()
        return response.content

    async def attachment(self, sandbox_id: str, index: int) -> bytes:
        """The decoded content of one attachment."""
        response = await self._client.get(f"/sandbox/messages/{sandbox_id}/attachments/{index}")
        response.raise_for_status()
        return response.content

    async def inject_fault(self, fault: SmtpFault | None = None) -> dict[str, Any]:
        """Queue a fault; returns it as stored."""
        return _json(
            await self._client.post("/sandbox/faults", json=(fault or SmtpFault()).as_json())
        )

    async def clear_faults(self) -> int:
        """Drop every pending fault."""
        return int(_json(await self._client.delete("/sandbox/faults"))["deleted"])

    async def add_bounce(self, bounce: SmtpBounce) -> dict[str, Any]:
        """Register a recipient whose mail is accepted and then bounced."""
        return _json(await self._client.post("/sandbox/bounces", json=bounce.as_json()))


@dataclass
class RunningSmtpSandbox:
    """An SMTP sandbox (SMTP + HTTP inspection API) served in a background thread."""

    smtp_host: str
    smtp_port: int
    base_url: str
    state: SmtpState
    config: SmtpConfig
    certificate_pem: str | None
    _server: BackgroundServer

    @property
    def username(self) -> str | None:
        """The AUTH login, when AUTH is on."""
        return self.config.username

    @property
    def password(self) -> str | None:
        """The AUTH password, when AUTH is on."""
        return self.config.password

    def admin(self) -> SmtpSandboxAdmin:
        """A blocking inspection client (close it, or use it as a context manager)."""
        return SmtpSandboxAdmin(self.base_url)

    def async_admin(self) -> AsyncSmtpSandboxAdmin:
        """An asyncio inspection client (`async with sandbox.async_admin() as admin:`)."""
        return AsyncSmtpSandboxAdmin(self.base_url)

    def client_tls_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the sandbox's self-signed certificate."""
        if self.certificate_pem is None:
            raise RuntimeError("start the sandbox with starttls=True")
        return ssl.create_default_context(cadata=self.certificate_pem)

    def stop(self) -> None:
        """Stop both servers."""
        self._server.stop()


def start_smtp_sandbox(
    state: SmtpState | None = None,
    *,
    host: str = "127.0.0.1",
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    require_starttls: bool = False,
    hostname: str = "smtp.sandbox.nordflow.invalid",
) -> RunningSmtpSandbox:
    """Serve SMTP and the inspection API on free ports of `host`; the caller must `stop()`."""
    state = state or SmtpState()
    config = SmtpConfig(
        hostname=hostname,
        username=username,
        password=password,
        starttls=starttls,
        require_starttls=require_starttls,
    )
    listener = SmtpListener(state, host=host, port=0, config=config)
    try:
        server = BackgroundServer(create_app(state, listener), host=host, port=0)
        base_url = server.start()  # returns once the lifespan started the SMTP listener
    except BaseException:
        listener.close()
        raise
    certificate = listener.certificate
    return RunningSmtpSandbox(
        smtp_host=listener.host,
        smtp_port=listener.port,
        base_url=base_url,
        state=state,
        config=config,
        certificate_pem=None if certificate is None else certificate.certificate_pem,
        _server=server,
    )


@contextmanager
def running_smtp_sandbox(
    state: SmtpState | None = None,
    *,
    host: str = "127.0.0.1",
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    require_starttls: bool = False,
) -> Iterator[RunningSmtpSandbox]:
    """`with running_smtp_sandbox() as sandbox:` serves a sandbox for the block."""
    sandbox = start_smtp_sandbox(
        state,
        host=host,
        username=username,
        password=password,
        starttls=starttls,
        require_starttls=require_starttls,
    )
    try:
        yield sandbox
    finally:
        sandbox.stop()
