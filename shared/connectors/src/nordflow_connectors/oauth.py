"""OAuth2 refresh-token sessions for ERP connectors: rotating refresh tokens, saved before use."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from . import egress
from .resilience import send_with_retries

logger = logging.getLogger("nordflow_connectors.oauth")

# RFC 6749 §5.2 errors that no retry with the same credentials will fix.
PERMANENT_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type"}
)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Tokens:
    """One grant's current tokens. The secrets print as `**********`."""

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime
    scope: str = ""

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")

    def due(self, now: datetime, margin: timedelta) -> bool:
        """True when the access token expires within `margin` of `now` (or already has)."""
        return now >= self.expires_at - margin

    def dump_secrets(self) -> dict[str, str]:
        """Plain values for a store to seal (encrypt) before persisting; never log these."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value(),
            "expires_at": self.expires_at.isoformat(),
            "scope": self.scope,
        }

    @classmethod
    def load_secrets(cls, data: Mapping[str, str]) -> Tokens:
        """The inverse of `dump_secrets`."""
        return cls(
            access_token=SecretStr(data["access_token"]),
            refresh_token=SecretStr(data["refresh_token"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            scope=data.get("scope", ""),
        )


class TokenStore(Protocol):
    """Where a connection's tokens live between requests and restarts (sealed, in the DB).

    `save` must be durable when it returns: the old refresh token no longer works, so the
    saved one is the only way back in without asking the user to authorize again.
    """

    async def load(self) -> Tokens | None:
        """The last saved tokens, or None when the connection was never authorized."""
        ...

    async def save(self, tokens: Tokens) -> None:
        """Persist rotated tokens, replacing the previous ones."""
        ...


class ExclusiveTokenStore(TokenStore, Protocol):
    """A store shared by several processes (replicas) that can serialise refreshes among them.

    `OAuthSession` holds `exclusive()` from reading the stored tokens until the rotated ones are
    saved, so two processes never redeem the same refresh token (the loser would spend it and
    lock the connection out). Within one process the session's own lock already serialises.
    """

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Held by at most one process at a time (e.g. a PostgreSQL advisory lock)."""
        ...


@dataclass
class InMemoryTokenStore:
    """A `TokenStore` in memory, for tests; `saved` lists every save in order."""

    tokens: Tokens | None = None
    saved: list[Tokens] = field(default_factory=list)

    async def load(self) -> Tokens | None:
        """The last saved tokens."""
        return self.tokens

    async def save(self, tokens: Tokens) -> None:
        """Keep `tokens` as the current ones."""
        self.tokens = tokens
        self.saved.append(tokens)


class OAuthError(Exception):
    """The token endpoint refused or failed a refresh. Never carries a token or secret."""

    def __init__(self, status: int | None, error: str, description: str = "") -> None:
        detail = f": {description}" if description else ""
        super().__init__(f"OAuth token refresh failed ({status or 'no answer'}) {error}{detail}")
        self.status = status
        self.error = error
        self.description = description

    @property
    def permanent(self) -> bool:
        """True when retrying cannot help (e.g. the refresh token was used or revoked)."""
        return self.error in PERMANENT_ERRORS

    @property
    def reauthorization_required(self) -> bool:
        """True when only a new authorization by the user can restore access."""
        return self.error in {"invalid_grant", "no_tokens"}


class TokenStoreError(Exception):
    """Rotated tokens could not be saved. They are kept in memory and saved again before use."""


