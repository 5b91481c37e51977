"""What the delivery-channel sandboxes share beyond the kit: accounts, problem bodies, idempotency.

Used by `peppol_ap`, `print_post` and `b2c_bank`. Each of those serves its provider's API
under `/api/v1/...` (bearer token per account) and the same admin API under `/sandbox/...`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from nordflow_sandboxes.kit import admin
from nordflow_sandboxes.kit.errors import PartnerError
from nordflow_sandboxes.kit.faults import Fault
from nordflow_sandboxes.kit.faults import FaultIn as KitFaultIn
from nordflow_sandboxes.kit.gate import Admitted, Gate, bearer, prefix_matcher, tenant_of
from nordflow_sandboxes.kit.state import RequestRecord as KitRequestRecord
from nordflow_sandboxes.kit.state import SandboxState, TokenInUseError
from nordflow_sandboxes.kit.values import utc_now

logger = logging.getLogger("nordflow_sandboxes.partner")

API_PREFIX = "/api/v1"
PROBLEM_JSON = "application/problem+json"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_DOCS = "https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/"
# Printable ASCII without spaces, like a UUID or any random token the client makes up.
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data` (the content hash every delivery is listed with)."""
    return hashlib.sha256(data).hexdigest()


def fingerprint(*parts: str | bytes) -> str:
    """A digest of a request's meaning; each part is length-prefixed so parts cannot blur."""
    digest = hashlib.sha256()
    for part in parts:
        raw = part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()


# ------------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class FieldError:
    """One refused value: the field (dotted path), a stable code and a readable message."""

    field: str
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        """The error as it appears in a problem body's `errors` list."""
        return {"field": self.field, "code": self.code, "message": self.message}


def problem(
    status: int,
    code: str,
    title: str,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem body, with a stable `code` and per-field `errors`."""
    return ApiError(status, code, title, errors, headers).response()


class ApiError(PartnerError[str]):
    """A refusal the API answers with a problem body."""

    media_type = PROBLEM_JSON

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, title, headers)
        self.title = title
        self.errors = list(errors)

    def body(self) -> dict[str, Any]:
        """The RFC 9457 problem body."""
        return {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "errors": [error.as_json() for error in self.errors],
        }


class FieldErrors:
    """Collects every refused field of one request, so the client sees them all at once."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field_name: str, code: str, message: str) -> None:
        """Record one refused field."""
        self.items.append(FieldError(field_name, code, message))

    def has(self, field_name: str) -> bool:
        """Whether a field (or one below it) was already refused."""
        return any(
            e.field == field_name or e.field.startswith(f"{field_name}.") for e in self.items
        )

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self, title: str = "The request was refused: see errors") -> None:
        """422 with every collected error, if there is one."""
        if self.items:
            raise ApiError(422, "validation_failed", title, self.items)


# ----------------------------------------------------------------------- records, state


class Record(Protocol):
    """What every sandbox stores per accepted send (one letter, document, e-invoice)."""

    @property
    def id(self) -> str: ...

    @property
    def client_reference(self) -> str | None: ...

    @property
    def idempotency_key(self) -> str | None: ...

    @property
    def content_sha256(self) -> str: ...

    @property
    def received_at(self) -> datetime: ...

    def content(self) -> tuple[bytes, str]:
        """The received payload and its media type."""
        ...

    def view(self, now: datetime) -> dict[str, Any]:
        """The record as the provider's API shows it at `now`."""
        ...


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class RequestRecord(KitRequestRecord):
    """One API request as the account's request log shows it, with its idempotency key."""

    idempotency_key: str | None = None
    replayed: bool = False

    @classmethod
    def of(
        cls, at: datetime, request: Request, path: str, response: Response, faulted: bool
    ) -> Self:
        """The record of `request`, with its key and whether the answer was a replay."""
        return dataclasses.replace(
            super().of(at, request, path, response, faulted),
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
            replayed=response.headers.get(REPLAYED_HEADER) == "true",
        )

    def as_json(self) -> dict[str, Any]:
        """The admin view of the record."""
        return {
            **super().as_json(),
            "idempotency_key": self.idempotency_key,
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class StoredResponse:
    """The first answer to an idempotency key, replayed verbatim to every retry."""

    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: datetime


@dataclass
class Account(Generic[R]):
    """One customer of the provider: its token opens its own records, faults and logs."""

    account_id: str
    name: str
    organisation_number: str
    created: datetime
    records: dict[str, R] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: deque[KitRequestRecord] = field(default_factory=deque)
    idempotency: dict[str, StoredResponse] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)


