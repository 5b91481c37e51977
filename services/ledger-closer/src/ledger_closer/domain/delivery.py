"""Pure rules of the delivered check: before an invoice is closed against the factor, it must
have reached its buyer (CloudConnection's "sent to AutoInvoice = false" check)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Delivery(StrEnum):
    """What ledger-closer knows of an invoice's way to its buyer."""

    PENDING = "pending"  # distribution sends it and has not reported yet
    DELIVERED = "delivered"  # invoice.distributed
    FAILED = "failed"  # invoice.delivery_failed (and no later distributed)
    UNCERTAIN = "uncertain"  # invoice.delivery_uncertain: sent, outcome unknown
    BY_ERP = "by_erp"  # its flow excludes distribution: the ERP (or the tenant) sends it


@dataclass(frozen=True)
class Go:
    """Close it."""


@dataclass(frozen=True)
class Wait:
    """Not yet: distribution has not reported."""


@dataclass(frozen=True)
class Hold:
    """Do not close: it did not reach its buyer; show the reason."""

    reason: str


Decision = Go | Wait | Hold


# Marks a closing kept while distribution has not reported the send yet (not held: nothing
# failed); the first report plans it again.
WAITING = "waiting_for_delivery"


def delivered_check(state: Delivery | None, erp_sent: bool | None) -> Decision:
    """Whether a transferred invoice may be closed.

    ``state`` is what distribution's events said (None: ledger-closer never saw the invoice
    created, e.g. one transferred before it kept track: closed as before); ``erp_sent`` is
    the ERP's own send status where the ERP sends the invoice (None: not known). A send whose
    outcome is uncertain is closed: nothing says it did not arrive.
    """
    if state is None or state in (Delivery.DELIVERED, Delivery.UNCERTAIN):
        return Go()
    if state is Delivery.PENDING:
        return Wait()
    if state is Delivery.FAILED:
        return Hold("the invoice could not be sent to its buyer (invoice.delivery_failed)")
    if erp_sent is False:
        return Hold(
            "the invoice should have been sent to its buyer by the ERP, which says it was not sent"
        )
    return Go()
