"""OAuth2 the ERP sandboxes share: clients, expiring access tokens, the token endpoint's parts.

The token endpoint's form, client authentication and answers follow RFC 6749.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, cast
from urllib.parse import parse_qs, unquote_plus

from fastapi import Request
from fastapi.responses import JSONResponse

# Token answers must not be cached by the client or a proxy (RFC 6749 §5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class ClientSecretMismatchError(ValueError):
    """A client id that exists was given again with another secret."""


@dataclass(frozen=True)
class OAuthClient:
    """A registered application: its client id and secret."""

    client_id: str
    client_secret: str = field(repr=False)


class Client(Protocol):
    """What the registry keeps of a client."""

    @property
    def client_id(self) -> str: ...

    @property
    def client_secret(self) -> str: ...


C = TypeVar("C", bound=Client)


class ClientRegistry(Generic[C]):
    """The applications an authorization server knows, by client id."""

    def __init__(
        self,
        lock: threading.RLock,
        make: Callable[[str, str], C],
        *,
        new_id: Callable[[], str],
        secret_bytes: int = 32,
    ) -> None:
        self._lock = lock
        self._make = make
        self._new_id = new_id
        self._secret_bytes = secret_bytes
        self._clients: dict[str, C] = {}

    def register(self, client_id: str | None = None, client_secret: str | None = None) -> C:
        """The client `client_id`, registered when new (id and secret generated unless given).

        An existing client keeps its secret; giving another one is refused.
        """
        with self._lock:
            client = self._clients.get(client_id) if client_id else None
            if client is None:
                client = self._make(
                    client_id or self._new_id(),
                    client_secret or secrets.token_urlsafe(self._secret_bytes),
                )
                self._clients[client.client_id] = client
            elif client_secret is not None and client_secret != client.client_secret:
                raise ClientSecretMismatchError("that client id exists with another secret")
            return client

    def authenticate(self, client_id: str, client_secret: str) -> C | None:
        """The client when id and secret match (compared in constant time)."""
        with self._lock:
            client = self._clients.get(client_id)
        if client is None or not secrets.compare_digest(
            client.client_secret.encode(), client_secret.encode()
        ):
            return None
        return client


class Grant(Protocol):
    """An access token's grant: whose, for which company, until when."""

    @property
    def token(self) -> str: ...

    @property
    def client_id(self) -> str: ...

    @property
    def company_id(self) -> str: ...

    @property
    def expires(self) -> datetime: ...


G = TypeVar("G", bound=Grant)


class AccessTokens(Generic[G]):
    """Issued bearer access tokens and their grants; an expired grant is kept, to say so."""

    def __init__(self, lock: threading.RLock, now: Callable[[], datetime]) -> None:
        self._lock = lock
        self._now = now
        self._grants: dict[str, G] = {}

    def issue(self, make: Callable[[str], G]) -> G:
        """A new random token with the grant `make(token)` builds."""
        with self._lock:
            grant = make(secrets.token_urlsafe(32))
            self._grants[grant.token] = grant
            return grant

    def grant(self, token: str) -> G | None:
        """The grant of an access token, expired or not."""
        with self._lock:
            return self._grants.get(token)

    def expired(self, token: str) -> bool:
        """Whether `token` is an access token past its expiry."""
        with self._lock:
            grant = self._grants.get(token)
            return grant is not None and grant.expires <= self._now()

    def expire(self, company_id: str, client_id: str | None = None) -> int:
        """End the company's live access tokens (of one client, or all) now; how many."""
        with self._lock:
            now, ended = self._now(), 0
            for token, grant in list(self._grants.items()):
                if (
                    grant.company_id == company_id
                    and (client_id is None or grant.client_id == client_id)
                    and grant.expires > now
                ):
                    self._grants[token] = cast(
                        G, dataclasses.replace(cast(Any, grant), expires=now)
                    )
                    ended += 1
            return ended


# ----------------------------------------------------------------------- token endpoint


def oauth_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An RFC 6749 §5.2 error answer."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **(headers or {})},
    )


def token_answer(body: dict[str, Any]) -> JSONResponse:
    """A successful token answer (RFC 6749 §5.1)."""
    return JSONResponse(body, headers=NO_STORE)


async def token_form(request: Request) -> dict[str, str] | JSONResponse:
    """The token request's form fields, or the error answer for a body that is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return oauth_error(400, "invalid_request", "Use application/x-www-form-urlencoded")
    try:
        parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return oauth_error(400, "invalid_request", "The body is not UTF-8")
    return {key: values[0] for key, values in parsed.items() if values}


def client_credentials(
    request: Request, form: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """The client's id and secret: client_secret_basic (RFC 6749 §2.3.1, form-encoded parts),
    else client_secret_post from `form` when the server takes it."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        return (unquote_plus(client_id), unquote_plus(secret)) if sep else None
    if form is not None and form.get("client_id") and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None
