"""The SMTP side of the sandbox: an aiosmtpd server that stores, faults and bounces mail."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import socket
import ssl
import weakref
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from nordflow_sandboxes.server import bind_socket
from nordflow_sandboxes.smtp.dsn import build_dsn
from nordflow_sandboxes.smtp.state import (
    BounceInfo,
    BounceRule,
    Delivery,
    Fault,
    SmtpState,
    StoredMessage,
)
from nordflow_sandboxes.smtp.tls import SelfSignedCertificate, self_signed_certificate

logger = logging.getLogger("nordflow_sandboxes.smtp")

AUTH_REQUIRED = "530 5.7.0 Authentication required"
DROPPED = "(connection dropped without a reply)"
MECHANISMS = ("LOGIN", "PLAIN")


@dataclass(frozen=True)
class SmtpConfig:
    """How the SMTP listener behaves.

    With `username` and `password` set, AUTH PLAIN/LOGIN is offered over plain SMTP
    (acceptable on loopback, for a sandbox) and required before MAIL. With `starttls` a
    self-signed certificate is made at start (or `certificate` is used), STARTTLS is
    offered, and with `require_starttls` required before anything else.
    """

    hostname: str = "smtp.sandbox.nordflow.invalid"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    require_starttls: bool = False
    certificate: SelfSignedCertificate | None = None
    data_size_limit: int = 32 * 1024 * 1024
    idle_timeout_seconds: float = 300.0

    @property
    def auth_enabled(self) -> bool:
        """Whether AUTH is offered and required."""
        return self.username is not None and self.password is not None


class _QuietSession(Session):
    """aiosmtpd's Session logs a deprecation warning whenever AUTH succeeds; not here."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SandboxSMTP(SMTP):
    def _create_session(self) -> Session:
        return _QuietSession(self.loop)


def _peer(session: Session) -> str | None:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return None if peer is None else str(peer)


