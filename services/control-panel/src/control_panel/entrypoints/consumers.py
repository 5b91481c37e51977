"""Consumer handlers: every topic into the read model, through one use case per kind."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord
from nordflow_runtime import dlq
from nordflow_runtime.consumer import Context, Handler, PermanentError
from nordflow_schemas.envelope import Envelope, header_map
from nordflow_schemas.events import Event, OperatorActionRequested

from ..deps import Deps
from ..domain.journey import trace_id_of
from ..service import readmodel


def observed(env: Envelope[Event]) -> readmodel.Observed:
    """What the read model keeps of an envelope."""
    return readmodel.Observed(env.id, env.time, trace_id_of(env.traceparent), env.body)


async def on_event(ctx: Context[Deps], env: Envelope[Any]) -> None:
    """Any event of any topic: its step on an invoice's journey, and its own table."""
    try:
        await readmodel.apply_event(ctx.deps.repositories(ctx.conn), observed(env))
    except asyncpg.DataError as exc:
        # Text PostgreSQL cannot store (a NUL byte): this event can never be recorded, and
        # retrying the batch would stop the panel for good; dead-letter it instead.
        raise PermanentError(f"cannot record the event: {type(exc).__name__}") from exc


async def on_dead_lettered(ctx: Context[Deps], record: ConsumerRecord[Any, Any]) -> None:
    """A dead letter (raw bytes and x-nordflow-dlq-* headers): once per letter."""
    letter = dlq.letter_of(record)
    at = (
        dt.datetime.fromtimestamp(record.timestamp / 1000, dt.UTC)
        if record.timestamp
        else ctx.deps.clock()
    )
    row = readmodel.dead_letter_row(letter, dlq.inbox_id(record), dlq.tenant_of(record), at)
    trace = trace_id_of(header_map(record.headers).get("traceparent"))
    try:
        await readmodel.apply_dead_letter(ctx.deps.repositories(ctx.conn), row, trace)
    except asyncpg.DataError as exc:
        raise PermanentError(f"cannot record the dead letter: {type(exc).__name__}") from exc


def on_operator_action_requested(carry_out: Handler) -> Handler:
    """The runtime carries out commands addressed to control-panel itself (its own dead
    letters); every command is recorded, so a fresh read model has the actions too."""

    async def handler(ctx: Context[Deps], env: Envelope[OperatorActionRequested]) -> None:
        await carry_out(ctx, env)
        await on_event(ctx, env)

    return handler