class PartnerState(SandboxState[Account[R]]):
    """Accounts by token, with faults, request logs and idempotency keys, under one lock.

    `clock` moves statuses that advance with time and idempotency-key expiry in tests.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utc_now,
        idempotency_ttl: timedelta = timedelta(hours=24),
        request_log_size: int = 2000,
    ) -> None:
        super().__init__(clock=clock, request_log_size=request_log_size)
        self.idempotency_ttl = idempotency_ttl
        self._accounts: dict[str, Account[R]] = {}
        self._tokens: dict[str, str] = {}

    @staticmethod
    def new_id(prefix: str) -> str:
        """A random resource id such as `ltr_3f2a...`."""
        return f"{prefix}_{secrets.token_hex(8)}"

    # ---------------------------------------------------------------------- accounts

    def create_account(
        self, name: str, token: str | None = None, organisation_number: str = ""
    ) -> tuple[Account[R], str]:
        """Create an empty account reachable with `token` (generated when None)."""
        with self.lock:
            token = token or secrets.token_urlsafe(24)
            if token in self._tokens:
                raise TokenInUseError("that token already belongs to an account")
            account: Account[R] = Account(
                account_id=self.new_id("acc"),
                name=name,
                organisation_number=organisation_number,
                created=self.now(),
                requests=self.request_log(),
            )
            self._accounts[account.account_id] = account
            self._tokens[token] = account.account_id
            return account, token

    def account_for_token(self, token: str) -> Account[R] | None:
        """The account a bearer token opens, if any."""
        with self.lock:
            account_id = self._tokens.get(token)
            return self._accounts.get(account_id) if account_id else None

    def accounts(self) -> list[Account[R]]:
        """All accounts, oldest first."""
        with self.lock:
            return list(self._accounts.values())

    def tenants(self) -> list[Account[R]]:
        """All accounts, oldest first."""
        return self.accounts()

    # ------------------------------------------------------------------ idempotency

    def begin_idempotent(
        self, account: Account[R], key: str, request_fingerprint: str
    ) -> StoredResponse | None:
        """Reserve `key` for a new request, or return the first answer to replay.

        Raises 409 while a request with the key is still being processed and 422 when the
        key was used for a different request (the IETF Idempotency-Key draft's answers).
        """
        with self.lock:
            stored = account.idempotency.get(key)
            if stored is not None and stored.stored_at + self.idempotency_ttl <= self.now():
                del account.idempotency[key]
                stored = None
            if stored is not None:
                if stored.fingerprint != request_fingerprint:
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        "Idempotency-Key was already used for a different request",
                        [
                            FieldError(
                                IDEMPOTENCY_HEADER,
                                "idempotency_key_reused",
                                "this key answered another request; send a new key for a "
                                "new request",
                            )
                        ],
                        headers={"Link": f'<{IDEMPOTENCY_DOCS}>; rel="describedby"'},
                    )
                return stored
            if key in account.in_flight:
                raise ApiError(
                    409,
                    "idempotency_key_in_flight",
                    "A request with this Idempotency-Key is still being processed",
                    headers={"Retry-After": "1"},
                )
            account.in_flight.add(key)
            return None

    def finish_idempotent(self, account: Account[R], key: str, stored: StoredResponse) -> None:
        """Keep the first answer to `key` (until the TTL passes)."""
        with self.lock:
            account.in_flight.discard(key)
            account.idempotency[key] = stored

    def release_idempotent(self, account: Account[R], key: str) -> None:
        """Forget a reservation whose request was refused: nothing happened, retry is free."""
        with self.lock:
            account.in_flight.discard(key)

    # ---------------------------------------------------------------- logs, records

    def add_record(self, account: Account[R], record: R) -> None:
        """Keep an accepted send."""
        with self.lock:
            account.records[record.id] = record

    def get_record(self, account: Account[R], record_id: str, noun: str) -> R:
        """The account's record `record_id`, else 404."""
        with self.lock:
            record = account.records.get(record_id)
        if record is None:
            raise ApiError(404, "not_found", f"No {noun} {record_id!r} in this account")
        return record

    def by_client_reference(self, account: Account[R], client_reference: str) -> list[R]:
        """Every record whose client reference equals `client_reference`, oldest first."""
        with self.lock:
            return [r for r in account.records.values() if r.client_reference == client_reference]

    def stats(self, account: Account[R]) -> dict[str, Any]:
        """Counts of the account's records."""
        with self.lock:
            return {
                "account_id": account.account_id,
                "name": account.name,
                "records": len(account.records),
                "requests": len(account.requests),
                "idempotency_keys": len(account.idempotency),
                "faults_pending": self.faults_pending(account),
            }


# --------------------------------------------------------------------- request helpers


def current_account(request: Request, _state: PartnerState[R]) -> Account[R]:
    """The account the gate authenticated for this API request."""
    return cast(Account[R], tenant_of(request))


def idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (validated), or None when it sent none."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    key = raw.strip()
    # The IETF draft's examples quote the key (a structured-field string); accept both.
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _KEY_PATTERN.match(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 printable ASCII characters without spaces",
            [FieldError(IDEMPOTENCY_HEADER, "invalid", "use a UUID or another random token")],
        )
    return key


async def run_idempotent(
    state: PartnerState[R],
    account: Account[R],
    key: str | None,
    request_fingerprint: str,
    create: Callable[[], Awaitable[JSONResponse]],
) -> Response:
    """Run a create once per Idempotency-Key: a retry gets the first answer again.

    Only answers of requests that were carried out are kept (2xx); a refused request
    (validation, an unreachable dependency) leaves nothing behind, so it can be retried
    with the same key once corrected.
    """
    if key is None:
        return await create()
    stored = state.begin_idempotent(account, key, request_fingerprint)
    if stored is not None:
        return Response(
            content=stored.body,
            status_code=stored.status,
            media_type="application/json",
            headers={**stored.headers, REPLAYED_HEADER: "true"},
        )
    try:
        response = await create()
    except BaseException:
        state.release_idempotent(account, key)
        raise
    if 200 <= response.status_code < 300:
        kept = {k: v for k, v in response.headers.items() if k.lower() == "location"}
        state.finish_idempotent(
            account,
            key,
            StoredResponse(
                fingerprint=request_fingerprint,
                status=response.status_code,
                body=bytes(response.body),
                headers=kept,
                stored_at=state.now(),
            ),
        )
    else:
        state.release_idempotent(account, key)
    return response


is_api_path = prefix_matcher(API_PREFIX)


# ---------------------------------------------------------------------------- the gate


def _rate_limited(retry_after: int) -> JSONResponse:
    return problem(
        429,
        "rate_limited",
        "Too many requests",
        headers={"Retry-After": str(retry_after)},
    )


def _fault_response(fault: Fault, _admitted: Admitted[Any]) -> JSONResponse:
    status = fault.status or 500
    if status == 429:
        return _rate_limited(max(fault.retry_after_seconds, 0))
    return problem(status, "injected_fault", f"Injected fault: HTTP {status}")


def _gate(state: PartnerState[Any]) -> Gate[Account[Any]]:
    """Authentication, fault injection and the request log for `/api/v1/...`."""

    def admit(request: Request) -> Admitted[Account[Any]] | Response:
        token = bearer(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="sandbox"'}
        if token is None:
            return problem(
                401, "missing_token", "Send 'Authorization: Bearer <token>'", headers=challenge
            )
        account = state.account_for_token(token)
        if account is None:
            return problem(401, "invalid_token", "Unknown access token", headers=challenge)
        return Admitted(account)

    return Gate(
        is_api_path=is_api_path,
        admit=admit,
        fault_response=_fault_response,
        crash_response=lambda: problem(500, "internal_error", "Internal server error"),
        errors=(_http_error, _invalid),
        logger=logger,
        record=RequestRecord.of,
    )


def _validation_errors(error: RequestValidationError) -> list[FieldError]:
    out = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ()) if part not in ("body", "query")]
        out.append(
            FieldError(".".join(loc) or "body", str(item.get("type", "invalid")), item["msg"])
        )
    return out


