"""Use cases of pushes: Sirvoy webhooks, Winner order pushes, on-premise agents' batches (JSON
or SIE 4i) and their customer registers.

Pushed documents take the same road as polled ones (`documents.emit_version`): each new
content version is recorded and written to the outbox as ``erp.document.fetched`` in one
transaction, so a document pushed twice (a webhook redelivered, an agent's retry) emits
nothing the second time, and a poll that later reads the same content emits nothing
either. A connection in manual mode — and any connection while its tenant has no profile —
keeps what is pushed in ``pending_documents`` until a sync request (or the profile) lets it
flow.

Winner and on-premise pushes are signed with the connection's push secret
(``nordflow_signing``); Sirvoy webhooks with the connection's webhook secret, the Sirvoy way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from secrets import token_hex
from typing import Any, NoReturn

from nordflow_connectors.sirvoy import InvalidPayload, InvalidSignature, verify_webhook
from nordflow_schemas.common import SourceSystem
from nordflow_signing import BATCH_HEADER, SignatureError, verify_signature
from pydantic import SecretStr, ValidationError

from ..domain import sie
from ..domain.connections import Connection, NotFoundError
from ..domain.credentials import SirvoyCredentials, parse_credentials
from ..domain.documents import Document, Outcome, counts
from ..domain.onprem import (
    BATCH_ID,
    BatchIn,
    CustomerRegisterIn,
    duplicate_customers,
    json_batch_documents,
    sie_batch_documents,
)
from ..domain.pushed import InvalidPushError, body_errors, json_object
from ..domain.sirvoy import sirvoy_documents
from ..domain.winner import WinnerOrderPush, winner_documents
from .documents import ingest_documents
from .ports import Secrets, UnitOfWork

log = logging.getLogger(__name__)


class PushRefusedError(Exception):
    """A push the connection did not sign (missing, wrong or stale signature, or a secret
    that cannot be used); the message never holds a secret."""


class BatchConflictError(Exception):
    """A batch id that was received before with other content."""


class UnsupportedMediaError(Exception):
    """A batch in a format erp-poller does not read."""


@dataclass(frozen=True)
class BatchAnswer:
    """What a batch push is answered: accepted (or a replay of the first answer), or refused
    with every document's problem (nothing of it is kept)."""

    body: dict[str, Any]
    accepted: bool = True


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def push_connection(uow: UnitOfWork, connection_id: str, system: SourceSystem) -> Connection:
    """The connection a push names, if it is one of ``system``."""
    async with uow.transaction() as repos:
        connection = await repos.connections.get(connection_id)
    if connection is None or connection.system is not system:
        raise NotFoundError(f"no {system.value} connection {connection_id!r}")
    return connection


# Pushes are answered alike whether the connection exists or not: an unknown one (or one of
# another system) is checked against a secret nobody holds, so its answer is exactly what a
# known connection gives a push it did not sign. Nobody learns which ids exist.
_NOBODYS_SECRET = token_hex(32)
NOT_SIGNED = "signature does not match the body (wrong secret or altered body)"


def refuse_unknown_push(system: SourceSystem, headers: Mapping[str, str], body: bytes) -> NoReturn:
    """Refuse a push to an unknown connection as a known one refuses an unsigned push."""
    try:
        if system is SourceSystem.SIRVOY:
            verify_webhook(SecretStr(_NOBODYS_SECRET), headers, body)
        else:
            verify_signature(_NOBODYS_SECRET, headers, body)
    except (InvalidSignature, SignatureError) as exc:
        raise PushRefusedError(str(exc)) from None
    except InvalidPayload:
        pass
    raise PushRefusedError(NOT_SIGNED)


def check_signature(
    secrets: Secrets, connection: Connection, headers: Mapping[str, str], body: bytes
) -> None:
    """Refuse (`PushRefusedError`) a Winner or on-premise push not signed with the
    connection's push secret within the last five minutes."""
    try:
        secret = secrets.open(connection.token_sealed)
    except ValueError:
        log.error("push secret of %s cannot be decrypted", connection.connection_id)
        refuse_unknown_push(connection.system, headers, body)
    try:
        verify_signature(secret.get_secret_value(), headers, body)
    except SignatureError as exc:
        log.warning("refused push to %s: %s", connection.connection_id, exc)
        raise PushRefusedError(str(exc)) from None


