"""Hand files over by SFTP (asyncssh): upload under a temporary name, rename to the final
name, then read the provider's receipt or error log back; settlement files are read from
the provider's settlement directory.

The host key is pinned (the agreement's ``transfer.host_key``): a server presenting another
key is refused. SFTP version 3's rename never replaces an existing file, so a final name
arrives at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from collections.abc import AsyncIterator

import asyncssh
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
from .receipts import ERROR_SUFFIX, RECEIPT_SUFFIX, read_error_log, read_receipt


class SftpFactorClient:
    """One SFTP session with the provider; each request waits at most ``timeout`` seconds
    (a server that stops answering raises `TimeoutError`, which `connect_sftp` makes a
    transient error: the job's next run looks the file up first)."""

    def __init__(
        self,
        sftp: asyncssh.SFTPClient,
        agreement: Agreement,
        *,
        poll_seconds: float,
        timeout: float,
    ) -> None:
        self.sftp = sftp
        self.transfer = agreement.transfer
        self.poll_seconds = poll_seconds
        self.timeout = timeout

    def _request(self) -> asyncio.Timeout:
        """The time one SFTP request (a whole file's read or write) may take."""
        return asyncio.timeout(self.timeout)

    def _path(self, directory: str, name: str) -> str:
        return posixpath.join(directory, name)

    async def _read(self, path: str) -> bytes | None:
        try:
            async with self._request(), self.sftp.open(path, "rb") as handle:
                data: bytes = await handle.read()
                return data
        except asyncssh.SFTPNoSuchFile:
            return None

    async def lookup(self, name: str) -> FactorAnswer:
        """Error log → refused; receipt → received; the file itself → pending; else absent."""
        receipts = self.transfer.receipt_dir
        if (error := await self._read(self._path(receipts, name + ERROR_SUFFIX))) is not None:
            return read_error_log(error)
        if (receipt := await self._read(self._path(receipts, name + RECEIPT_SUFFIX))) is not None:
            return read_receipt(receipt)
        async with self._request():
            pending = await self.sftp.exists(self._path(self.transfer.upload_dir, name))
        if pending:
            return FactorAnswer(FileStatus.PENDING)
        return FactorAnswer(FileStatus.ABSENT)

    async def upload(self, file: OutFile, *, key: str) -> FactorAnswer:
        """Write ``.<name>.part``, then rename it to ``<name>`` (the provider reads only
        final names); a partial file of an earlier attempt is removed first."""
        temporary = self._path(self.transfer.upload_dir, f".{file.name}.part")
        final = self._path(self.transfer.upload_dir, file.name)
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            async with self._request():
                await self.sftp.remove(temporary)
        async with self._request(), self.sftp.open(temporary, "wb") as handle:
            await handle.write(file.content)
        try:
            async with self._request():
                await self.sftp.rename(temporary, final)
        except asyncssh.SFTPError:
            # The final name exists only if an earlier attempt got there: never overwrite it.
            async with self._request():
                there = await self.sftp.exists(final)
            if not there:
                raise
            with contextlib.suppress(asyncssh.SFTPError):
                async with self._request():
                    await self.sftp.remove(temporary)
        return FactorAnswer(FileStatus.PENDING)

    async def wait_for_answer(self, name: str, timeout: float) -> FactorAnswer:
        """Poll for the receipt or error log until ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            answer = await self.lookup(name)
            if answer.final or loop.time() >= deadline:
                return answer
            await asyncio.sleep(self.poll_seconds)

    async def settlement_files(self) -> list[str]:
        """The settlement directory's files (hidden and partial ones left out)."""
        try:
            async with self._request():
                names = await self.sftp.listdir(self.transfer.settlement_dir)
        except asyncssh.SFTPNoSuchFile:
            return []
        return sorted(n for n in names if n not in (".", "..") and not n.startswith("."))

    async def settlement(self, name: str) -> bytes:
        """One settlement file."""
        data = await self._read(self._path(self.transfer.settlement_dir, name))
        if data is None:
            raise TransientTransferError(f"settlement file {name} disappeared")
        return data


@contextlib.asynccontextmanager
async def connect_sftp(
    agreement: Agreement,
    secret: TransferSecret,
    *,
    timeout: float,
    poll_seconds: float,
    allow_internal: bool | None = None,
) -> AsyncIterator[SftpFactorClient]:
    """An SFTP session for the agreement; errors become transient or configuration ones.

    The host is the tenant's: it is resolved and checked first, and the session opened to
    the checked address (``nordflow_connectors.egress``); the host key pins the server."""
    t = agreement.transfer
    assert t.host is not None
    assert t.username is not None
    assert t.host_key is not None
    try:
        host_key = asyncssh.import_public_key(t.host_key)
        keys = [asyncssh.import_private_key(secret.private_key)] if secret.private_key else []
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise TransferConfigurationError(
            f"the agreement's SSH keys cannot be read: {exc}"
        ) from None
    try:
        addresses = await egress.resolve_public(t.host, t.port, allow=allow_internal)
    except egress.ForbiddenDestinationError as exc:
        raise TransferConfigurationError(str(exc)) from None
    except httpx.ConnectError:
        raise TransientTransferError(
            f"SFTP to {t.host}:{t.port}: the name does not resolve"
        ) from None
    try:
        async with asyncssh.connect(
            addresses[0],
            t.port,
            username=t.username,
            password=secret.password,
            client_keys=keys or None,
            known_hosts=([host_key], [], []),
            connect_timeout=timeout,
            login_timeout=timeout,
            preferred_auth="publickey,password" if keys else "password",
        ) as connection:
            async with asyncio.timeout(timeout):
                sftp = await connection.start_sftp_client()
            try:
                yield SftpFactorClient(sftp, agreement, poll_seconds=poll_seconds, timeout=timeout)
            finally:
                # Not waiting for the server to confirm: one that stopped answering would
                # hold the job here; the connection's close ends the session anyway.
                sftp.exit()
    except asyncssh.PermissionDenied:
        raise TransferConfigurationError(f"SFTP login refused for {t.username}") from None
    except asyncssh.HostKeyNotVerifiable:
        raise TransferConfigurationError(
            f"SFTP host key of {t.host} does not match the agreement's"
        ) from None
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        # Our own short reason: what the server said stays in the logs.
        raise TransientTransferError(f"SFTP to {t.host}:{t.port}: {type(exc).__name__}") from None
