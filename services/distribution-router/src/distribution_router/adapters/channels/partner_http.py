"""What the HTTP delivery adapters share: the client, client references, error classification.

The access point, print house and bank APIs have the same shape (bearer token, `Idempotency-Key`,
lookup by `client_reference`, RFC 9457 problem bodies listing each refused field), so the
adapters differ only in what they send and which refusals let the job fall back to another
channel. Retries are the send job's (it backs off and asks `lookup` first); an adapter makes
one attempt and says what happened.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from .base import TransientSendError

IDEMPOTENCY_HEADER = "Idempotency-Key"
# What both the Idempotency-Key header (1-255) and a client reference (1-200) can hold.
_REFERENCE_SAFE = re.compile(r"^[\x21-\x7e]{1,200}$")
_MAX_RETRY_AFTER = 3600.0


def client_reference(idempotency_key: str) -> str:
    """The partner-side name of a send: the key itself, or a digest of a key it cannot hold.

    Deterministic, so a lookup after a crash finds what an earlier process sent; sent both as
    the `Idempotency-Key` header and as the `client_reference` the lookup searches by.
    """
    if not idempotency_key:
        raise ValueError("the idempotency key is empty")
    if _REFERENCE_SAFE.match(idempotency_key):
        return idempotency_key
    return "nf-" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the delta form; an HTTP date is ignored)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


@dataclass(frozen=True)
class FieldProblem:
    """One refused field of a problem body."""

    field: str
    code: str
    message: str


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem body (or what could be read of a non-conforming error answer)."""

    status: int
    code: str
    title: str
    errors: tuple[FieldProblem, ...] = ()

    def codes(self) -> set[str]:
        """The top-level code and every field's code."""
        return {self.code, *(error.code for error in self.errors)}

    def describe(self) -> str:
        """`title (code): field: message; …` for an error message a user can act on."""
        head = f"{self.title} ({self.code})" if self.code else self.title
        details = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        return f"{head}: {details}" if details else head


def _text(value: Any, limit: int = 500) -> str:
    return " ".join(str(value).split())[:limit] if value is not None else ""


def read_problem(response: httpx.Response) -> Problem:
    """The problem a refused request answered with; tolerant of bodies that are no problem."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        title = response.reason_phrase or "refused"
        return Problem(response.status_code, "", _text(title) or f"HTTP {response.status_code}")
    errors: list[FieldProblem] = []
    raw_errors = body.get("errors")
    if isinstance(raw_errors, Sequence) and not isinstance(raw_errors, str):
        for item in raw_errors:
            if isinstance(item, Mapping):
                errors.append(
                    FieldProblem(
                        field=_text(item.get("field"), 200) or "body",
                        code=_text(item.get("code"), 100),
                        message=_text(item.get("message") or item.get("detail")),
                    )
                )
    title = _text(body.get("title") or body.get("detail")) or f"HTTP {response.status_code}"
    return Problem(response.status_code, _text(body.get("code"), 100), title, tuple(errors))


class PartnerHttp:
    """One partner API: base URL, bearer token, timeout; turns transport failures into errors.

    The token is only put in the client's default headers; it is never formatted into a
    message, and `repr` shows the partner and URL only.
    """

    def __init__(
        self,
        partner: str,
        base_url: str,
        token: SecretStr,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_url.strip():
            raise ValueError(f"{partner}: the base URL is empty")
        if not token.get_secret_value():
            raise ValueError(f"{partner}: the API token is empty")
        self.partner = partner
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=self.base_url + "/",
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token.get_secret_value()}",
                "Accept": "application/json, application/problem+json",
            },
        )

    def __repr__(self) -> str:
        return f"PartnerHttp(partner={self.partner!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, creates: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One request; a timeout or a broken connection is a `TransientSendError`.

        ``creates``: the request delivers something, so a lost answer means the partner may
        have it (`maybe_delivered`); a refused connection never does.
        """
        try:
            return await self._client.request(method, path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            connecting = isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise TransientSendError(
                f"{self.partner}: no answer to {method} /{path.lstrip('/')} within "
                f"{self.timeout:g} s",
                maybe_delivered=creates and not connecting,
            ) from None
        except httpx.ConnectError:
            raise TransientSendError(f"{self.partner}: cannot connect to {self.base_url}") from None
        except httpx.TransportError as exc:
            raise TransientSendError(
                f"{self.partner}: the connection failed during {method} "
                f"/{path.lstrip('/')} ({type(exc).__name__})",
                maybe_delivered=creates,
            ) from None

    def redact(self, text: str) -> str:
        """`text` without the token, should a partner ever echo it."""
        secret = self._token.get_secret_value()
        return text.replace(secret, "[redacted]") if secret else text

    def transient_refusal(
        self, response: httpx.Response, problem: Problem, *, creates: bool
    ) -> TransientSendError | None:
        """The error for answers that are worth retrying as they are; None for the rest.

        401/403 are our configuration: transient, so the job keeps retrying until an
        operator fixes the token, with a message that says so. 408/409 (a request with the
        same key still running)/425/429/5xx: the partner's state, retry later.
        """
        status = response.status_code
        described = self.redact(problem.describe())
        if status in (401, 403):
            return TransientSendError(
                f"{self.partner} refused our credentials (HTTP {status}: {described}); "
                "check the API token setting"
            )
        if status in (408, 409, 425, 429) or status >= 500:
            # A 5xx after a create may follow a stored change (gateways do that).
            return TransientSendError(
                f"{self.partner} answered HTTP {status}: {described}",
                maybe_delivered=creates and status >= 500,
                retry_after=retry_after_seconds(response),
            )
        return None

    async def find_by_reference(
        self, path: str, list_key: str, reference: str
    ) -> Mapping[str, Any] | None:
        """The oldest record the partner lists under exactly this client reference, if any."""
        response = await self.request("GET", path, params={"client_reference": reference})
        if response.status_code != 200:
            problem = read_problem(response)
            refusal = self.transient_refusal(response, problem, creates=False)
            raise refusal or TransientSendError(
                f"{self.partner}: the lookup of {reference!r} was refused "
                f"(HTTP {response.status_code}: {self.redact(problem.describe())})"
            )
        try:
            listed = response.json()[list_key]
        except (ValueError, KeyError, TypeError):
            raise TransientSendError(
                f"{self.partner}: the lookup answer has no {list_key!r} list"
            ) from None
        for record in listed if isinstance(listed, list) else []:
            # The search may be wider than an exact match on some providers: compare here.
            if isinstance(record, Mapping) and record.get("client_reference") == reference:
                return record
        return None


def created_record(partner: str, response: httpx.Response) -> Mapping[str, Any]:
    """The body of a 2xx create answer, which must name the partner's id for the record.

    An answer we cannot read still means the partner took the send: `maybe_delivered`, so the
    job's lookup finds the record before anything is sent again.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("id"), str) and body["id"]:
        return body
    raise TransientSendError(
        f"{partner} accepted the send (HTTP {response.status_code}) but its answer names no id",
        maybe_delivered=True,
    )


def found_id(partner: str, record: Mapping[str, Any]) -> str:
    """The id of a record a lookup found."""
    value = record.get("id")
    if isinstance(value, str) and value:
        return value
    raise TransientSendError(f"{partner}: the record found by the lookup has no id")
