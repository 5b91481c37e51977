"""The tenant API (/api/v1), one module-level router per area; every query is scoped to the
token's tenant, and another tenant's id answers 404 exactly like an unknown one."""

from nordflow_runtime.tenants import tokens_router

from . import agreements, invoices, settlements, transfers

ROUTERS = (
    tokens_router(),
    agreements.router,
    invoices.router,
    transfers.router,
    settlements.router,
)

__all__ = ["ROUTERS"]
