"""Operator actions distribution-router carries out (``operator.action_requested`` addressed
to it), the same use cases as its API's: ``accept_suggestion`` and ``dismiss_suggestion``
decide a cheaper channel it suggested, ``release_hold`` sends a held invoice now. The runtime
consumes the command, skips a redelivered one (its inbox) and announces the outcome on
``operator.action_completed`` in the same transaction; a released invoice's send job is woken
once that transaction commits."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_runtime.operator import Outcome
from nordflow_schemas.events import ActionOutcome, OperatorActionRequested

from ..deps import Deps
from ..domain import holds as rules
from ..service import channels, holds


async def _decide(ctx: Context[Deps], command: OperatorActionRequested, decision: str) -> Outcome:
    target = command.target_id
    if not target.isdigit() or len(target) > 18:
        return Outcome(ActionOutcome.REFUSED, f"{target!r} is not a suggestion id")
    try:
        await channels.decide_suggestion(
            ctx.deps.repositories(ctx.conn),
            command.tenant_id,
            int(target),
            decision,
            decided_by=command.requested_by,
        )
    except channels.SuggestionNotFoundError:
        # Another tenant's suggestion is answered like none at all.
        return Outcome(ActionOutcome.NOT_FOUND, f"no suggestion {target} of {command.tenant_id}")
    except channels.SuggestionDecidedError as exc:
        return Outcome(ActionOutcome.REFUSED, f"suggestion {target}: {exc}")
    return Outcome(ActionOutcome.DONE, f"suggestion {target} {decision}")


async def accept_suggestion(ctx: Context[Deps], command: OperatorActionRequested) -> Outcome:
    """The suggested channel becomes the customer's channel override."""
    return await _decide(ctx, command, "accepted")


async def dismiss_suggestion(ctx: Context[Deps], command: OperatorActionRequested) -> Outcome:
    """Not now: the channel is not suggested again for this customer for a while."""
    return await _decide(ctx, command, "dismissed")


async def release_hold(ctx: Context[Deps], command: OperatorActionRequested) -> Outcome:
    """Send the held invoice named by ``target_id`` now."""
    invoice_id = command.target_id
    try:
        await holds.release_hold(
            ctx.deps.repositories(ctx.conn),
            tenant_id=command.tenant_id,
            invoice_id=invoice_id,
            released_by=command.requested_by,
        )
    except rules.HoldNotFoundError as exc:
        return Outcome(ActionOutcome.NOT_FOUND, str(exc))
    except rules.HoldError as exc:
        return Outcome(ActionOutcome.REFUSED, str(exc))
    return Outcome(ActionOutcome.DONE, f"invoice {invoice_id!r} is released and sent now")
