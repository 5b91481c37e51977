"""Who sees what: a tenant sees only its own data; an operator sees every tenant's."""

from __future__ import annotations

from dataclasses import dataclass


class ForbiddenError(Exception):
    """The principal may not do this; the message names what (and the field, if one)."""


@dataclass(frozen=True)
class Principal:
    """The holder of an API token: one tenant's, or an operator's (every tenant)."""

    name: str
    tenant_id: str | None
    operator: bool
    read_only: bool = False  # a token of scope `read`: sees, never acts

    def scope(self, requested: str | None) -> str | None:
        """The tenant a query is limited to: a tenant's own; an operator's choice (None: all).

        A tenant asking for another tenant is refused, not quietly given its own data.
        """
        if self.operator:
            return requested
        if requested is not None and requested != self.tenant_id:
            raise ForbiddenError("tenant: a tenant's token sees only its own tenant")
        return self.tenant_id

    def sees(self, tenant_id: str) -> bool:
        """Whether a row of ``tenant_id`` may be shown."""
        return self.operator or tenant_id == self.tenant_id

    def check_may_act(self) -> None:
        """A token of scope ``read`` may look, not ask a service to do anything."""
        if self.read_only:
            raise ForbiddenError("this token's scope is `read`: it may only read")

    @property
    def may_replay(self) -> bool:
        """Replaying a dead letter sends a record through a service again: operators only."""
        return self.operator
