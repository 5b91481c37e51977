"""The tenant API (/api/v1), one module-level router per area; every query is scoped to the
token's tenant, and another tenant's id answers 404 exactly like an unknown one."""

from . import channels, deliveries, documents, holds, paper, statistics, suggestions

ROUTERS = (
    channels.router,
    suggestions.router,
    deliveries.router,
    paper.router,
    statistics.router,
    documents.router,
    holds.router,
)

__all__ = ["ROUTERS"]
