"""The factor's SFTP server (asyncssh): password login per client, each chrooted to its own
``inbox``/``outbox``/``settlements``; a file renamed into ``inbox`` under its final name is
processed, and its receipt or error log appears in ``outbox``."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

import asyncssh

from nordflow_sandboxes.factor.state import FactorAccount, FactorState
from nordflow_sandboxes.server import bind_socket

logger = logging.getLogger("nordflow_sandboxes.factor.sftp")


class _Server(asyncssh.SSHServer):
    """Password authentication against the factor's SFTP logins."""

    def __init__(self, state: FactorState) -> None:
        self.state = state

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self.state.sftp_login(username, password) is not None


class FactorSftpServer(asyncssh.SFTPServer):
    """One client's SFTP session, chrooted to its directory tree."""

    def __init__(self, chan: asyncssh.SSHServerChannel[Any], state: FactorState) -> None:
        self.state = state
        username = chan.get_extra_info("username")
        account_id = state.account_of_login(username)
        self.extra: FactorAccount = state.factor_accounts[account_id]
        self.ssh_connection = chan.get_extra_info("connection")
        self.written: dict[int, int] = {}
        super().__init__(chan, chroot=os.fsencode(self.extra.root))

    async def write(self, file_obj: object, offset: int, data: bytes) -> int:
        fault = self.state.peek_sftp_fault(self.extra, "upload")
        total = self.written.get(id(file_obj), 0) + len(data)
        self.written[id(file_obj)] = total
        if fault is not None and fault.action == "drop_connection" and total >= fault.after_bytes:
            self.state.take_sftp_fault(self.extra, "upload")
            written = super().write(
                file_obj, offset, data[: max(0, len(data) - (total - fault.after_bytes))]
            )
            if asyncio.iscoroutine(written):
                await written
            logger.info("dropping the SFTP connection mid-upload (fault)")
            self.ssh_connection.abort()
            raise asyncssh.SFTPConnectionLost("the connection dropped mid-upload")
        result = super().write(file_obj, offset, data)
        if asyncio.iscoroutine(result):
            return int(await result)
        return int(result)  # type: ignore[arg-type]

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        old = Path(os.fsdecode(self.map_path(oldpath)))
        new = Path(os.fsdecode(self.map_path(newpath)))
        if new.exists() or new.is_symlink():  # noqa: ASYNC240 - a local stat
            raise asyncssh.SFTPFailure("the target name exists already")
        old.rename(new)  # noqa: ASYNC240 - a local rename
        relative = new.relative_to(self.extra.root.resolve())
        if relative.parent == Path("inbox") and not relative.name.startswith("."):
            await self._process(relative.name, new)
        fault = self.state.take_sftp_fault(self.extra, "rename")
        if fault is not None and fault.action == "delay":
            await asyncio.sleep(fault.delay_seconds)

    async def _process(self, name: str, path: Path) -> None:
        account = self.state.account_by_id(self.extra.account_id)
        assert account is not None
        content = path.read_bytes()  # noqa: ASYNC240 - a small local file
        received = self.state.receive(account, name, content, via="sftp")
        delay = self.state.receipt_delay.total_seconds()
        fault = self.state.take_sftp_fault(self.extra, "receipt")
        if fault is not None and fault.action == "delay":
            delay += fault.delay_seconds
        task = asyncio.get_running_loop().create_task(
            self.state.write_answer(account, received, delay)
        )
        _pending.add(task)
        task.add_done_callback(_pending.discard)


_pending: set[asyncio.Task[None]] = set()


class SftpListener:
    """The SFTP side: a bound socket (so port 0 is known before start), a host key."""

    def __init__(self, state: FactorState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.socket: socket.socket = bind_socket(host, port)
        self.host, self.port = self.socket.getsockname()[:2]
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def public_host_key(self) -> str:
        """The host key line clients pin (``ssh-ed25519 AAAA…``)."""
        exported: bytes = self.host_key.export_public_key("openssh")
        return exported.decode().strip()

    async def start(self) -> None:
        """Accept SFTP connections."""
        state = self.state
        self._server = await asyncssh.listen(
            sock=self.socket,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Server(state),
            sftp_factory=lambda chan: FactorSftpServer(chan, state),
            allow_scp=False,
        )

    async def stop(self) -> None:
        """Stop accepting and close the connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(_pending):
            task.cancel()
