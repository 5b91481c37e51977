"""The tenant API (/api/v1), one module-level router per area; every query is scoped to the
token's tenant, and another tenant's id answers 404 exactly like an unknown one."""

from nordflow_runtime.tenants import tokens_router

from . import channels, deliveries, documents, holds, paper, statistics, suggestions

ROUTERS = (
    tokens_router(),
    channels.router,
    suggestions.router,
    deliveries.router,
    paper.router,
    statistics.router,
    documents.router,
    holds.router,
)

__all__ = ["ROUTERS"]
