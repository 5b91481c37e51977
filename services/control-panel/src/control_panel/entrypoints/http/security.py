"""Who is asking: a bearer token for the API, a session cookie (and form token) for pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from nordflow_runtime.http import request_deps, request_pool

from ...deps import Deps
from ...domain.access import Principal
from ...service import tokens

SESSION_COOKIE = "nf_panel_session"
LANGUAGE_COOKIE = "nf_panel_lang"


async def api_principal(request: Request) -> Principal:
    """The holder of the request's ``Authorization: Bearer`` token (a control-panel token)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send `Authorization: Bearer <control-panel token>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    deps: Deps = request_deps(request)
    found = await tokens.authenticate(deps.repositories(request_pool(request)).tokens, token)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


ApiPrincipal = Annotated[Principal, Depends(api_principal)]


class SignInRequired(HTTPException):
    """Not signed in: the browser is sent to the sign-in page."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_303_SEE_OTHER, "sign in", headers={"Location": "/sign-in"})


async def web_session(request: Request) -> tokens.Session:
    """The signed-in session of the request's cookie, else off to the sign-in page."""
    deps: Deps = request_deps(request)
    found = await tokens.session(
        deps.repositories(request_pool(request)).tokens,
        request.cookies.get(SESSION_COOKIE, ""),
        deps.clock(),
    )
    if found is None:
        raise SignInRequired
    return found


WebSession = Annotated[tokens.Session, Depends(web_session)]
AppDeps = Annotated[Deps, Depends(request_deps)]