async def _ingest(
    uow: UnitOfWork, connection: Connection, documents: Sequence[Document], now: dt.datetime
) -> list[Outcome]:
    async with uow.transaction() as repos:
        profile = await repos.profiles.get(connection.tenant_id)
        return await ingest_documents(repos, connection, profile, documents, now)


async def ingest_sirvoy(
    uow: UnitOfWork,
    secrets: Secrets,
    connection: Connection,
    headers: Mapping[str, str],
    body: bytes,
    now: dt.datetime,
) -> dict[str, Any]:
    """A Sirvoy booking event webhook; its invoices and payments become documents."""
    try:
        credentials = parse_credentials(SourceSystem.SIRVOY, secrets.open(connection.token_sealed))
    except ValueError:
        credentials = None
    if not isinstance(credentials, SirvoyCredentials):
        log.error("webhook secret of %s is not usable", connection.connection_id)
        refuse_unknown_push(SourceSystem.SIRVOY, headers, body)
    try:
        event = verify_webhook(credentials.webhook_secret, headers, body)
    except InvalidSignature as exc:
        log.warning("refused Sirvoy webhook for %s: %s", connection.connection_id, exc)
        raise PushRefusedError(str(exc)) from None
    except InvalidPayload as exc:
        raise InvalidPushError(f"not a Sirvoy booking event: {exc}") from None
    outcomes = await _ingest(uow, connection, sirvoy_documents(json.loads(body), event), now)
    log.info(
        "Sirvoy %s event %s for booking %s: %s",
        event.event,
        event.event_id[:20],
        event.booking_id,
        counts(outcomes),
    )
    return {
        "event_id": event.event_id,
        "documents": [o.as_json() for o in outcomes],
        "counts": counts(outcomes),
    }


async def ingest_winner(
    uow: UnitOfWork, connection: Connection, body: bytes, now: dt.datetime
) -> dict[str, Any]:
    """An accepted Winner quote: one order document per payment-calendar part."""
    try:
        push = WinnerOrderPush.model_validate(json_object(body))
    except ValidationError as exc:
        raise InvalidPushError(body_errors(exc)) from None
    outcomes = await _ingest(uow, connection, winner_documents(push), now)
    log.info("Winner quote %s: %s", push.quote_number, counts(outcomes))
    return {
        "quote_number": push.quote_number,
        "documents": [o.as_json() for o in outcomes],
        "counts": counts(outcomes),
    }


def _json_batch(body: bytes) -> BatchIn:
    try:
        return BatchIn.model_validate(json_object(body))
    except ValidationError as exc:
        raise InvalidPushError(body_errors(exc)) from None


