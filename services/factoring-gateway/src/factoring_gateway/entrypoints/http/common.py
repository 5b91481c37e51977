"""What every router of the tenant API takes: the dependencies object, and the answer to an
invalid agreement.

No `from __future__ import annotations` in the routers: FastAPI must see the real types of
the routes' parameters, including the dependency aliases.
"""

from typing import Annotated

from fastapi import Depends
from fastapi.responses import JSONResponse
from nordflow_runtime.http import request_deps

from ...deps import Deps
from ...domain.agreements import InvalidAgreementError

AppDeps = Annotated[Deps, Depends(request_deps)]


def invalid(exc: InvalidAgreementError) -> JSONResponse:
    """422 naming every bad field."""
    return JSONResponse(
        {
            "detail": "the agreement is invalid",
            "errors": [{"field": p.field, "message": p.message} for p in exc.problems],
        },
        status_code=422,
    )
