"""The SMTP sandbox's in-memory store: received messages, pending faults and bounce rules."""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from typing import Any, Literal

from nordflow_sandboxes.kit.values import utc_now

logger = logging.getLogger("nordflow_sandboxes.smtp")

Stage = Literal["mail", "rcpt", "data"]
MessageKind = Literal["message", "bounce"]

# An SMTP reply a fault may answer with: a 4xx or 5xx code, then optional text.
FAULT_REPLY = re.compile(r"^[45][0-9]{2}(?: [^\r\n]*)?$")


def normalize_address(address: str) -> str:
    """Addresses compare case-insensitively and without angle brackets."""
    return address.strip().strip("<>").strip().lower()


def normalize_message_id(message_id: str) -> str:
    """`<a@b>` and `a@b` name the same Message-ID."""
    return message_id.strip().strip("<>").strip()


@dataclass(frozen=True)
class Attachment:
    """One attached part of a stored message (the bytes after transfer decoding)."""

    index: int
    filename: str | None
    content_type: str
    content: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Decoded size in bytes."""
        return len(self.content)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the decoded content."""
        return hashlib.sha256(self.content).hexdigest()

    def as_json(self) -> dict[str, Any]:
        """The inspection API's view (without the content)."""
        return {
            "index": self.index,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class BounceInfo:
    """What a DSN reports: which message could not be delivered to whom, and why."""

    original_id: str
    original_message_id: str | None
    recipient: str
    status: str
    diagnostic: str

    def as_json(self) -> dict[str, Any]:
        """The inspection API's view."""
        return {
            "original_id": self.original_id,
            "original_message_id": self.original_message_id,
            "recipient": self.recipient,
            "status": self.status,
            "diagnostic": self.diagnostic,
        }


@dataclass(frozen=True)
class Description:
    """What a message's bytes say: its headers, Message-ID, Subject, first text/plain body
    and attachments."""

    headers: tuple[tuple[str, str], ...] = ()
    message_id: str | None = None
    subject: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class StoredMessage:
    """One message the sandbox accepted (or generated, for bounces), as a provider log holds it.

    Its bytes are parsed when it is first inspected, not when it is accepted: parsing (about
    2 ms a message) is work a provider's mail server does not do while the client waits,
    and a benchmark's sends need not pay for it.
    """

    id: str
    kind: MessageKind
    received_at: datetime
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes = field(repr=False)
    reply: str
    authenticated_as: str | None = None
    tls: bool = False
    peer: str | None = None
    bounce: BounceInfo | None = None

    @cached_property
    def description(self) -> Description:
        """The parsed message (once; a message that cannot be parsed has an empty one)."""
        try:
            return describe(self.raw)
        except Exception:  # the raw bytes stay inspectable at `/raw`
            logger.exception("cannot parse message %s", self.id)
            return Description()

    def as_json(self) -> dict[str, Any]:
        """The inspection API's view (the raw bytes are at `/raw`)."""
        described = self.description
        return {
            "id": self.id,
            "kind": self.kind,
            "received_at": self.received_at.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": list(self.rcpt_tos),
            "message_id": described.message_id,
            "subject": described.subject,
            "headers": [[name, value] for name, value in described.headers],
            "text": described.text,
            "attachments": [a.as_json() for a in described.attachments],
            "size": len(self.raw),
            "sha256": hashlib.sha256(self.raw).hexdigest(),
            "reply": self.reply,
            "authenticated_as": self.authenticated_as,
            "tls": self.tls,
            "peer": self.peer,
            "bounce": None if self.bounce is None else self.bounce.as_json(),
        }


@dataclass
class Fault:
    """A queued failure: the next `remaining` matching commands answer `reply` instead.

    `stage` is the command it answers: MAIL, RCPT (of `recipient`, when given) or the end
    of DATA. With `after_data` the message is stored first, so the client sees a failure
    for a message the provider has (a lost answer). `delay_seconds` waits before
    answering; `disconnect` drops the connection instead of answering; with neither
    `reply` nor `disconnect` the normal answer comes, late. `remaining` None means until
    the fault is deleted.
    """

    id: str
    stage: Stage
    reply: str | None
    remaining: int | None = 1
    recipient: str | None = None
    after_data: bool = False
    delay_seconds: float = 0.0
    disconnect: bool = False

    def matches(self, stage: Stage, recipients: Iterable[str]) -> bool:
        """Whether this fault applies to a command at `stage` for these recipients."""
        if self.stage != stage:
            return False
        if self.recipient is None:
            return True
        wanted = normalize_address(self.recipient)
        return any(normalize_address(r) == wanted for r in recipients)

    def as_json(self) -> dict[str, Any]:
        """The inspection API's view."""
        return {
            "id": self.id,
            "stage": self.stage,
            "reply": self.reply,
            "count": self.remaining,
            "recipient": self.recipient,
            "after_data": self.after_data,
            "delay_seconds": self.delay_seconds,
            "disconnect": self.disconnect,
        }


@dataclass
class BounceRule:
    """A recipient whose mail is accepted at RCPT, then bounced with a DSN to the sender."""

    recipient: str
    status: str = "5.1.1"
    diagnostic: str = "550 5.1.1 The email account that you tried to reach does not exist"
    delay_seconds: float = 0.0
    remaining: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The inspection API's view."""
        return {
            "recipient": self.recipient,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "delay_seconds": self.delay_seconds,
            "count": self.remaining,
        }


@dataclass(frozen=True)
class Delivery:
    """What the SMTP side knows about one transaction when it is stored.

    `reply` is what the client is answered; `{id}` in it becomes the sandbox id.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    reply: str
    authenticated_as: str | None = None
    tls: bool = False
    peer: str | None = None


def _parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default always builds EmailMessage
    return message


def _is_attachment(part: EmailMessage) -> bool:
    return part.get_content_disposition() == "attachment" or (
        part.get_filename() is not None and part.get_content_maintype() != "multipart"
    )


def _decoded(part: EmailMessage) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def describe(raw: bytes) -> Description:
    """Headers, Message-ID, Subject, first text/plain body and attachments of raw bytes."""
    message = _parse(raw)
    headers = tuple((name, str(value)) for name, value in message.items())
    message_id = message.get("Message-ID")
    subject = message.get("Subject")
    text: str | None = None
    attachments: list[Attachment] = []
    for part in message.walk():
        if not isinstance(part, EmailMessage) or part.is_multipart():
            continue
        if _is_attachment(part):
            attachments.append(
                Attachment(
                    index=len(attachments),
                    filename=part.get_filename(),
                    content_type=part.get_content_type(),
                    content=_decoded(part),
                )
            )
        elif text is None and part.get_content_type() == "text/plain":
            try:
                text = str(part.get_content())
            except (LookupError, UnicodeDecodeError):
                text = _decoded(part).decode("utf-8", errors="replace")
            text = text.replace("\r\n", "\n")
    return Description(
        headers=headers,
        message_id=None if message_id is None else str(message_id).strip(),
        subject=None if subject is None else str(subject),
        text=text,
        attachments=tuple(attachments),
    )


class SmtpState:
    """Everything the SMTP sandbox knows, guarded by one lock.

    The SMTP listener and the HTTP API share it (usually on one event loop); tests may
    read it from another thread, hence the lock. No code awaits while holding it.
    """

    def __init__(self, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self._messages: dict[str, StoredMessage] = {}
        self._faults: list[Fault] = []
        self._bounces: list[BounceRule] = []
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------------- messages

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(3)}"

    def store(self, delivery: Delivery) -> StoredMessage:
        """Record an accepted message; returns it with its sandbox id."""
        with self.lock:
            stored_id = self._new_id("msg")
            stored = StoredMessage(
                id=stored_id,
                kind="message",
                received_at=self.clock(),
                mail_from=delivery.mail_from,
                rcpt_tos=delivery.rcpt_tos,
                raw=delivery.raw,
                reply=delivery.reply.replace("{id}", stored_id),
                authenticated_as=delivery.authenticated_as,
                tls=delivery.tls,
                peer=delivery.peer,
            )
            self._messages[stored.id] = stored
            return stored

    def store_bounce(self, raw: bytes, to: str, bounce: BounceInfo) -> StoredMessage:
        """Record a generated DSN, sent with the null sender `<>` to `to`."""
        with self.lock:
            stored = StoredMessage(
                id=self._new_id("dsn"),
                kind="bounce",
                received_at=self.clock(),
                mail_from="",
                rcpt_tos=(to,),
                raw=raw,
                reply="250 2.0.0 OK (generated)",
                bounce=bounce,
            )
            self._messages[stored.id] = stored
            return stored

    def messages(
        self,
        *,
        to: str | None = None,
        mail_from: str | None = None,
        message_id: str | None = None,
        kind: MessageKind | None = None,
    ) -> list[StoredMessage]:
        """Stored messages, oldest first, filtered by envelope recipient, sender, Message-ID."""
        with self.lock:
            found = list(self._messages.values())
        if to is not None:
            wanted = normalize_address(to)
            found = [m for m in found if wanted in {normalize_address(r) for r in m.rcpt_tos}]
        if mail_from is not None:
            sender = normalize_address(mail_from)
            found = [m for m in found if normalize_address(m.mail_from) == sender]
        if message_id is not None:
            mid = normalize_message_id(message_id)
            found = [
                m
                for m in found
                if (found_id := m.description.message_id) is not None
                and normalize_message_id(found_id) == mid
            ]
        if kind is not None:
            found = [m for m in found if m.kind == kind]
        return found

    def message(self, message_id: str) -> StoredMessage | None:
        """One stored message by its sandbox id."""
        with self.lock:
            return self._messages.get(message_id)

    def clear_messages(self) -> int:
        """Forget every stored message; returns how many there were."""
        with self.lock:
            count = len(self._messages)
            self._messages.clear()
            return count

    # --------------------------------------------------------------------------- faults

    def add_fault(
        self,
        *,
        stage: Stage,
        reply: str | None,
        count: int | None = 1,
        recipient: str | None = None,
        after_data: bool = False,
        delay_seconds: float = 0.0,
        disconnect: bool = False,
    ) -> Fault:
        """Queue a fault (see `Fault`); faults are taken in the order they were added."""
        if reply is not None and not FAULT_REPLY.match(reply):
            raise ValueError("reply must be a 4xx or 5xx SMTP reply such as '451 4.3.0 try later'")
        if after_data and stage != "data":
            raise ValueError("after_data faults answer the end of DATA")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or null: until deleted)")
        with self.lock:
            fault = Fault(
                id=self._new_id("flt"),
                stage=stage,
                reply=reply,
                remaining=count,
                recipient=recipient,
                after_data=after_data,
                delay_seconds=delay_seconds,
                disconnect=disconnect,
            )
            self._faults.append(fault)
            return fault

    def take_fault(self, stage: Stage, recipients: Iterable[str] = ()) -> Fault | None:
        """The first pending fault for this command, counted down (and dropped at zero)."""
        recipients = tuple(recipients)
        with self.lock:
            for fault in self._faults:
                if fault.matches(stage, recipients):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def faults(self) -> list[Fault]:
        """Pending faults, in the order they apply."""
        with self.lock:
            return list(self._faults)

    def clear_faults(self) -> int:
        """Drop every pending fault; returns how many there were."""
        with self.lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    # -------------------------------------------------------------------------- bounces

    def add_bounce(self, rule: BounceRule) -> BounceRule:
        """Register a recipient to bounce (replacing an earlier rule for the same address)."""
        if rule.remaining is not None and rule.remaining < 1:
            raise ValueError("count must be at least 1 (or null: until deleted)")
        with self.lock:
            wanted = normalize_address(rule.recipient)
            self._bounces = [b for b in self._bounces if normalize_address(b.recipient) != wanted]
            self._bounces.append(rule)
            return rule

    def take_bounce(self, recipient: str) -> BounceRule | None:
        """The rule for `recipient`, counted down (and dropped at zero), or None."""
        wanted = normalize_address(recipient)
        with self.lock:
            for rule in self._bounces:
                if normalize_address(rule.recipient) == wanted:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._bounces.remove(rule)
                    return rule
        return None

    def bounces(self) -> list[BounceRule]:
        """Registered bounce rules."""
        with self.lock:
            return list(self._bounces)

    def clear_bounces(self) -> int:
        """Drop every bounce rule; returns how many there were."""
        with self.lock:
            count = len(self._bounces)
            self._bounces.clear()
            return count
