"""Test helpers every sandbox shares: admin clients (blocking and asyncio), faults, a served app.

An admin operation is written once, as the HTTP steps it takes (`send`, `pause`), and the
`operation` decorator runs those steps on a blocking `AdminClient` or an `AsyncAdminClient`:
a sandbox's admin class lists its operations and is mixed with either driver.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx
from starlette.types import ASGIApp

from nordflow_sandboxes.kit.faults import FaultStatus, HttpMethod
from nordflow_sandboxes.kit.server import API_PREFIX, PartnerState
from nordflow_sandboxes.server import BackgroundServer

T = TypeVar("T")
K = TypeVar("K")
P = ParamSpec("P")
S = TypeVar("S")
R = TypeVar("R", bound="RunningSandbox[Any]")
PS = TypeVar("PS", bound=PartnerState[Any])


# --------------------------------------------------------------------------- clocks


@dataclass
class ManualClock:
    """A wall clock tests move by hand (a state's `clock=`)."""

    current: datetime = field(default_factory=lambda: datetime(2025, 3, 10, 11, 15, 30, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        """Move forward by `timedelta(**delta)`."""
        self.current += timedelta(**delta)


@dataclass
class ManualMonotonic:
    """A monotonic clock tests move by hand (a rate limiter's `monotonic=`)."""

    value: float = 1000.0

    def __call__(self) -> float:
        return self.value


# ---------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Call:
    """One HTTP request of an admin operation (`options` as httpx's `request` takes them)."""

    method: str
    path: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pause:
    """A wait between two requests of an operation that polls."""

    seconds: float


Steps = Generator[Call | Pause, Any, T]


def send(method: str, path: str, **options: Any) -> Steps[httpx.Response]:
    """Send one request; `response = yield from send(...)` in an operation."""
    response: httpx.Response = yield Call(method, path, options)
    return response


def pause(seconds: float) -> Steps[None]:
    """Wait before polling again."""
    yield Pause(seconds)


def json_of(response: httpx.Response) -> Any:
    """The JSON body of a successful answer (raises on an HTTP error)."""
    response.raise_for_status()
    return response.json()


def auth(token: str) -> dict[str, str]:
    """`Authorization: Bearer <token>`."""
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- drivers


class AdminClient:
    """Runs admin operations with a blocking httpx client."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def run(self, steps: Steps[T]) -> T:
        """Carry out an operation's steps."""
        try:
            step = next(steps)
            while True:
                if isinstance(step, Pause):
                    time.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    step = steps.send(self.client.request(step.method, step.path, **step.options))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class AsyncAdminClient:
    """Runs admin operations with an asyncio httpx client."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def run(self, steps: Steps[T]) -> T:
        """Carry out an operation's steps."""
        try:
            step = next(steps)
            while True:
                if isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                    step = steps.send(None)
                else:
                    response = await self.client.request(step.method, step.path, **step.options)
                    step = steps.send(response)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class operation(Generic[P, T]):  # noqa: N801 - a decorator, named like one
    """An admin operation: its steps, run by whichever driver the admin class is mixed with.

    An operation that takes `**fields` makes `self` positional-only (`self, /`), so that no
    field can be taken for it.
    """

    def __init__(self, steps: Callable[Concatenate[Any, P], Steps[T]]) -> None:
        self._steps = steps
        self.__doc__ = steps.__doc__

    @overload
    def __get__(self, admin: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, admin: AdminClient, owner: type[Any]) -> Callable[P, T]: ...

    @overload
    def __get__(self, admin: AsyncAdminClient, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, admin: Any, owner: type[Any]) -> Any:
        if admin is None:
            return self
        steps = self._steps

        @functools.wraps(steps)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return admin.run(steps(admin, *args, **kwargs))

        return bound


# ---------------------------------------------------------------------- tenant admin


@dataclass(frozen=True)
class FaultSpec:
    """What `POST /sandbox/…/faults` takes (see the sandboxes README for the semantics)."""

    status: FaultStatus | None = 500
    count: int = 1
    path_prefix: str = f"{API_PREFIX}/"
    method: HttpMethod | None = None
    delay_seconds: float = 0.0
    after_commit: bool = False
    retry_after_seconds: int = 1

    def as_json(self) -> dict[str, Any]:
        """The admin request body."""
        return {
            "status": self.status,
            "count": self.count,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "retry_after_seconds": self.retry_after_seconds,
        }


class SandboxAdmin:
    """The admin operation every sandbox has."""

    @operation
    def healthy(self) -> Steps[bool]:
        """True when `/sandbox/healthz` answers ok."""
        response = yield from send("GET", "/sandbox/healthz")
        return response.status_code == 200


class TenantAdmin(SandboxAdmin, Generic[K]):
    """The admin operations of a sandbox with tenants: a tenant's faults, log and stats.

    `where(tenant)` says how the admin API names a tenant: a path prefix and headers.
    """

    fault_spec: ClassVar[type[FaultSpec]] = FaultSpec

    def where(self, tenant: K) -> tuple[str, dict[str, str]]:
        """The admin path prefix and the headers that name `tenant`."""
        raise NotImplementedError

    @operation
    def inject_fault(self, tenant: K, fault: FaultSpec | None = None) -> Steps[None]:
        """Queue a fault for the tenant."""
        path, headers = self.where(tenant)
        body = (fault or self.fault_spec()).as_json()
        json_of((yield from send("POST", f"{path}/faults", json=body, headers=headers)))

    @operation
    def clear_faults(self, tenant: K) -> Steps[None]:
        """Drop the tenant's pending faults."""
        path, headers = self.where(tenant)
        (yield from send("DELETE", f"{path}/faults", headers=headers)).raise_for_status()

    @operation
    def requests(self, tenant: K, limit: int = 100) -> Steps[list[dict[str, Any]]]:
        """The tenant's last API requests, oldest first (method, path, query, status, fault)."""
        path, headers = self.where(tenant)
        response = yield from send(
            "GET", f"{path}/requests", params={"limit": limit}, headers=headers
        )
        return list(json_of(response)["requests"])

    @operation
    def stats(self, tenant: K) -> Steps[dict[str, Any]]:
        """Counts of the tenant's records and requests."""
        path, headers = self.where(tenant)
        return dict(json_of((yield from send("GET", f"{path}/stats", headers=headers))))


class BearerTenantAdmin(TenantAdmin[str]):
    """Admin operations of a sandbox whose admin API names the tenant by its bearer token."""

    def where(self, tenant: str) -> tuple[str, dict[str, str]]:
        """`/sandbox`, with the tenant's token as the bearer."""
        return "/sandbox", auth(tenant)


def random_name(prefix: str = "Test AB") -> str:
    """A random tenant name, so tests never share data."""
    return f"{prefix} {secrets.token_hex(4)}"


# ------------------------------------------------------------------- served sandbox


@dataclass
class RunningSandbox(Generic[S]):
    """A sandbox served on a loopback port in a background thread."""

    base_url: str
    state: S
    server: BackgroundServer

    def stop(self) -> None:
        """Stop the server thread."""
        self.server.stop()


@contextmanager
def stopping(start: Callable[[], R]) -> Iterator[R]:
    """Start a sandbox on entering the block and stop it on leaving."""
    sandbox = start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


class Runner(Generic[S, R]):
    """Serves one kind of sandbox for tests: `start(state)`, or `with running(state):`."""

    def __init__(
        self,
        new_state: Callable[[], S],
        create_app: Callable[[S], ASGIApp],
        running: Callable[[str, S, BackgroundServer], R],
    ) -> None:
        self._new_state = new_state
        self._create_app = create_app
        self._running = running

    def start(self, state: S | None = None, *, host: str = "127.0.0.1") -> R:
        """Serve a sandbox (a fresh state when None) on a free port of `host`; `stop()` it."""
        state = state if state is not None else self._new_state()
        server = BackgroundServer(self._create_app(state), host=host, port=0)
        return self._running(server.start(), state, server)

    def running(
        self, state: S | None = None, *, host: str = "127.0.0.1"
    ) -> AbstractContextManager[R]:
        """`with running(...) as sandbox:` serves a sandbox for the block."""
        return stopping(lambda: self.start(state, host=host))


# -------------------------------------------------------------- delivery sandboxes


@dataclass(frozen=True)
class SandboxAccount:
    """An account at the provider and the bearer token that opens it."""

    account_id: str
    token: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header a client sends for this account."""
        return auth(self.token)


class PartnerAdminOps(BearerTenantAdmin):
    """The delivery sandboxes' admin operations: accounts and what they sent."""

    @operation
    def create_account(
        self, name: str | None = None, token: str | None = None, organisation_number: str = ""
    ) -> Steps[SandboxAccount]:
        """A new empty account; random name and token unless given."""
        body: dict[str, Any] = {
            "name": name or random_name(),
            "organisation_number": organisation_number,
        }
        if token is not None:
            body["token"] = token
        data = json_of((yield from send("POST", "/sandbox/accounts", json=body)))
        return SandboxAccount(data["account_id"], data["token"], data["name"])

    @operation
    def deliveries(self, token: str) -> Steps[list[dict[str, Any]]]:
        """Every accepted send of the account, once each, with its content hash."""
        response = yield from send("GET", "/sandbox/deliveries", headers=auth(token))
        return list(json_of(response)["deliveries"])

    @operation
    def delivery_content(self, token: str, record_id: str) -> Steps[bytes]:
        """The exact bytes the provider received for one send."""
        path = f"/sandbox/deliveries/{record_id}/content"
        response = yield from send("GET", path, headers=auth(token))
        response.raise_for_status()
        return response.content


class PartnerSandboxAdmin(PartnerAdminOps, AdminClient):
    """Blocking client of the delivery sandboxes' shared `/sandbox/...` admin endpoints."""


@dataclass
class RunningPartnerSandbox(RunningSandbox[PS]):
    """A delivery sandbox served on a loopback port in a background thread."""

    @property
    def api_url(self) -> str:
        """The API root, `…/api/v1`."""
        return f"{self.base_url}{API_PREFIX}"

    def create_account(
        self, name: str | None = None, token: str | None = None, organisation_number: str = ""
    ) -> SandboxAccount:
        """Create an account directly in the state (no HTTP round trip)."""
        account, issued = self.state.create_account(
            name or random_name(), token, organisation_number
        )
        return SandboxAccount(account.account_id, issued, account.name)
