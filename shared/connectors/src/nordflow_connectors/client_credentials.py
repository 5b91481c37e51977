"""OAuth2 client-credentials tokens (Visma Connect service integrations), cached until expiry.

Visma.net ERP's API is authorised through Visma Connect. A service integration (no user
signs in) asks ``https://connect.visma.com/connect/token`` with ``grant_type=
client_credentials``, its client id and secret, the scopes, and the ``tenant_id`` of the
customer's company; the answer is a bearer access token with ``expires_in`` and no refresh
token. Nothing rotates, so nothing is stored: every process fetches its own token.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
from pydantic import SecretStr

from . import egress
from .oauth import OAuthError, utc_now
from .resilience import send_with_retries

logger = logging.getLogger("nordflow_connectors.client_credentials")

VISMA_CONNECT_TOKEN_URL = "https://connect.visma.com/connect/token"  # noqa: S105 - a URL
VISMA_NET_SERVICE_SCOPES = (
    "vismanet_erp_service_api:read vismanet_erp_service_api:create vismanet_erp_service_api:update"
)
DEFAULT_LIFETIME = 3600  # seconds, when a token answer omits expires_in (RFC 6749 §5.1)


@dataclass(frozen=True)
class AccessToken:
    """One cached access token. The token prints as `**********`."""

    token: SecretStr
    expires_at: datetime

    def due(self, now: datetime, margin: timedelta) -> bool:
        """True when it expires within `margin` of `now` (or already has)."""
        return now >= self.expires_at - margin


class ClientCredentialsSession:
    """A `TokenProvider` for a service integration: one access token, reused until shortly
    before it expires, then fetched again; `refresh` fetches a new one after a 401.

    - At most one fetch runs at a time; callers that waited for it use its token.
    - `refresh(rejected)` fetches only if the cached token is still the rejected one, so a
      burst of 401s costs one fetch.
    - Errors are `OAuthError`s naming the status and the server's error code; the client
      secret and tokens never appear in them, nor in this object's repr.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        scope: str,
        tenant_id: str | None = None,
        refresh_margin: float = 60.0,
        timeout: float = 15.0,
        client_auth: Literal["basic", "post"] = "post",
        clock: Callable[[], datetime] = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self.tenant_id = tenant_id
        self._client_secret = client_secret
        self._margin = timedelta(seconds=refresh_margin)
        self._client_auth = client_auth
        self._clock = clock
        self._http = egress.client(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()
        self._cached: AccessToken | None = None
        self.fetches = 0

    def __repr__(self) -> str:
        return (
            f"ClientCredentialsSession(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, tenant_id={self.tenant_id!r})"
        )

    async def aclose(self) -> None:
        """Close the connection pool to the token endpoint."""
        await self._http.aclose()

    async def __call__(self) -> SecretStr:
        """The `TokenProvider` call: a valid access token."""
        return await self.access_token()

    async def access_token(self) -> SecretStr:
        """The cached token, or a new one when none is cached or it (nearly) expired."""
        cached = self._cached
        if cached is not None and not cached.due(self._clock(), self._margin):
            return cached.token
        async with self._lock:
            cached = self._cached
            if cached is not None and not cached.due(self._clock(), self._margin):
                return cached.token
            return await self._fetch()

    async def refresh(self, rejected: SecretStr | None = None) -> SecretStr:
        """Fetch a new token, unless another caller already replaced the `rejected` one."""
        async with self._lock:
            cached = self._cached
            if (
                rejected is not None
                and cached is not None
                and cached.token.get_secret_value() != rejected.get_secret_value()
                and not cached.due(self._clock(), self._margin)
            ):
                return cached.token
            return await self._fetch()

    async def authorized(
        self, send: Callable[[SecretStr], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        """`send(access_token)`; after a 401, fetch a new token and send once more."""
        token = await self.access_token()
        response = await send(token)
        if response.status_code != 401:
            return response
        logger.info("access token refused (401) for client %s; fetching a new one", self.client_id)
        return await send(await self.refresh(rejected=token))

    async def _fetch(self) -> SecretStr:
        """POST grant_type=client_credentials (lock held). Safe to repeat: nothing is spent."""
        data = {"grant_type": "client_credentials", "scope": self.scope}
        if self.tenant_id:
            data["tenant_id"] = self.tenant_id
        headers = {"Accept": "application/json"}
        secret = self._client_secret.get_secret_value()
        if self._client_auth == "basic":
            pair = f"{quote_plus(self.client_id)}:{quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            data["client_id"] = self.client_id
            data["client_secret"] = secret

        async def send() -> httpx.Response:
            return await self._http.post(self.token_url, data=data, headers=headers)

        now = self._clock()
        response = await send_with_retries(send)
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            body: dict[str, Any] = response.json()
            token = str(body["access_token"])
            lifetime = int(body.get("expires_in") or DEFAULT_LIFETIME)
        except (ValueError, KeyError, TypeError) as exc:
            raise OAuthError(200, "invalid_response", "no access_token in the answer") from exc
        self._cached = AccessToken(SecretStr(token), now + timedelta(seconds=lifetime))
        self.fetches += 1
        logger.info(
            "fetched a client-credentials token for client %s; valid until %s",
            self.client_id,
            self._cached.expires_at.isoformat(),
        )
        return self._cached.token

    def _refusal(self, response: httpx.Response) -> OAuthError:
        error, description = "server_error", ""
        try:
            body = response.json()
            error = str(body.get("error") or error)
            description = str(body.get("error_description") or "")[:200]
        except (ValueError, AttributeError):
            description = response.text[:200]
        secrets = [self._client_secret.get_secret_value()]
        if self._cached is not None:
            secrets.append(self._cached.token.get_secret_value())
        for secret in secrets:
            if secret:
                description = description.replace(secret, "**********")
        return OAuthError(response.status_code, error, description)
