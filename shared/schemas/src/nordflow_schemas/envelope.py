"""CloudEvents 1.0 in Kafka binary mode: attributes as ce_* headers, the JSON body as value."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import ValidationError

from .events import Event
from .topics import BY_CE_TYPE, topic_for

E = TypeVar("E", bound=Event)

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
Headers = Sequence[tuple[str, bytes]]


class DecodeError(Exception):
    """A record that is not a valid Nordflow event; the message says why (for the DLQ)."""


@dataclass(frozen=True)
class Envelope(Generic[E]):
    """One event with its CloudEvents attributes; ``key`` is the body's record key."""

    body: E
    source: str
    type: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    subject: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    @property
    def tenant_id(self) -> str:
        """The ``ce_tenantid`` extension attribute."""
        return self.body.tenant_id

    @property
    def key(self) -> str:
        """The record key (an invoice's canonical id, a tenant's id): one key, one partition."""
        return self.body.record_key

    @property
    def topic(self) -> str:
        """The topic this event belongs on."""
        return topic_for(type(self.body)).name


def envelope(
    body: E,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: dt.datetime | None = None,
) -> Envelope[E]:
    """Wrap a body with the attributes its topic prescribes."""
    return Envelope(
        body=body,
        source=source,
        type=topic_for(type(body)).ce_type,
        id=event_id or str(uuid.uuid4()),
        time=time or dt.datetime.now(dt.UTC),
        subject=subject,
    )


def encode(env: Envelope[Event]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record for an event."""
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", env.id),
        ("ce_source", env.source),
        ("ce_type", env.type),
        ("ce_time", env.time.isoformat()),
        ("ce_tenantid", env.tenant_id),
        ("content-type", CONTENT_TYPE),
    ]
    if env.subject:
        headers.append(("ce_subject", env.subject))
    if env.traceparent:
        headers.append((TRACEPARENT, env.traceparent))
    if env.tracestate:
        headers.append((TRACESTATE, env.tracestate))
    value = env.body.model_dump_json(by_alias=True).encode()
    return env.key.encode(), value, [(k, v.encode()) for k, v in headers]


def header_map(headers: Headers | None) -> dict[str, str]:
    """Headers as text; undecodable header bytes are replaced rather than raised."""
    return {k: v.decode("utf-8", "replace") for k, v in headers or ()}


def decode(value: bytes | None, headers: Headers | None) -> Envelope[Event]:
    """Validate a record into an envelope, or raise DecodeError naming what is wrong."""
    attrs = header_map(headers)
    missing = [
        name
        for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_tenantid")
        if not attrs.get(name)
    ]
    if missing:
        raise DecodeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if attrs["ce_specversion"] != SPEC_VERSION:
        raise DecodeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
    spec = BY_CE_TYPE.get(attrs["ce_type"])
    if spec is None or spec.event is None:
        raise DecodeError(f"unknown ce_type {attrs['ce_type']!r}")
    try:
        time = dt.datetime.fromisoformat(attrs["ce_time"])
    except ValueError as exc:
        raise DecodeError(f"ce_time is not an ISO 8601 time: {attrs['ce_time']!r}") from exc
    if time.tzinfo is None:
        raise DecodeError("ce_time has no time zone")
    if value is None:
        raise DecodeError("record has no value")
    try:
        body = spec.event.model_validate_json(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
            for err in exc.errors()[:10]
        )
        raise DecodeError(f"{spec.ce_type} body invalid: {problems}") from exc
    if body.tenant_id != attrs["ce_tenantid"]:
        raise DecodeError("ce_tenantid does not match the body's tenant_id")
    return Envelope(
        body=body,
        source=attrs["ce_source"],
        type=attrs["ce_type"],
        id=attrs["ce_id"],
        time=time,
        subject=attrs.get("ce_subject"),
        traceparent=attrs.get(TRACEPARENT),
        tracestate=attrs.get(TRACESTATE),
    )
