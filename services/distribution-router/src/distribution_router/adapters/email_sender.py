"""E-mail channel adapter: sends an invoice PDF over SMTP (stdlib smtplib in a worker thread)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import secrets
import smtplib
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy, utils
from typing import ClassVar, Literal
from urllib.parse import quote

from pydantic import SecretStr

logger = logging.getLogger(__name__)

Stage = Literal["connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "message"]
"""Where an SMTP transaction failed; `message` = the body was sent, its reply was not 250."""

# RFC 5322 msg-id in its dot-atom form, which is all we ever generate or accept.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_MESSAGE_ID = re.compile(rf"^<{_DOT_ATOM}@{_DOT_ATOM}>$")
# Characters of an idempotency key that may stand in a msg-id as they are ('%' escapes).
_KEY_SAFE = "!#$&'*+/=?^_`{|}~-"
_LEADING_DOT = re.compile(rb"(?m)^\.")

_CRLF = b"\r\n"
_HEADER_LINE = 78
"""The line length policy.SMTP folds header fields to (RFC 5322's limit)."""
_BASE64_LINE = 76
"""Characters of base64 per line (57 bytes), as the email package writes them."""
_TEXT_PART_HEADERS = (
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
)


class DeliveryError(Exception):
    """The SMTP server did not take the message (or we cannot tell whether it did).

    `stage` says where the transaction stopped, `code`/`reply` carry the server's answer
    when there was one. `maybe_delivered` is True when the whole message had been sent
    but no 250 came back: look the Message-ID up at the provider before sending again.
    """

    permanent: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        stage: Stage,
        code: int | None = None,
        reply: str | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.stage: Stage = stage
        self.code = code
        self.reply = reply
        self.maybe_delivered = maybe_delivered


class TransientDeliveryError(DeliveryError):
    """Try again later: a 4xx reply, a refused or dropped connection, a timeout."""


class PermanentDeliveryError(DeliveryError):
    """This message cannot reach this recipient by e-mail (a 5xx at RCPT or DATA).

    The router falls back to another channel (paper) for the invoice.
    """

    permanent = True


class SmtpConfigurationError(DeliveryError):
    """Our side is wrong, not the recipient (5xx at connect/MAIL, no STARTTLS, bad certificate).

    Retrying or changing channel per invoice does not help: an operator must fix the
    tenant's SMTP settings. Deliberately not a `PermanentDeliveryError`.
    """

    permanent = True


class SmtpAuthenticationError(SmtpConfigurationError):
    """The server refused our credentials (535) or demands AUTH we did not do (530)."""


@dataclass(frozen=True)
class EmailAttachment:
    """A further file to attach (the PEPPOL XML, a specification)."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class SendResult:
    """The server took responsibility for the message (250 after the message body)."""

    message_id: str
    recipient: str
    code: int
    reply: str
    """The server's final reply text; providers usually put their queue id in it."""


def message_id_for(idempotency_key: str, domain: str = "nordflow") -> str:
    """A Message-ID determined by the delivery's idempotency key: `<key@domain>`.

    Characters a msg-id cannot hold (':' for instance) are %-escaped, and '%' and '.'
    too, so distinct keys give distinct ids and every retry of one delivery gives the same.
    """
    if not idempotency_key:
        raise ValueError("the idempotency key is empty")
    local = quote(idempotency_key, safe=_KEY_SAFE).replace(".", "%2E")
    message_id = f"<{local}@{domain}>"
    if not _MESSAGE_ID.match(message_id):
        raise ValueError(f"cannot make a Message-ID with domain {domain!r}")
    return message_id


def _single_line(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be a single line")
    return value


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.partition("/")
    if not maintype or not subtype or "/" in subtype:
        raise ValueError(f"not a MIME type: {content_type!r}")
    return maintype, subtype


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


# ------------------------------------------------------------------------------- MIME


def _field(name: str, value: str, smtputf8: bool) -> bytes:
    """One header field, CRLF-ended, as policy.SMTP (policy.SMTPUTF8) writes it.

    A plain value (`_plain`) that fits on one line is written as it is, as the header
    registry writes it too. Anything else goes through the registry (`_folded`).
    """
    line = f"{name}: {value}"
    if len(line) <= _HEADER_LINE and _plain(value):
        return line.encode("ascii") + _CRLF
    return _folded(name, value, smtputf8)


def _plain(value: str) -> bool:
    """Printable ASCII, not empty, with no blank at either end and nothing like an RFC 2047
    encoded word (which the registry would decode). MIME parameters must be quoted already."""
    return (
        value.isascii()
        and value.isprintable()
        and value.strip() == value != ""
        and "=?" not in value
    )


def _folded(name: str, value: str, smtputf8: bool) -> bytes:
    """The field as the email package's header registry writes it: parsed, then folded and
    encoded (RFC 2047 words, RFC 2231 parameters; UTF-8 as it is under SMTPUTF8)."""
    folding = policy.SMTPUTF8 if smtputf8 else policy.SMTP
    return folding.fold_binary(name, folding.header_factory(name, value))


def _text_part(body_text: str) -> bytes:
    """The text body in UTF-8, quoted-printable, its lines split as `set_content` split them.

    Quoted-printable keeps the body 7-bit, so no server needs 8BITMIME. binascii's encoder
    (C) does what the email package's quoprimime did in Python, one character at a time.
    """
    lines = body_text.encode("utf-8").splitlines()
    encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n")
    # Quoted-printable has no bare CR or LF of its own: every LF is a line end.
    return _TEXT_PART_HEADERS + encoded.replace(b"\n", _CRLF)


def _file_part(content_type: str, content: bytes, filename: str, *, smtputf8: bool) -> bytes:
    """One file as `add_attachment` wrote it, base64 with its type and name.

    add_attachment also gave every such part a MIME-Version field; it is kept, so that the
    parts stay what they were.
    """
    return b"".join(
        (
            _type_field(content_type, smtputf8),
            b"Content-Transfer-Encoding: base64\r\n",
            _disposition_field(filename, smtputf8),
            b"MIME-Version: 1.0\r\n",
            _CRLF,
            _base64_lines(content),
        )
    )


def _type_field(content_type: str, smtputf8: bool) -> bytes:
    """Content-Type of a file. A bare type (no parameters, no blanks) is one token, which the
    registry writes as it is however long (`application/vnd.openxmlformats-…`); it quotes the
    values of parameters (`charset="utf-8"`), so a type with any goes through it."""
    if _plain(content_type) and " " not in content_type and ";" not in content_type:
        return f"Content-Type: {content_type}\r\n".encode("ascii")
    return _folded("Content-Type", content_type, smtputf8)


def _disposition_field(filename: str, smtputf8: bool) -> bytes:
    """Content-Disposition: `attachment` with the filename quoted, or RFC 2231-encoded in UTF-8
    when not ASCII (under SMTPUTF8 the registry writes such a name in UTF-8 as it is)."""
    if filename.isascii():
        value = f'attachment; filename="{utils.quote(filename)}"'
    else:
        value = f"attachment; filename*={utils.encode_rfc2231(filename, 'utf-8', '')}"
        if smtputf8:
            return _folded("Content-Disposition", value, smtputf8)
    return _field("Content-Disposition", value, smtputf8)


def _base64_lines(content: bytes) -> bytes:
    """`content` in base64, in CRLF-ended lines of 76 characters."""
    encoded = binascii.b2a_base64(content, newline=False)
    if not encoded:
        return b""
    lines = [encoded[i : i + _BASE64_LINE] for i in range(0, len(encoded), _BASE64_LINE)]
    return _CRLF.join(lines) + _CRLF


def _multipart(head: Sequence[bytes], parts: Sequence[bytes]) -> bytes:
    """The message: `head`'s fields, then `parts` in one multipart/mixed.

    The boundary has the email package's form, `=` * 15, 19 digits, `==`. It cannot occur
    in a part: every line there is a header field of ours, base64 (no `-`), or
    quoted-printable (where `=` is always followed by two hex digits or the line end).
    """
    boundary = f"{'=' * 15}{secrets.randbelow(sys.maxsize):019d}==".encode("ascii")
    delimiter = b"--" + boundary
    return b"".join(
        (
            *head,
            b"MIME-Version: 1.0\r\n",
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n',
            _CRLF,
            delimiter + _CRLF,
            (_CRLF + delimiter + _CRLF).join(parts),
            _CRLF + delimiter + b"--" + _CRLF,
        )
    )


@dataclass
class _Transaction:
    """How far one SMTP transaction got, for classifying what goes wrong."""

    stage: Stage = "connect"


# A session kept for the next send is closed once it has been idle this long (servers wait at
# least 5 minutes for a command, RFC 5321 4.5.3.2.7) or has carried this many messages.
IDLE_SECONDS = 30.0
MESSAGES_PER_CONNECTION = 100


@dataclass
class _Session:
    """An open SMTP session, greeted, secured and logged in, between two messages."""

    smtp: smtplib.SMTP
    sent: int = 0
    idle_since: float = 0.0


class _IdleSessions:
    """The sessions of earlier sends that ended well, for the next sends (thread-safe: the
    sends run in worker threads). At most one send uses a session at a time."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: list[_Session] = []

    def take(self) -> tuple[_Session | None, list[_Session]]:
        """The newest session still fresh (or None), and those idle too long (to close)."""
        with self._lock:
            now = self._clock()
            stale = [s for s in self._sessions if now - s.idle_since >= self.idle_seconds]
            self._sessions = [s for s in self._sessions if now - s.idle_since < self.idle_seconds]
            return (self._sessions.pop() if self._sessions else None), stale

    def give(self, session: _Session) -> None:
        with self._lock:
            session.idle_since = self._clock()
            self._sessions.append(session)

    def drain(self) -> list[_Session]:
        """Every kept session (to close); none is kept after."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
            return sessions


class _SessionClosedError(Exception):
    """A kept session the server had closed: no command of this send reached it."""


class EmailSender:
    """Sends one invoice e-mail per call to an SMTP submission server.

    The calls share sessions: one that carried a message well is kept (at most
    ``idle_seconds``, at most ``messages_per_connection`` messages) so that the next message
    needs no new connection, TLS handshake or login; one that failed is closed, and `close`
    QUITs those kept.

    SMTP has no idempotency: every accepted DATA is a new e-mail, and a reply lost after
    the message was sent (timeout, dropped connection) leaves the outcome unknown. What
    this adapter guarantees:

    - the Message-ID is the caller's (`message_id_for(idempotency_key)`), so every attempt
      of one delivery carries the same id and the provider's log can be searched for it;
    - `SendResult` is returned only after a 250 to the message body: the server has taken
      responsibility for it;
    - a `DeliveryError` with `maybe_delivered=True` is raised whenever the body was fully
      sent without a 250 seen (also for a 4xx/5xx there: RFC 5321 says "not taken", but
      gateways have delivered anyway). The caller must look the Message-ID up in the
      provider's log (in tests, the SMTP sandbox's inspection API) before trying again;
      otherwise the recipient may get two e-mails. Earlier failures never sent the body;
    - it never retries by itself, and cancelling the awaiting task does not stop a send
      already under way in its thread (treat that like `maybe_delivered`).

    Errors: `TransientDeliveryError` (4xx, connection errors, timeouts: retry with
    backoff), `PermanentDeliveryError` (5xx at RCPT or for the message: fall back to
    paper), `SmtpConfigurationError`/`SmtpAuthenticationError` (our settings: alert).
    The password is only handed to `smtplib.login`; it is never logged, never put in an
    error, and errors raised here keep no reference to smtplib's frames.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None,
        password: SecretStr | None,
        starttls: bool,
        from_address: str,
        *,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        max_concurrent: int = 8,
        idle_seconds: float = IDLE_SECONDS,
        messages_per_connection: int = MESSAGES_PER_CONNECTION,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.starttls = starttls
        self.from_address = _single_line("from_address", from_address)
        self.timeout = timeout
        # The system's trust store is loaded once, not for every message (~22 ms of CPU each).
        self._ssl_context = ssl_context or (ssl.create_default_context() if starttls else None)
        self.local_hostname = local_hostname
        self._clock = clock
        self._from_fields: dict[bool, bytes] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self.messages_per_connection = messages_per_connection
        self._idle = _IdleSessions(idle_seconds)

    def __repr__(self) -> str:
        return (
            f"EmailSender(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"starttls={self.starttls}, from_address={self.from_address!r})"
        )

    # ---------------------------------------------------------------------------- message

    def build_message(
        self,
        *,
        to: str,
        subject: str,
        body_text: str,
        pdf: bytes,
        pdf_name: str,
        attachments: Sequence[EmailAttachment] = (),
        message_id: str,
    ) -> bytes:
        """The MIME message `send_invoice` sends: text body, the PDF, then `attachments`.

        The bytes of the DATA: CRLF line ends, 7-bit unless an address needs SMTPUTF8. The
        message is the one `EmailMessage(policy=policy.SMTP)` built with `set_content` and
        `add_attachment` (multipart/mixed; the text quoted-printable UTF-8; every file
        base64 with its type and name), written directly: the email package's header
        registry parsed and refolded every field it was given (7.7 % of the e-mail stage's
        CPU); now only the fields it would change go through it (see `_field`).
        """
        if not _MESSAGE_ID.match(message_id):
            raise ValueError(f"not a Message-ID of the form <left@right>: {message_id!r}")
        smtputf8 = self._needs_smtputf8(to)
        head = [
            self._from_field(smtputf8),
            _field("To", _single_line("to", to), smtputf8),
            _field("Subject", _single_line("subject", subject), smtputf8),
            _field("Date", utils.format_datetime(self._clock()), smtputf8),
            _field("Message-ID", message_id, smtputf8),
        ]
        parts = [
            _text_part(body_text),
            _file_part(
                "application/pdf", pdf, _single_line("pdf_name", pdf_name), smtputf8=smtputf8
            ),
        ]
        for extra in attachments:
            _split_type(extra.content_type)  # refuses what is not `type/subtype`
            filename = _single_line("attachment filename", extra.filename)
            parts.append(_file_part(extra.content_type, extra.content, filename, smtputf8=smtputf8))
        return _multipart(head, parts)

    def _needs_smtputf8(self, to: str) -> bool:
        """Whether an address is not ASCII: then the server must offer SMTPUTF8."""
        return not (self.from_address + to).isascii()

    def _from_field(self, smtputf8: bool) -> bytes:
        """The From field, the same in every message: folded once per policy."""
        folded = self._from_fields.get(smtputf8)
        if folded is None:
            folded = self._from_fields[smtputf8] = _field("From", self.from_address, smtputf8)
        return folded

    async def send_invoice(
        self,
        *,
        to: str,
        subject: str,
        body_text: str,
        pdf: bytes,
        pdf_name: str,
        attachments: Sequence[EmailAttachment] = (),
        message_id: str,
    ) -> SendResult:
        """Send the invoice e-mail once; see the class docstring for what a failure means."""
        data = self.build_message(
            to=to,
            subject=subject,
            body_text=body_text,
            pdf=pdf,
            pdf_name=pdf_name,
            attachments=attachments,
            message_id=message_id,
        )
        smtputf8 = self._needs_smtputf8(to)
        async with self._slots:
            try:
                result = await asyncio.to_thread(self._send, data, to, message_id, smtputf8)
            except DeliveryError as error:
                logger.warning(
                    "invoice e-mail not accepted: %s",
                    error,
                    extra={
                        "fields": {
                            "message_id": message_id,
                            "smtp_stage": error.stage,
                            "smtp_code": error.code,
                            "maybe_delivered": error.maybe_delivered,
                            "permanent": error.permanent,
                        }
                    },
                )
                raise
        logger.info(
            "invoice e-mail accepted",
            extra={
                "fields": {
                    "message_id": message_id,
                    "smtp_code": result.code,
                    "smtp_reply": result.reply,
                }
            },
        )
        return result

    # ------------------------------------------------------------------------------- SMTP

    def _send(self, data: bytes, to: str, message_id: str, smtputf8: bool) -> SendResult:
        """One SMTP transaction, blocking; runs in a worker thread.

        It goes over the session of an earlier send when one is kept, else over a new one.
        A kept session the server closed meanwhile (the connection dropped, or 421, at MAIL:
        nothing of this message was sent) is given up, and the message goes over a new one.
        """
        session, stale = self._idle.take()
        for old in stale:
            self._close(old.smtp, polite=True)
        if session is not None:
            try:
                return self._send_over(session, data, to, message_id, smtputf8)
            except _SessionClosedError:
                pass
        return self._send_over(None, data, to, message_id, smtputf8)

    def _send_over(
        self, kept: _Session | None, data: bytes, to: str, message_id: str, smtputf8: bool
    ) -> SendResult:
        """The transaction over ``kept``, or over a new session; a session that ends well is
        kept for the next send (up to ``messages_per_connection`` messages), any other is
        closed."""
        progress = _Transaction()
        session = kept
        failure: DeliveryError | None = None
        sent = False
        try:
            if session is None:
                # Connects and reads the greeting (SMTPConnectError unless 220).
                session = _Session(
                    smtplib.SMTP(
                        self.host,
                        self.port,
                        local_hostname=self.local_hostname,
                        timeout=self.timeout,
                    )
                )
                self._open(session.smtp, progress)
            result = self._transact(session.smtp, progress, data, to, message_id, smtputf8)
            sent = True
        except DeliveryError as error:
            failure = error
        except (smtplib.SMTPException, OSError) as exc:
            failure = self._classify_exception(exc, progress.stage)
        finally:
            if session is not None:
                if sent:
                    session.sent += 1
                if sent and session.sent < self.messages_per_connection:
                    self._idle.give(session)
                else:
                    # QUIT when the server is talking to us; just close a broken connection.
                    self._close(session.smtp, polite=failure is None or failure.code is not None)
        if failure is not None:
            if (
                kept is not None
                and isinstance(failure, TransientDeliveryError)
                and failure.stage == "mail"
                and failure.code in (None, 421)
            ):
                raise _SessionClosedError from None
            # Raised outside the except clause, so no __context__ leads to smtplib's frames
            # (smtplib.login's locals hold the password).
            raise failure
        return result

    def close(self) -> None:
        """QUIT the sessions kept for the next sends (blocking)."""
        for session in self._idle.drain():
            self._close(session.smtp, polite=True)

    def _open(self, smtp: smtplib.SMTP, progress: _Transaction) -> None:
        """EHLO, STARTTLS and AUTH, as the settings ask: the session is ready for MAIL."""
        progress.stage = "ehlo"
        smtp.ehlo_or_helo_if_needed()
        if self.starttls:
            progress.stage = "starttls"
            if not smtp.has_extn("starttls"):
                raise SmtpConfigurationError(
                    "the SMTP server does not offer STARTTLS", stage=progress.stage
                )
            smtp.starttls(context=self._ssl_context)
            smtp.ehlo()
        if self.username is not None and self._password is not None:
            progress.stage = "auth"
            smtp.login(self.username, self._password.get_secret_value())

    def _transact(
        self,
        smtp: smtplib.SMTP,
        progress: _Transaction,
        data: bytes,
        to: str,
        message_id: str,
        smtputf8: bool,
    ) -> SendResult:
        """MAIL, RCPT and DATA over a session `_open` made ready."""
        progress.stage = "mail"
        options: list[str] = []
        if smtputf8:
            if not smtp.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    "the address needs SMTPUTF8, which the server does not offer",
                    stage=progress.stage,
                )
            options.append("SMTPUTF8")
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(data)}")
        code, reply = smtp.mail(self.from_address, options)
        self._expect(code, reply, (250,), progress.stage)
        progress.stage = "rcpt"
        code, reply = smtp.rcpt(to)
        self._expect(code, reply, (250, 251), progress.stage)
        progress.stage = "data"
        code, reply = smtp.docmd("DATA")
        self._expect(code, reply, (354,), progress.stage)
        body = _LEADING_DOT.sub(b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body + b".\r\n")
        progress.stage = "message"  # from here on the server may have the message
        code, reply = smtp.getreply()
        self._expect(code, reply, (250,), progress.stage)
        return SendResult(message_id=message_id, recipient=to, code=code, reply=_text(reply))

    def _expect(self, code: int, reply: bytes, ok: tuple[int, ...], stage: Stage) -> None:
        if code not in ok:
            raise self._classify(code, _text(reply), stage)

    def _classify(self, code: int, text: str, stage: Stage) -> DeliveryError:
        text = self._redact(text)
        kind: type[DeliveryError]
        if 500 <= code < 600:
            if stage == "auth" or code == 530 or (stage == "mail" and " 5.7.0" in f" {text}"):
                kind = SmtpAuthenticationError
            elif stage in ("connect", "ehlo", "starttls") or (stage == "mail" and code != 552):
                # The server refuses us or our sender address: nothing about the recipient.
                kind = SmtpConfigurationError
            else:
                kind = PermanentDeliveryError
        else:
            # 4xx, and anything unexpected (a protocol hiccup): worth another try later.
            kind = TransientDeliveryError
        return kind(
            f"SMTP {stage} refused: {code} {text}".rstrip(),
            stage=stage,
            code=code,
            reply=text,
            maybe_delivered=stage == "message",
        )

    def _classify_exception(self, exc: Exception, stage: Stage) -> DeliveryError:
        if isinstance(exc, smtplib.SMTPResponseException):  # incl. auth, connect, helo errors
            return self._classify(exc.smtp_code, _text(exc.smtp_error), stage)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return SmtpConfigurationError(
                f"SMTP {stage}: the server does not support it ({self._redact(str(exc))})",
                stage=stage,
            )
        if isinstance(exc, ssl.SSLCertVerificationError):
            return SmtpConfigurationError(
                f"SMTP {stage}: the server's certificate is not trusted ({exc.verify_message})",
                stage=stage,
            )
        if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
            timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc)
            kind = "timed out" if timed_out else "connection failed"
            return TransientDeliveryError(
                f"SMTP {stage} {kind}: {self._redact(str(exc)) or type(exc).__name__}",
                stage=stage,
                maybe_delivered=stage == "message",
            )
        # Any other SMTPException, e.g. "No suitable authentication method found."
        return SmtpConfigurationError(f"SMTP {stage}: {self._redact(str(exc))}", stage=stage)

    def _redact(self, text: str) -> str:
        """Remove the password (and its AUTH encodings) should a server ever echo it."""
        if self._password is None or self.username is None:
            return text
        secret = self._password.get_secret_value()
        if not secret:
            return text
        forms = {
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{self.username}\0{secret}".encode()).decode(),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "[redacted]")
        return text

    @staticmethod
    def _close(smtp: smtplib.SMTP, *, polite: bool) -> None:
        try:
            if polite:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # whatever happened is decided already; a failed QUIT changes nothing
        finally:
            smtp.close()
