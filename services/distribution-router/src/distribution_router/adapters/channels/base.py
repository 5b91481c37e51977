"""The contract the delivery adapters implement: `service.ports.Sender`, with the values and
errors of `domain.sending` (re-exported here for the adapters)."""

from __future__ import annotations

from ...domain.sending import (
    Attachment,
    Outgoing,
    PermanentSendError,
    Receipt,
    SendError,
    TransientSendError,
)
from ...service.ports import Sender

__all__ = [
    "Attachment",
    "Outgoing",
    "PermanentSendError",
    "Receipt",
    "SendError",
    "Sender",
    "TransientSendError",
]
