"""What every router of the tenant API takes: the dependencies object, and who acts.

No `from __future__ import annotations` in the routers: FastAPI must see the real types of
the routes' parameters, including the dependency aliases.
"""

from typing import Annotated

from fastapi import Depends, Request
from nordflow_runtime.http import request_deps

from ...deps import Deps
from ...service.ports import Repositories

AppDeps = Annotated[Deps, Depends(request_deps)]


async def token_name(request: Request, repos: Repositories) -> str:
    """Who acts, as holds and suggestions record it: the bearer token's name."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return f"api token {await repos.tokens.name_of(token)!r}"
