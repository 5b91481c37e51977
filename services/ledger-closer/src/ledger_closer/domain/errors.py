"""The domain's errors: what can never be written (the job fails) and what must wait."""

from __future__ import annotations


class UnpostableError(Exception):
    """The entry or document can never be written as it is (the job fails; retrying cannot
    help)."""


class EntryRefusedError(UnpostableError):
    """The ERP refused the write for good (a 4xx other than 408/429)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"ERP refused the entry: {detail}")


class AuthorizationRefusedError(UnpostableError):
    """The ERP refused ledger-closer's authorization (the grant is spent, expired or revoked)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"ERP authorization refused: {detail} (authorize ledger-closer again and "
            "re-add the connection with the new refresh token; then retry the job)"
        )


class WriteConnectionMissingError(LookupError):
    """No write connection for the connection named yet (retried: one may be added)."""

    def __init__(self, tenant_id: str, connection_id: str) -> None:
        super().__init__(f"no ERP write connection {connection_id!r} for tenant {tenant_id}")


class ConnectionOfAnotherTenantError(PermissionError):
    """A write connection id that is already another tenant's."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id!r} belongs to another tenant")


class NotBookedYetError(LookupError):
    """A payment or credit of a document not booked in the target yet (retried: its booking
    is on its way, events of two topics arrive in no fixed order)."""

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice {invoice_id} is not booked in the target system yet")


class BookingSkippedError(Exception):
    """A payment of a document whose booking was deliberately skipped (a cash receipt paid
    through Stripe): there is nothing in the target to book it on, and there never will be."""

    def __init__(self, invoice_id: str, reason: str) -> None:
        super().__init__(f"invoice {invoice_id} was not booked: {reason}")
        self.reason = reason
