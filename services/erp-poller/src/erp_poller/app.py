"""create_app(): erp-poller's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_runtime.tenants import tokens_router
from nordflow_schemas.events import OperatorAction
from nordflow_schemas.topics import ERP_POLLER

from .config import Settings
from .deps import Deps, build_deps
from .entrypoints import actions, loops
from .entrypoints.http import connections, ingest, profile


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """erp-poller: polls each due connection and takes pushes, emitting erp.document.fetched;
    keeps the tenants' profiles, publishing tenant.updated; publishes each connection's state
    on connection.updated and polls one now on an operator's sync_connection."""
    # erp-poller owns the tenants' profiles (it publishes tenant.updated), so it keeps no copy.
    app: ServiceApp[Deps] = ServiceApp(
        ERP_POLLER,
        settings or Settings(),
        "erp_poller",
        deps=build_deps,
        tenant_profiles=False,
    )
    app.include_router(tokens_router())
    app.include_router(connections.router)
    app.include_router(ingest.router)
    app.include_router(profile.router)
    # Pushes carry whole batches (SIE files): their own body limit.
    app.body_limit(ingest.router.prefix + "/", ingest.MAX_BODY_BYTES)
    app.loop(loops.polls)
    # Backfills are long: a loop of their own, so polls of other connections go on meanwhile.
    app.loop(loops.backfills)
    app.operator_action(OperatorAction.SYNC_CONNECTION, actions.sync_connection)
    app.on_startup.append(lambda: loops.adopt_legacy_sellers(app.deps))
    app.on_startup.append(lambda: loops.announce_connections(app.deps))
    return app
