"""The app shell and the admin routes every sandbox shares under `/sandbox`.

Health, the tenant's faults (queue, list, clear), its request log and its stats. A sandbox
names its tenants either by the bearer token of the admin request or by an id in the path.
"""

# FastAPI reads the route annotations at run time, and the fault body's type is the
# sandbox's own subclass (a variable here), so annotations are not postponed in this module.

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response

from nordflow_sandboxes.kit.faults import ReadFaultIn
from nordflow_sandboxes.kit.gate import Gate, bearer
from nordflow_sandboxes.kit.state import SandboxState, Tenant

ADMIN_PREFIX = "/sandbox"

T = TypeVar("T", bound=Tenant)


def sandbox_app(
    state: SandboxState[T],
    name: str,
    *,
    title: str,
    routers: Sequence[APIRouter],
    gate: Gate[T],
    version: str = "0.1.0",
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """A sandbox app: its routers, and the gate (with its error answers) before its partner API.

    The state is also `app.state.<name>`, for whoever holds only the app.
    """
    app = FastAPI(
        title=title,
        version=version,
        docs_url=f"{ADMIN_PREFIX}/docs",
        openapi_url=f"{ADMIN_PREFIX}/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    for router in routers:
        app.include_router(router)
    gate.install(app, state)
    setattr(app.state, name, state)
    return app


def admin_router() -> APIRouter:
    """`/sandbox/...` with its `GET /sandbox/healthz`; each sandbox adds its own routes."""
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["sandbox admin"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return router


def bearer_tenant(lookup: Callable[[str], T | None], noun: str) -> Callable[[Request], T]:
    """The dependency naming an admin request's tenant by its bearer token (else 401)."""

    def tenant(request: Request) -> T:
        token = bearer(request)
        found = lookup(token) if token else None
        if found is None:
            raise HTTPException(401, f"send the {noun}'s token as 'Authorization: Bearer <token>'")
        return found

    return tenant


def add_tenant_routes(
    router: APIRouter,
    state: SandboxState[T],
    tenant: Callable[..., T],
    fault_in: type[ReadFaultIn],
    *,
    listing: str,
    path: str = "",
) -> None:
    """`{path}/faults`, `{path}/requests` and the stats routes for `tenant`'s tenants.

    `tenant` is a FastAPI dependency. With `path` empty it reads the request's bearer
    token, and `GET /stats` without one lists every tenant under `listing`; with a path
    such as `/companies/{company_id}`, `GET /stats` lists them and `{path}/stats` shows one.
    """
    Owner = Annotated[Any, Depends(tenant)]  # noqa: N806 - a type alias

    @router.post(f"{path}/faults", status_code=201)
    async def add_fault(owner: Owner, body: fault_in) -> dict[str, Any]:  # type: ignore[valid-type]
        fault = cast(ReadFaultIn, body).fault()
        state.add_fault(owner, fault)
        return {"fault": fault.as_json()}

    @router.get(f"{path}/faults")
    async def list_faults(owner: Owner) -> dict[str, Any]:
        with state.lock:
            return {"faults": [f.as_json() for f in owner.faults]}

    @router.delete(f"{path}/faults", status_code=204)
    async def clear_faults(owner: Owner) -> Response:
        state.clear_faults(owner)
        return Response(status_code=204)

    @router.get(f"{path}/requests")
    async def recent_requests(owner: Owner, limit: int = 100) -> dict[str, Any]:
        records = state.recent_requests(owner, max(0, min(limit, 2000)))
        return {"requests": [r.as_json() for r in records]}

    def every_tenant() -> dict[str, Any]:
        return {listing: [state.stats(t) for t in state.tenants()]}

    if path:

        @router.get("/stats")
        async def all_stats() -> dict[str, Any]:
            return every_tenant()

        @router.get(f"{path}/stats")
        async def stats(owner: Owner) -> dict[str, Any]:
            return state.stats(owner)

    else:

        @router.get("/stats")
        async def stats_by_token(request: Request) -> dict[str, Any]:
            if bearer(request):
                return state.stats(tenant(request))
            return every_tenant()