class OAuthSession:
    """Valid access tokens for one connection, refreshed with a rotating refresh token.

    - At most one refresh runs at a time (an `asyncio.Lock`); callers that waited for it use
      its result instead of refreshing again.
    - Rotated tokens are saved before the new access token is handed out, so a crash after
      a refresh never loses the only valid refresh token (short of the one request in flight).
    - Access tokens are refreshed `refresh_margin` seconds ahead of expiry, and once more when
      the API answers 401 (`authorized`).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        store: TokenStore,
        *,
        refresh_margin: float = 60.0,
        timeout: float = 15.0,
        client_auth: Literal["basic", "post"] = "basic",
        clock: Callable[[], datetime] = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._margin = timedelta(seconds=refresh_margin)
        self._client_auth = client_auth
        self._clock = clock
        self._http = egress.client(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()
        self._tokens: Tokens | None = None
        self._loaded = False
        self._unsaved = False
        self.refreshes = 0

    async def aclose(self) -> None:
        """Close the connection pool to the token endpoint."""
        await self._http.aclose()

    # ---------------------------------------------------------------------- public API

    async def access_token(self) -> SecretStr:
        """A valid access token, refreshing first when it is (nearly) expired."""
        tokens = self._tokens
        if tokens is not None and not self._unsaved and not tokens.due(self._clock(), self._margin):
            return tokens.access_token
        async with self._lock:
            tokens = await self._current()
            if not tokens.due(self._clock(), self._margin):
                return tokens.access_token
            return await self._refresh_locked(tokens, rejected=None)

    async def refresh(self, rejected: SecretStr | None = None) -> SecretStr:
        """Refresh now, unless another caller already replaced the `rejected` access token."""
        async with self._lock:
            tokens = await self._current()
            if (
                rejected is not None
                and not _same(tokens.access_token, rejected)
                and not tokens.due(self._clock(), self._margin)
            ):
                return tokens.access_token
            return await self._refresh_locked(tokens, rejected=rejected)

    async def authorized(
        self, send: Callable[[SecretStr], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        """`send(access_token)`; after a 401, refresh and send once more (a 401 did nothing)."""
        token = await self.access_token()
        response = await send(token)
        if response.status_code != 401:
            return response
        logger.info("access token refused (401) for client %s; refreshing", self._client_id)
        token = await self.refresh(rejected=token)
        return await send(token)

    # --------------------------------------------------------------------- internals

    async def _current(self) -> Tokens:
        """The tokens to work from (lock held): saves pending ones, loads on first use."""
        if self._unsaved and self._tokens is not None:
            await self._save(self._tokens)
        if not self._loaded:
            self._tokens = await self._store.load()
            self._loaded = True
        if self._tokens is None:
            raise OAuthError(None, "no_tokens", "the connection has not been authorized")
        return self._tokens

    async def _refresh_locked(self, tokens: Tokens, rejected: SecretStr | None) -> SecretStr:
        exclusive: Callable[[], AbstractAsyncContextManager[None]] | None = getattr(
            self._store, "exclusive", None
        )
        async with exclusive() if exclusive is not None else contextlib.nullcontext():
            return await self._refresh_exclusively(tokens, rejected)

    async def _refresh_exclusively(self, tokens: Tokens, rejected: SecretStr | None) -> SecretStr:
        # Another process sharing the store may have rotated already; its tokens are the
        # valid ones (ours was consumed), so adopt them rather than refresh with a dead token.
        stored = await self._store.load()
        if stored is not None and not _same(stored.refresh_token, tokens.refresh_token):
            self._tokens = tokens = stored
            fresh = not stored.due(self._clock(), self._margin)
            if fresh and (rejected is None or not _same(stored.access_token, rejected)):
                return stored.access_token
        rotated = await self._redeem(tokens)
        self.refreshes += 1
        self._tokens = rotated
        self._unsaved = True
        await self._save(rotated)
        logger.info(
            "refreshed OAuth tokens for client %s; access token valid until %s",
            self._client_id,
            rotated.expires_at.isoformat(),
        )
        return rotated.access_token

    async def _save(self, tokens: Tokens) -> None:
        try:
            await self._store.save(tokens)
        except Exception as exc:
            raise TokenStoreError(
                f"saving rotated tokens for client {self._client_id} failed "
                f"({type(exc).__name__}); they are kept in memory and saved before use"
            ) from exc
        self._unsaved = False

    async def _redeem(self, tokens: Tokens) -> Tokens:
        """POST grant_type=refresh_token; only a 429 is retried (the old token may be spent)."""
        data = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token.get_secret_value(),
        }
        headers = {"Accept": "application/json"}
        if self._client_auth == "basic":
            # RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding.
            secret = quote_plus(self._client_secret.get_secret_value())
            pair = f"{quote_plus(self._client_id)}:{secret}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            data["client_id"] = self._client_id
            data["client_secret"] = self._client_secret.get_secret_value()

        async def send() -> httpx.Response:
            return await self._http.post(self._token_url, data=data, headers=headers)

        now = self._clock()
        response = await send_with_retries(send, only_rejected=True)
        if response.status_code != 200:
            raise self._refusal(response, tokens)
        try:
            body: dict[str, Any] = response.json()
            access = str(body["access_token"])
            expires_in = int(body["expires_in"])
        except (ValueError, KeyError, TypeError) as exc:
            raise OAuthError(200, "invalid_response", "no access_token/expires_in") from exc
        refresh = body.get("refresh_token")
        return Tokens(
            access_token=SecretStr(access),
            # RFC 6749 §6: the server may keep the refresh token; then the old one stays valid.
            refresh_token=SecretStr(str(refresh)) if refresh else tokens.refresh_token,
            expires_at=now + timedelta(seconds=expires_in),
            scope=str(body.get("scope") or tokens.scope),
        )

    def _refusal(self, response: httpx.Response, tokens: Tokens) -> OAuthError:
        error, description = "server_error", ""
        try:
            body = response.json()
            error = str(body.get("error") or error)
            description = str(body.get("error_description") or "")[:200]
        except (ValueError, AttributeError):
            description = response.text[:200]
        secrets = (
            tokens.refresh_token.get_secret_value(),
            tokens.access_token.get_secret_value(),
            self._client_secret.get_secret_value(),
        )
        for secret in secrets:
            if secret:
                description = description.replace(secret, "**********")
        return OAuthError(response.status_code, error, description)


def _same(a: SecretStr, b: SecretStr) -> bool:
    return a.get_secret_value() == b.get_secret_value()