def _http_error(request: Request, error: StarletteHTTPException) -> ApiError:
    if error.status_code == 404:
        return ApiError(404, "not_found", f"No such resource: {request.url.path}")
    if error.status_code == 405:
        return ApiError(405, "method_not_allowed", f"{request.method} is not allowed here")
    return ApiError(error.status_code, "http_error", str(error.detail))


def _invalid(_request: Request, error: RequestValidationError) -> ApiError:
    return ApiError(422, "validation_failed", "Invalid parameters", _validation_errors(error))


# ------------------------------------------------------------------------ admin routes


class AccountIn(BaseModel):
    """Body of `POST /sandbox/accounts`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=8, max_length=500)
    organisation_number: str = Field(default="", max_length=20)


class FaultIn(KitFaultIn):
    """Body of `POST /sandbox/faults`."""

    path_prefix: str = Field(default=f"{API_PREFIX}/", pattern=r"^/api/v1(/.*)?$")


def admin_account(request: Request, state: PartnerState[R]) -> Account[R]:
    """The account an admin request names by its bearer token, else 401."""
    return admin.bearer_tenant(state.account_for_token, "account")(request)


def admin_router(state: PartnerState[R]) -> APIRouter:
    """`/sandbox/...`: accounts, faults, the request log, and what was received."""
    router = admin.admin_router()

    def account_of(request: Request) -> Account[R]:
        return admin_account(request, state)

    admin.add_tenant_routes(router, state, account_of, FaultIn, listing="accounts")

    @router.post("/accounts", status_code=201)
    async def create_account(body: AccountIn) -> dict[str, str]:
        try:
            account, token = state.create_account(body.name, body.token, body.organisation_number)
        except TokenInUseError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {
            "account_id": account.account_id,
            "token": token,
            "name": account.name,
            "organisation_number": account.organisation_number,
        }

    @router.get("/deliveries")
    async def deliveries(request: Request) -> dict[str, Any]:
        """Everything the account sent that was accepted: each send once, oldest first."""
        account = admin_account(request, state)
        now = state.now()
        with state.lock:
            records = list(account.records.values())
        return {
            "deliveries": [
                {
                    **record.view(now),
                    "idempotency_key": record.idempotency_key,
                    "content_sha256": record.content_sha256,
                    "size": len(record.content()[0]),
                }
                for record in records
            ]
        }

    @router.get("/deliveries/{record_id}/content")
    async def delivery_content(request: Request, record_id: str) -> Response:
        account = admin_account(request, state)
        with state.lock:
            record = account.records.get(record_id)
        if record is None:
            raise HTTPException(404, f"no delivery {record_id!r} in this account")
        data, media_type = record.content()
        return Response(content=data, media_type=media_type)

    return router


def build_app(
    state: PartnerState[Any],
    name: str,
    *,
    title: str,
    routers: Sequence[APIRouter],
) -> FastAPI:
    """A sandbox app: the provider's routers, the shared admin API, the gate, error bodies."""
    return admin.sandbox_app(
        state,
        name,
        title=title,
        routers=[*routers, admin_router(state)],
        gate=_gate(state),
    )


def add_record_routes(
    router: APIRouter, state: PartnerState[R], collection: str, noun: str
) -> None:
    """`GET /{collection}/{id}`: one send's status; `GET /{collection}?client_reference=X`:
    the account's sends, or those with exactly that reference (how a client that lost an
    answer finds what it sent)."""

    @router.get(f"/{collection}/{{record_id}}")
    async def get_record(request: Request, record_id: str) -> dict[str, Any]:
        record = state.get_record(current_account(request, state), record_id, noun)
        with state.lock:
            return record.view(state.now())

    @router.get(f"/{collection}")
    async def find_records(request: Request, client_reference: str | None = None) -> dict[str, Any]:
        account = current_account(request, state)
        reference = client_reference_param(client_reference)
        now = state.now()
        with state.lock:
            found = (
                list(account.records.values())
                if reference is None
                else state.by_client_reference(account, reference)
            )
            return {collection: [record.view(now) for record in found]}


def client_reference_param(value: str | None) -> str | None:
    """A client reference as sent (stripped; empty means none), at most 200 characters."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 200:
        raise ApiError(
            422,
            "validation_failed",
            "client_reference is too long",
            [FieldError("client_reference", "too_long", "at most 200 characters")],
        )
    return value
