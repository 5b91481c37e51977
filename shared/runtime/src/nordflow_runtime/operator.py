"""Operator actions: every service consumes ``operator.action_requested`` and carries out the
commands addressed to it; ``retry_job`` and ``replay_dead_letter`` are carried out here, for
every service at once; a service adds its own actions (``ServiceApp.operator_action``).

Each command addressed to the service ends with one ``operator.action_completed`` (done,
not_found, refused or unsupported), written in the same transaction as what it did. A
command acts only on its own tenant's jobs and dead letters.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nordflow_schemas.envelope import Envelope
from nordflow_schemas.events import (
    ActionOutcome,
    OperatorAction,
    OperatorActionCompleted,
    OperatorActionRequested,
)

from . import dlq, jobs, outbox
from .consumer import Context

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How an action ended, with a message for the person who asked."""

    outcome: ActionOutcome
    message: str


OperatorHandler = Callable[[Context[Any], OperatorActionRequested], Awaitable[Outcome]]
LetterReader = Callable[[int, int], Awaitable[dlq.DeadLetter | None]]


def parse_position(target: str) -> tuple[int, int] | None:
    """``"<partition>:<offset>"`` of a dead letter, or None when it is not one."""
    partition, _, offset = target.partition(":")
    if not (partition.isdigit() and offset.isdigit()):
        return None
    return int(partition), int(offset)


class OperatorActions:
    """The ``operator.action_requested`` handler of one service."""

    def __init__(self, service: str, read_letter: LetterReader) -> None:
        self.service = service
        self.read_letter = read_letter
        self.handlers: dict[OperatorAction, OperatorHandler] = {
            OperatorAction.RETRY_JOB: self.retry_job,
            OperatorAction.REPLAY_DEAD_LETTER: self.replay_dead_letter,
        }

    def register(self, action: OperatorAction, handler: OperatorHandler) -> None:
        """The service carries out ``action`` itself (e.g. erp-poller's sync_connection)."""
        self.handlers[action] = handler

    async def handle(self, ctx: Context[Any], env: Envelope[OperatorActionRequested]) -> None:
        """Carry out a command addressed to this service; ignore the others'."""
        command = env.body
        if command.service != self.service:
            return
        handler = self.handlers.get(command.action)
        if handler is None:
            result = Outcome(
                ActionOutcome.UNSUPPORTED,
                f"{self.service} does not carry out {command.action.value}",
            )
        else:
            result = await handler(ctx, command)
        log.info(
            "operator action %s",
            result.outcome.value,
            extra={
                "fields": {
                    "action": command.action.value,
                    "target_id": command.target_id,
                    "requested_by": command.requested_by,
                }
            },
        )
        await ctx.emit(
            OperatorActionCompleted(
                tenant_id=command.tenant_id,
                action_id=command.action_id,
                service=self.service,
                action=command.action,
                target_id=command.target_id,
                outcome=result.outcome,
                message=result.message[:2000],
                completed_at=dt.datetime.now(dt.UTC),
            )
        )

    async def retry_job(self, ctx: Context[Any], command: OperatorActionRequested) -> Outcome:
        """Make the tenant's failed job pending again (announced on ``job.retried``)."""
        if not command.target_id.isdigit():
            return Outcome(ActionOutcome.REFUSED, f"{command.target_id!r} is not a job id")
        job_id = int(command.target_id)
        retried = await jobs.retry_failed(
            ctx.conn,
            ids=[job_id],
            tenant_id=command.tenant_id,
            service=self.service,
            requested_by=command.requested_by,
            action_id=command.action_id,
        )
        if retried:
            return Outcome(ActionOutcome.DONE, f"job {job_id} is pending again, due now")
        state = await jobs.job_state(ctx.conn, job_id, command.tenant_id)
        if state is None:
            return Outcome(ActionOutcome.NOT_FOUND, f"{self.service} has no job {job_id}")
        return Outcome(ActionOutcome.REFUSED, f"job {job_id} is {state}, not failed")

    async def replay_dead_letter(
        self, ctx: Context[Any], command: OperatorActionRequested
    ) -> Outcome:
        """Publish the service's own dead letter again to its topic (same event id), through
        the outbox: only this service processes it again, the others' inboxes drop it."""
        position = parse_position(command.target_id)
        if position is None:
            return Outcome(
                ActionOutcome.REFUSED, f"{command.target_id!r} is not a <partition>:<offset>"
            )
        letter = await self.read_letter(*position)
        if letter is None:
            return Outcome(
                ActionOutcome.NOT_FOUND, f"no dead letter at {command.target_id} (any more)"
            )
        if letter.consumer != self.service:
            return Outcome(
                ActionOutcome.REFUSED,
                f"the dead letter at {command.target_id} is {letter.consumer}'s",
            )
        if (letter.tenant_id or "unknown") != command.tenant_id:
            return Outcome(ActionOutcome.NOT_FOUND, f"no dead letter at {command.target_id}")
        await outbox.add_raw(
            ctx.conn,
            f"replay:{command.action_id}",
            letter.origin_topic,
            command.tenant_id,
            letter.key,
            letter.value,
            letter.original_headers(),
        )
        return Outcome(ActionOutcome.DONE, f"replayed to {letter.origin_topic}")