class SandboxHandler:
    """aiosmtpd hooks: auth check at MAIL, faults at MAIL/RCPT/DATA, store, bounce."""

    def __init__(self, state: SmtpState, config: SmtpConfig) -> None:
        self.state = state
        self.config = config

    def authenticate(
        self,
        _server: SMTP,
        _session: Session,
        _envelope: Envelope,
        _mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd authenticator: the configured login and password, compared in constant time."""
        if not isinstance(auth_data, LoginPassword) or not self.config.auth_enabled:
            return AuthResult(success=False, handled=False)
        login_ok = hmac.compare_digest(auth_data.login, (self.config.username or "").encode())
        password_ok = hmac.compare_digest(auth_data.password, (self.config.password or "").encode())
        if login_ok and password_ok:
            # Keep only the login on the session: the password is never stored.
            return AuthResult(success=True, auth_data=auth_data.login.decode())
        return AuthResult(success=False, handled=False)

    async def _fault_reply(self, server: SMTP, fault: Fault) -> str | None:
        """Wait, then drop the connection or name the reply; None: answer normally, late."""
        if fault.delay_seconds:
            await asyncio.sleep(fault.delay_seconds)
        if fault.disconnect:
            if isinstance(server.transport, asyncio.WriteTransport):
                # abort() drops the connection at once: what aiosmtpd writes next goes nowhere.
                server.transport.abort()
            return fault.reply or "421 4.4.2 connection dropped"
        return fault.reply

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self,
        _server: SMTP,
        session: Session,
        _envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """aiosmtpd announces an empty `AUTH` when no mechanism is left: drop that line."""
        session.host_name = hostname
        return [line for line in responses if line.rstrip() != "250-AUTH"]

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Require AUTH when configured, then apply a MAIL fault or accept the sender."""
        if self.config.auth_enabled and not session.authenticated:
            return AUTH_REQUIRED
        fault = self.state.take_fault("mail")
        if fault is not None and (reply := await self._fault_reply(server, fault)) is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Apply a RCPT fault for this recipient (a bounce at RCPT) or accept it."""
        fault = self.state.take_fault("rcpt", (address,))
        if fault is not None and (reply := await self._fault_reply(server, fault)) is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Apply a DATA fault, or store the message (then maybe fault: a lost answer)."""
        fault = self.state.take_fault("data", envelope.rcpt_tos)
        if fault is not None and not fault.after_data:
            reply = await self._fault_reply(server, fault)
            if reply is not None:
                return reply
            fault = None
        if fault is not None and fault.disconnect:
            reply = DROPPED
        else:
            reply = (fault.reply if fault is not None else None) or "250 2.0.0 OK queued as {id}"
        delivery = Delivery(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=envelope.original_content or b"",
            reply=reply,
            authenticated_as=session.auth_data if session.authenticated else None,
            tls=session.ssl is not None,
            peer=_peer(session),
        )
        try:
            stored = self.state.store(delivery)
        except Exception:  # a sandbox must answer, whatever the bytes were
            logger.exception("cannot store a message from %s", delivery.mail_from)
            return "451 4.3.0 sandbox could not store the message"
        self._schedule_bounces(stored)
        if fault is not None:
            return await self._fault_reply(server, fault) or stored.reply
        return stored.reply

    def _schedule_bounces(self, stored: StoredMessage) -> None:
        if not stored.mail_from:  # never bounce a bounce (null sender)
            return
        loop = asyncio.get_running_loop()
        for recipient in stored.rcpt_tos:
            rule = self.state.take_bounce(recipient)
            if rule is None:
                continue
            if rule.delay_seconds > 0:
                loop.call_later(rule.delay_seconds, self._bounce, stored, rule, recipient)
            else:
                self._bounce(stored, rule, recipient)

    def _bounce(self, stored: StoredMessage, rule: BounceRule, recipient: str) -> None:
        raw = build_dsn(stored, rule, recipient, mta=self.config.hostname, now=self.state.clock())
        self.state.store_bounce(
            raw,
            stored.mail_from,
            BounceInfo(
                original_id=stored.id,
                original_message_id=stored.description.message_id,
                recipient=recipient,
                status=rule.status,
                diagnostic=rule.diagnostic,
            ),
        )


def _certificate_names(host: str) -> tuple[str, ...]:
    names = ["localhost", "127.0.0.1", "::1"]
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        if host not in names and host not in ("0.0.0.0", "::"):  # noqa: S104
            names.append(host)
    return tuple(names)


class SmtpListener:
    """The SMTP server of one sandbox, bound at construction and served by `start()`.

    Binding first means port 0 resolves to a free port that callers (the CLI's ready
    line, tests) know before the event loop runs. `start()`/`stop()` run in the loop that
    serves the HTTP app (its lifespan), so both share one `SmtpState` without threads.
    """

    def __init__(
        self,
        state: SmtpState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SmtpConfig | None = None,
    ) -> None:
        self.state = state
        self.config = config or SmtpConfig()
        self.certificate = self.config.certificate
        if self.config.starttls and self.certificate is None:
            self.certificate = self_signed_certificate(_certificate_names(host))
        self._tls_context: ssl.SSLContext | None = (
            self.certificate.server_context()
            if self.config.starttls and self.certificate is not None
            else None
        )
        self.handler = SandboxHandler(state, self.config)
        self._sock: socket.socket | None = bind_socket(host, port)
        self.host: str = self._sock.getsockname()[0]
        self.port: int = self._sock.getsockname()[1]
        self._server: asyncio.AbstractServer | None = None
        self._connections: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _protocol(self) -> SMTP:
        protocol = _SandboxSMTP(
            self.handler,
            hostname=self.config.hostname,
            data_size_limit=self.config.data_size_limit,
            enable_SMTPUTF8=True,
            tls_context=self._tls_context,
            require_starttls=self.config.require_starttls,
            timeout=self.config.idle_timeout_seconds,
            # Plain-text AUTH is fine on loopback in a sandbox; MAIL checks it is done.
            auth_require_tls=False,
            authenticator=self.handler.authenticate,
            auth_exclude_mechanism=() if self.config.auth_enabled else MECHANISMS,
            loop=asyncio.get_running_loop(),
        )
        self._connections.add(protocol)
        return protocol

    async def start(self) -> None:
        """Accept SMTP connections in the running loop."""
        if self._sock is None:
            raise RuntimeError("the SMTP listener was stopped and cannot start again")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, sock=self._sock)
        logger.info("SMTP sandbox listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and drop open sessions."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for protocol in list(self._connections):
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                transport.close()
        self._connections.clear()
        if server is not None:
            await server.wait_closed()
        self.close()

    def close(self) -> None:
        """Release the bound socket (also when the listener never started)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
