"""Hand files over to a provider's HTTPS API: ``POST {base}/files?name=…`` with the file as
the body and an Idempotency-Key, answered synchronously with the receipt (201) or the
refusal (422 ``file_refused``); ``GET {base}/files?name=…`` looks a file up after a lost
answer; ``GET {base}/settlements[/{name}]`` lists and reads settlement files."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
from nordflow_connectors import egress

from ...domain.agreements import Agreement
from ...domain.formats import OutFile
from ...domain.transfer import (
    FactorAnswer,
    FileStatus,
    TransferConfigurationError,
    TransferSecret,
    TransientTransferError,
)


def _answer(found: dict[str, Any]) -> FactorAnswer:
    receipt = dict(found.get("receipt") or {})
    if found.get("status") == "refused":
        return FactorAnswer(FileStatus.REFUSED, reason=found.get("reason"), receipt=receipt)
    return FactorAnswer(FileStatus.RECEIVED, receipt=receipt)


class HttpsFactorClient:
    """One HTTPS session with the provider's API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **options)
        except egress.ForbiddenDestinationError as exc:
            raise TransferConfigurationError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise TransientTransferError(f"{method} {path}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise TransferConfigurationError(
                f"the provider's API refused the agreement's token (HTTP {response.status_code})"
            )
        if response.status_code in (408, 409, 429) or response.status_code >= 500:
            raise TransientTransferError(f"{method} {path}: HTTP {response.status_code}")
        return response

    async def lookup(self, name: str) -> FactorAnswer:
        """What the provider has under the file's name."""
        response = await self._call("GET", "files", params={"name": name})
        response.raise_for_status()
        files = response.json().get("files") or []
        return _answer(files[-1]) if files else FactorAnswer(FileStatus.ABSENT)

    async def upload(self, file: OutFile, *, key: str) -> FactorAnswer:
        """Send the file; the API answers with its receipt or its refusal."""
        response = await self._call(
            "POST",
            "files",
            params={"name": file.name},
            content=file.content,
            headers={"Idempotency-Key": key, "Content-Type": file.media_type},
        )
        if response.status_code in (200, 201):
            return _answer(response.json())
        body = _json(response)
        if response.status_code == 422 and body.get("code") == "file_refused":
            errors = [e.get("message", "") for e in body.get("errors") or []]
            reason = "; ".join(filter(None, errors)) or str(body.get("title") or "refused")
            return FactorAnswer(FileStatus.REFUSED, reason=reason, receipt=body)
        # The answer's body is not the tenant's to read (a status and our reason only).
        raise TransferConfigurationError(
            f"the provider's API answered HTTP {response.status_code} to the upload"
        )

    async def wait_for_answer(self, name: str, timeout: float) -> FactorAnswer:
        """The API answers at once: one look."""
        return await self.lookup(name)

    async def settlement_files(self) -> list[str]:
        """The settlement files the API lists."""
        response = await self._call("GET", "settlements")
        response.raise_for_status()
        return sorted(s["name"] for s in response.json().get("settlements") or [])

    async def settlement(self, name: str) -> bytes:
        """One settlement file's bytes."""
        response = await self._call("GET", f"settlements/{name}")
        response.raise_for_status()
        return response.content


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@contextlib.asynccontextmanager
async def connect_https(
    agreement: Agreement,
    secret: TransferSecret,
    *,
    timeout: float,
    verify: ssl.SSLContext | bool,
    allow_internal: bool | None = None,
) -> AsyncIterator[HttpsFactorClient]:
    """A client on the agreement's API root with its bearer token; the URL is the tenant's,
    so only public addresses are connected to, redirects are not followed."""
    base = (agreement.transfer.base_url or "").rstrip("/") + "/"
    headers = {"Authorization": f"Bearer {secret.token or ''}"}
    transport = egress.guarded_transport(allow=allow_internal, verify=verify)
    async with egress.client(
        base_url=base, headers=headers, timeout=timeout, transport=transport
    ) as http:
        yield HttpsFactorClient(http)