async def ingest_batch(
    uow: UnitOfWork,
    connection: Connection,
    *,
    media_type: str,
    batch_header: str | None,
    body: bytes,
    now: dt.datetime,
) -> BatchAnswer:
    """An on-premise agent's batch (JSON or SIE 4i): all or nothing, idempotent by batch id
    (the header's, a JSON batch's own, or an SIE file's SHA-256)."""
    header_id = (batch_header or "").strip() or None
    if header_id is not None and not BATCH_ID.match(header_id):
        raise InvalidPushError(
            [{"loc": ["header", BATCH_HEADER], "msg": "1-128 of A-Z a-z 0-9 . _ : -"}]
        )
    # Parsing and validating a batch of up to 10 MiB is CPU work of seconds: it runs in a
    # worker thread, so the service's event loop (its consumer, jobs, other requests) goes on.
    if media_type == "application/json":
        batch = await asyncio.to_thread(_json_batch, body)
        if header_id and batch.batch_id and header_id != batch.batch_id:
            raise InvalidPushError(
                [{"loc": ["body", "batch_id"], "msg": f"differs from {BATCH_HEADER}"}]
            )
        batch_id = header_id or batch.batch_id
        if batch_id is None:
            raise InvalidPushError(
                [{"loc": ["body", "batch_id"], "msg": f"give batch_id or {BATCH_HEADER}"}]
            )
        replay = await _replayed(uow, connection, batch_id, body)
        if replay is not None:
            return replay
        docs, problems = await asyncio.to_thread(json_batch_documents, batch_id, batch)
    elif media_type == "text/plain":
        batch_id = header_id or _digest(body)
        replay = await _replayed(uow, connection, batch_id, body)
        if replay is not None:
            return replay
        try:
            parsed = await asyncio.to_thread(sie.parse, body)
        except sie.SieError as exc:
            raise InvalidPushError(
                [{"loc": ["body", "line", exc.line], "msg": exc.reason, "type": "sie"}]
            ) from None
        named = {n for v in parsed.vouchers if (n := sie.customer_object(v))}
        async with uow.transaction() as repos:
            cards = await repos.pushes.registered_customers(connection, sorted(named))
        if named - cards.keys():
            log.info(
                "batch %s: %d of %d customers are not in the register",
                batch_id,
                len(named - cards.keys()),
                len(named),
            )
        docs, problems = await asyncio.to_thread(sie_batch_documents, batch_id, parsed, cards)
    else:
        raise UnsupportedMediaError(
            "send application/json (JSON batch) or text/plain (SIE 4i, CP437)"
        )
    if any(p.outcome == "error" for p in problems):
        refused = {
            "batch_id": batch_id,
            "accepted": False,
            "documents": [p.as_json() for p in problems],
            "counts": counts(problems),
        }
        return BatchAnswer(refused, accepted=False)
    return await _accept(uow, connection, batch_id, body, docs, problems, now)


async def _replayed(
    uow: UnitOfWork, connection: Connection, batch_id: str, body: bytes
) -> BatchAnswer | None:
    """The first answer to a batch received before; BatchConflictError for other content."""
    async with uow.transaction() as repos:
        received = await repos.pushes.received_batch(connection.connection_id, batch_id)
    if received is None:
        return None
    if received.body_sha256 != _digest(body):
        raise BatchConflictError(f"batch {batch_id!r} was received with other content")
    log.info("batch %s received again: answering the first result", batch_id)
    return BatchAnswer({**received.response, "replayed": True})


async def _accept(
    uow: UnitOfWork,
    connection: Connection,
    batch_id: str,
    body: bytes,
    docs: Sequence[Document],
    skipped: Sequence[Outcome],
    now: dt.datetime,
) -> BatchAnswer:
    async with uow.transaction() as repos:
        # The batch's row serialises concurrent pushes of one batch: the second waits,
        # finds the first committed, and answers its result.
        claimed = await repos.pushes.claim_batch(
            connection.connection_id, batch_id, connection.tenant_id, _digest(body)
        )
        if claimed:
            profile = await repos.profiles.get(connection.tenant_id)
            outcomes = [
                *await ingest_documents(repos, connection, profile, docs, now),
                *skipped,
            ]
            response = {
                "batch_id": batch_id,
                "accepted": True,
                "replayed": False,
                "documents": [o.as_json() for o in outcomes],
                "counts": counts(outcomes),
            }
            await repos.pushes.answer_batch(connection.connection_id, batch_id, response)
    if not claimed:
        again = await _replayed(uow, connection, batch_id, body)
        assert again is not None  # the conflicting row is committed
        return again
    log.info("batch %s on %s: %s", batch_id, connection.connection_id, response["counts"])
    return BatchAnswer(response)


async def push_customer_register(
    uow: UnitOfWork, connection: Connection, body: bytes
) -> dict[str, Any]:
    """An on-premise agent's customer register (or part of it), upserted by number; SIE
    batches pushed afterwards carry each voucher's registered customer."""
    try:
        register = CustomerRegisterIn.model_validate(json_object(body))
    except ValidationError as exc:
        raise InvalidPushError(body_errors(exc)) from None
    duplicates = duplicate_customers(register)
    if duplicates:
        raise InvalidPushError(duplicates)
    entries = [(c.customer_number, c.model_dump(mode="json")) for c in register.customers]
    async with uow.transaction() as repos:
        upserted = await repos.pushes.upsert_customers(connection, entries)
    log.info("customer register of %s: %s", connection.connection_id, upserted)
    return {
        "connection_id": connection.connection_id,
        "received": len(register.customers),
        **upserted,
    }
