"""Operator actions erp-poller carries out (``operator.action_requested`` addressed to it):
``sync_connection`` polls the command's tenant's connection now. The runtime consumes the
command, skips a redelivered one (its inbox) and announces the outcome on
``operator.action_completed`` in the same transaction."""

from __future__ import annotations

from nordflow_runtime.consumer import Context
from nordflow_runtime.operator import Outcome
from nordflow_schemas.events import ActionOutcome, OperatorActionRequested
from nordflow_schemas.topics import ERP_POLLER

from ..deps import Deps
from ..domain.connections import ConnectionBusyError, NotFoundError, SyncRefusedError
from ..service import connections


async def sync_connection(ctx: Context[Deps], command: OperatorActionRequested) -> Outcome:
    """Poll the connection named by ``target_id`` now, if it is the command's tenant's."""
    deps = ctx.deps
    connection_id = command.target_id
    try:
        await connections.sync_now(
            deps.repositories(ctx.conn), command.tenant_id, connection_id, deps.clock()
        )
    except NotFoundError:
        # Another tenant's connection is none of this tenant's: the same answer as no
        # connection at all, so nobody learns which ids exist.
        return Outcome(
            ActionOutcome.NOT_FOUND,
            f"{ERP_POLLER} has no connection {connection_id!r} of tenant {command.tenant_id}",
        )
    except (SyncRefusedError, ConnectionBusyError) as exc:
        return Outcome(ActionOutcome.REFUSED, str(exc))
    deps.wake()
    return Outcome(
        ActionOutcome.DONE,
        f"connection {connection_id!r} is polled now; how the poll ended follows on "
        "connection.updated",
    )
