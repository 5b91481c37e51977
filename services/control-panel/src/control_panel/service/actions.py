"""Operator actions as commands: checked against the read model, recorded, and returned for
the entrypoint to emit on ``operator.action_requested`` in the same transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from nordflow_schemas.events import OperatorAction, OperatorActionRequested
from nordflow_schemas.topics import DISTRIBUTION_ROUTER, ERP_POLLER

from ..domain.access import ForbiddenError, Principal
from ..domain.records import JobState
from . import Repositories


class NotFoundError(Exception):
    """Nothing of that id the principal may see."""


class ConflictError(Exception):
    """The action does not fit the target's state (e.g. the job is pending already)."""


def _requester(principal: Principal) -> str:
    who = "operator" if principal.operator else principal.tenant_id
    return f"{who}:{principal.name}"[:200]


async def _command(
    repos: Repositories,
    tenant_id: str,
    service: str,
    action: OperatorAction,
    target: str,
    principal: Principal,
    now: dt.datetime,
) -> OperatorActionRequested:
    principal.check_may_act()
    command = OperatorActionRequested(
        tenant_id=tenant_id,
        action_id=uuid.uuid4().hex,
        service=service,
        action=action,
        target_id=target,
        requested_by=_requester(principal),
        requested_at=now,
    )
    await repos.operations.action_requested(command)
    return command


async def retry_job(
    repos: Repositories, principal: Principal, service: str, job_id: int, now: dt.datetime
) -> OperatorActionRequested:
    """Ask the job's service to make a failed job pending again (its tenant or an operator)."""
    job = await repos.read.failed_job(service, job_id)
    if job is None or not principal.sees(job.tenant_id):
        raise NotFoundError(f"no failed job {job_id} of {service}")
    if job.state is not JobState.FAILED:
        raise ConflictError(f"job {job_id} of {service} is pending again already")
    return await _command(
        repos, job.tenant_id, service, OperatorAction.RETRY_JOB, str(job_id), principal, now
    )


async def replay_dead_letter(
    repos: Repositories, principal: Principal, letter_id: str, now: dt.datetime
) -> OperatorActionRequested:
    """Ask the service that dead-lettered a record to publish it again (operators only)."""
    letter = await repos.read.dead_letter(letter_id)
    if letter is None or not principal.sees(letter.tenant_id):
        raise NotFoundError(f"no dead letter {letter_id}")
    if not principal.may_replay:
        raise ForbiddenError("replaying a dead letter is an operator's action")
    return await _command(
        repos,
        letter.tenant_id,
        letter.consumer,
        OperatorAction.REPLAY_DEAD_LETTER,
        letter.position,
        principal,
        now,
    )


async def sync_connection(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    connection_id: str,
    now: dt.datetime,
) -> OperatorActionRequested:
    """Ask erp-poller to poll a connection now."""
    scope = principal.scope(tenant)
    if scope is None:
        raise NotFoundError("tenant: give the connection's tenant")
    connection = await repos.read.connection(scope, connection_id)
    if connection is None or connection.removed:
        raise NotFoundError(f"no connection {connection_id}")
    return await _command(
        repos,
        scope,
        ERP_POLLER,
        OperatorAction.SYNC_CONNECTION,
        connection_id,
        principal,
        now,
    )


async def decide_suggestion(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    suggestion_id: int,
    accept: bool,
    now: dt.datetime,
) -> OperatorActionRequested:
    """Ask distribution-router to accept a cheaper channel it suggested (it becomes the
    customer's channel) or to dismiss it."""
    scope = principal.scope(tenant)
    if scope is None:
        raise NotFoundError("tenant: give the suggestion's tenant")
    found = await repos.read.suggestion(scope, suggestion_id)
    if found is None:
        raise NotFoundError(f"no suggestion {suggestion_id}")
    if found.decision is not None:
        raise ConflictError(f"suggestion {suggestion_id} is {found.decision} already")
    action = OperatorAction.ACCEPT_SUGGESTION if accept else OperatorAction.DISMISS_SUGGESTION
    return await _command(
        repos, scope, DISTRIBUTION_ROUTER, action, str(suggestion_id), principal, now
    )


async def release_hold(
    repos: Repositories,
    principal: Principal,
    tenant: str | None,
    invoice_id: str,
    now: dt.datetime,
) -> OperatorActionRequested:
    """Ask distribution-router to send a held invoice now."""
    scope = principal.scope(tenant)
    if scope is None:
        raise NotFoundError("tenant: give the invoice's tenant")
    hold = await repos.read.hold(scope, invoice_id)
    if hold is None:
        raise NotFoundError(f"no hold for invoice {invoice_id}")
    if hold.released_at is not None or hold.held_until <= now:
        raise ConflictError(f"invoice {invoice_id} has left its hold already")
    return await _command(
        repos, scope, DISTRIBUTION_ROUTER, OperatorAction.RELEASE_HOLD, invoice_id, principal, now
    )
