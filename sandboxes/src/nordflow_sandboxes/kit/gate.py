"""The middleware in front of every sandbox's partner API, and its error answers.

The gate admits a request (the sandbox's authentication, limits and scopes), applies the
tenant's next matching fault, runs the request and writes the tenant's request log. The
error handlers answer the partner API's paths in the partner's error shape and leave the
admin API's paths to FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nordflow_sandboxes.kit.errors import PartnerError
from nordflow_sandboxes.kit.faults import Fault, answer_with_fault
from nordflow_sandboxes.kit.state import RequestRecord, SandboxState, Tenant

T = TypeVar("T", bound=Tenant)
C = TypeVar("C")


def bearer(request: Request) -> str | None:
    """The bearer token of a request, if it has one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def prefix_matcher(prefix: str) -> Callable[[str], bool]:
    """Whether a path is `prefix` or below it: the partner API's paths, not the admin API's."""

    def is_api_path(path: str) -> bool:
        return path == prefix or path.startswith(f"{prefix}/")

    return is_api_path


def tenant_of(request: Request) -> Any:
    """The tenant the gate admitted this API request for (each sandbox casts it)."""
    return request.state.tenant


@dataclass(frozen=True)
class Admitted(Generic[T]):
    """A request the gate lets through to the tenant's log, faults and routes.

    `refusal` is answered (and logged) instead of running the request: a rate limit, an
    expired token, a missing scope. `headers` are added to the request's own answer.
    """

    tenant: T
    refusal: Response | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


HttpError = Callable[[Request, StarletteHTTPException], PartnerError[Any]]
Invalid = Callable[[Request, RequestValidationError], PartnerError[Any]]


def route_errors(
    error: Callable[[int, C, str], PartnerError[C]],
    not_found: C,
    bad_request: C,
    *,
    unknown: str = "No such resource",
    malformed: str = "Invalid request: ",
) -> tuple[HttpError, Invalid]:
    """The usual partner answers to an unknown path, another HTTP error, a malformed request.

    404 (code `not_found`) says `unknown` and the path; another HTTP error (`bad_request`)
    names method, path and detail; a malformed parameter answers 400 (`bad_request`) with
    `malformed` and FastAPI's findings.
    """

    def http_error(request: Request, exc: StarletteHTTPException) -> PartnerError[C]:
        if exc.status_code == 404:
            return error(404, not_found, f"{unknown}: {request.url.path}")
        detail = f"{request.method} {request.url.path}: {exc.detail}"
        return error(exc.status_code, bad_request, detail)

    def invalid_request(_request: Request, exc: RequestValidationError) -> PartnerError[C]:
        return error(400, bad_request, f"{malformed}{exc.errors()}")

    return http_error, invalid_request


@dataclass(frozen=True)
class Gate(Generic[T]):
    """How one sandbox admits requests and answers faults, crashes and errors.

    `admit` answers a request that is not let in (unknown token…) itself, unlogged.
    `fault_response` is the answer of an injected fault; `crash_response` that of a route
    that raised; `errors` those of an unknown route (or another HTTP error) and of a
    malformed request. `normalise_path` rewrites the path before routing.
    """

    is_api_path: Callable[[str], bool]
    admit: Callable[[Request], Admitted[T] | Response]
    fault_response: Callable[[Fault, Admitted[T]], Response]
    crash_response: Callable[[], Response]
    errors: tuple[HttpError, Invalid]
    logger: logging.Logger
    record: Callable[[datetime, Request, str, Response, bool], RequestRecord] = RequestRecord.of
    normalise_path: Callable[[str], str] | None = None

    def install(self, app: FastAPI, state: SandboxState[T]) -> None:
        """Put the gate in front of `app`'s partner API, and its error answers."""
        http_error, invalid = self.errors
        install_error_handlers(app, self.is_api_path, http_error=http_error, invalid=invalid)

        @app.middleware("http")
        async def gate(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            path = request.url.path
            if not self.is_api_path(path):
                return await call_next(request)
            if self.normalise_path is not None:
                path = self.normalise_path(path)
                request.scope["path"] = path
            admitted = self.admit(request)
            if isinstance(admitted, Response):
                return admitted
            tenant, method = admitted.tenant, request.method.upper()

            def log(response: Response, faulted: bool) -> Response:
                state.record_request(
                    tenant, self.record(state.now(), request, path, response, faulted)
                )
                return response

            if admitted.refusal is not None:
                return log(admitted.refusal, False)
            request.state.tenant = tenant

            async def run() -> Response:
                try:
                    response = await call_next(request)
                except Exception:
                    self.logger.exception("unhandled error in %s %s", method, path)
                    response = self.crash_response()
                response.headers.update(admitted.headers)
                return response

            return await answer_with_fault(
                state.take_fault(tenant, method, path),
                run,
                lambda fault: self.fault_response(fault, admitted),
                log,
            )


def install_error_handlers(
    app: FastAPI,
    is_api_path: Callable[[str], bool],
    *,
    http_error: HttpError,
    invalid: Invalid,
) -> None:
    """Partner-shaped answers for refusals, unknown routes and FastAPI's own validation.

    `http_error` and `invalid` say how the partner answers an HTTP error (404, 405…) and a
    malformed parameter on its API paths; admin paths keep FastAPI's answers.
    """

    async def on_partner_error(_request: Request, exc: Exception) -> Response:
        return cast(PartnerError[Any], exc).response()

    async def on_http_error(request: Request, exc: Exception) -> Response:
        error = cast(StarletteHTTPException, exc)
        if not is_api_path(request.url.path):
            return await http_exception_handler(request, error)
        return http_error(request, error).response()

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        error = cast(RequestValidationError, exc)
        if not is_api_path(request.url.path):
            return await request_validation_exception_handler(request, error)
        return invalid(request, error).response()

    app.add_exception_handler(PartnerError, on_partner_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
