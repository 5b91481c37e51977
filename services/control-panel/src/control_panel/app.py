"""create_app(): control-panel's composition root; nothing connects at import."""

from __future__ import annotations

from nordflow_runtime.app import ServiceApp
from nordflow_schemas.topics import (
    CONTROL_PANEL,
    EVENT_DEAD_LETTERED,
    OPERATOR_ACTION_REQUESTED,
    TENANT_UPDATED,
    TOPICS,
)

from .config import Settings
from .deps import Deps, build_deps
from .entrypoints import consumers
from .entrypoints.http import api, web


def create_app(settings: Settings | None = None) -> ServiceApp[Deps]:
    """control-panel: every topic → its read model; the web pages and /api/v1 on it."""
    app: ServiceApp[Deps] = ServiceApp(
        CONTROL_PANEL, settings or Settings(), "control_panel", deps=build_deps
    )
    # Every topic the topic map names it a consumer of: erp.document.chunked (raw document
    # contents, carried by reference) is read by the mapper alone.
    for topic in TOPICS:
        if (
            topic.event is not None
            and CONTROL_PANEL in topic.consumers
            and topic.name != TENANT_UPDATED.name
        ):
            app.subscribe(topic.name, consumers.on_event)
    app.subscribe(
        OPERATOR_ACTION_REQUESTED.name,
        consumers.on_operator_action_requested(app.operator_actions.handle),
    )
    app.subscribe_raw(EVENT_DEAD_LETTERED.name, consumers.on_dead_lettered)
    app.include_router(api.router)
    app.include_router(web.router)
    return app
