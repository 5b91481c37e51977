"""Test helpers for other teams: run the SMTP sandbox in-process and drive its inspection API."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from nordflow_sandboxes.kit import testing as kit
from nordflow_sandboxes.kit.testing import Steps, json_of, operation, pause, send
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


def _content(response: httpx.Response) -> bytes:
    response.raise_for_status()
    return response.content


class SmtpAdminOps(kit.SandboxAdmin):
    """The sandbox's `/sandbox/...` inspection operations (the provider's message log)."""

    @operation
    def messages(
        self,
        *,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> Steps[list[dict[str, Any]]]:
        """Stored messages, oldest first (see the README for the JSON shape)."""
        params = _message_params(to, message_id, mail_from, kind)
        return list(
            json_of((yield from send("GET", "/sandbox/messages", params=params)))["messages"]
        )

    @operation
    def was_accepted(self, message_id: str, to: str | None = None) -> Steps[bool]:
        """Whether the provider took a message with this Message-ID (for `to`, if given).

        This is the lookup a sender does after an ambiguous failure, before retrying.
        """
        params = _message_params(to, message_id, None, "message")
        response = yield from send("GET", "/sandbox/messages", params=params)
        return bool(json_of(response)["messages"])

    @operation
    def wait_for_messages(
        self,
        *,
        count: int = 1,
        timeout: float = 5.0,
        to: str | None = None,
        message_id: str | None = None,
        mail_from: str | None = None,
        kind: MessageKindFilter | None = None,
    ) -> Steps[list[dict[str, Any]]]:
        """Poll until at least `count` messages match (delayed bounces); raises on timeout."""
        params = _message_params(to, message_id, mail_from, kind)
        deadline = time.monotonic() + timeout
        while True:
            response = yield from send("GET", "/sandbox/messages", params=params)
            found = list(json_of(response)["messages"])
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(found)} of {count} messages after {timeout} s")
            yield from pause(0.05)

    @operation
    def message(self, sandbox_id: str) -> Steps[dict[str, Any]]:
        """One stored message by its sandbox id (`msg_…`, `dsn_…`)."""
        return dict(json_of((yield from send("GET", f"/sandbox/messages/{sandbox_id}"))))

    @operation
    def raw(self, sandbox_id: str) -> Steps[bytes]:
        """The message exactly as received (after SMTP dot-unstuffing)."""
        return _content((yield from send("GET", f"/sandbox/messages/{sandbox_id}/raw")))

    @operation
    def attachment(self, sandbox_id: str, index: int) -> Steps[bytes]:
        """The decoded content of one attachment."""
        path = f"/sandbox/messages/{sandbox_id}/attachments/{index}"
        return _content((yield from send("GET", path)))

    @operation
    def clear_messages(self) -> Steps[int]:
        """Forget every stored message (prefer random recipients to cleaning up)."""
        return int(json_of((yield from send("DELETE", "/sandbox/messages")))["deleted"])

    @operation
    def inject_fault(self, fault: SmtpFault | None = None) -> Steps[dict[str, Any]]:
        """Queue a fault; returns it as stored (with its id and resolved stage)."""
        body = (fault or SmtpFault()).as_json()
        return dict(json_of((yield from send("POST", "/sandbox/faults", json=body))))

    @operation
    def faults(self) -> Steps[list[dict[str, Any]]]:
        """Pending faults."""
        return list(json_of((yield from send("GET", "/sandbox/faults")))["faults"])

    @operation
    def clear_faults(self) -> Steps[int]:
        """Drop every pending fault."""
        return int(json_of((yield from send("DELETE", "/sandbox/faults")))["deleted"])

    @operation
    def add_bounce(self, bounce: SmtpBounce) -> Steps[dict[str, Any]]:
        """Register a recipient whose mail is accepted and then bounced."""
        return dict(json_of((yield from send("POST", "/sandbox/bounces", json=bounce.as_json()))))

    @operation
    def bounces(self) -> Steps[list[dict[str, Any]]]:
        """Registered bounce rules."""
        return list(json_of((yield from send("GET", "/sandbox/bounces")))["bounces"])

    @operation
    def clear_bounces(self) -> Steps[int]:
        """Drop every bounce rule."""
        return int(json_of((yield from send("DELETE", "/sandbox/bounces")))["deleted"])


class SmtpSandboxAdmin(SmtpAdminOps, kit.AdminClient):
    """Blocking client of the sandbox's `/sandbox/...` inspection API."""


class AsyncSmtpSandboxAdmin(SmtpAdminOps, kit.AsyncAdminClient):
    """The same inspection client for asyncio code; also the provider-log lookup in tests."""


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
