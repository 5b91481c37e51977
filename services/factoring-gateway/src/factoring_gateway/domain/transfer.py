"""What the provider says about a file: received with a receipt, refused with a reason, on
its way (present, no receipt yet) or absent."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FileStatus(StrEnum):
    """A file's state at the provider, as a lookup finds it."""

    ABSENT = "absent"  # never arrived under its final name
    PENDING = "pending"  # arrived, not processed yet (no receipt, no error log)
    RECEIVED = "received"  # processed and acknowledged
    REFUSED = "refused"  # processed and refused


@dataclass(frozen=True)
class FactorAnswer:
    """A lookup's or an upload's outcome for one file."""

    status: FileStatus
    reason: str | None = None  # the provider's reason for a refusal
    receipt: dict[str, Any] = field(default_factory=dict)  # what the receipt says

    @property
    def final(self) -> bool:
        """Received or refused: nothing more will happen to this file."""
        return self.status in (FileStatus.RECEIVED, FileStatus.REFUSED)


@dataclass(frozen=True)
class TransferSecret:
    """An agreement's transfer credential (sealed at rest, never logged or shown)."""

    password: str | None = None
    private_key: str | None = None
    token: str | None = None

    @property
    def present(self) -> bool:
        """Whether any credential is set."""
        return bool(self.password or self.private_key or self.token)


class TransientTransferError(Exception):
    """The provider could not be reached or did not answer in time: try again later."""


class TransferConfigurationError(Exception):
    """The agreement's transfer settings are wrong (login refused, host key mismatch …):
    retrying does not help until an operator fixes the agreement."""
