"""Value types shared by every event: money, identifiers, codes and the frozen base model."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

NAMESPACE = uuid.UUID("6f1c2a52-8f0e-4f7e-9a55-2f8f1c9b7d10")


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    return value


# Money is always Decimal and travels as a JSON string, so no consumer ever parses it as float.
Amount = Annotated[
    Decimal,
    AfterValidator(_finite),
    PlainSerializer(lambda v: format(v, "f"), return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "decimal", "pattern": r"^-?\d+(\.\d+)?$"}),
]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")]
TenantId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Tenant")
]
Timestamp = AwareDatetime


class Frozen(BaseModel):
    """Base for every schema model: immutable, strict about its own fields, tolerant of new ones.

    Consumers ignore unknown fields (``extra="ignore"``) so a producer may add optional fields
    without a new event version.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class SourceSystem(StrEnum):
    """The systems documents are picked up from."""

    FORTNOX = "fortnox"
    VISMA_EACCOUNTING = "visma-eaccounting"
    VISMA_NET = "visma-net"
    SIRVOY = "sirvoy"
    WINNER = "winner"
    ON_PREMISE = "on-premise"
    TRIPLETEX = "tripletex"  # an accounting system documents are booked into (not read yet)


class ConnectionMode(StrEnum):
    """How a tenant's connection flows: test writes nothing downstream, manual on request."""

    TEST = "test"
    MANUAL = "manual"
    AUTOMATIC = "automatic"


class SourceRef(Frozen):
    """Where a document came from, enough to find it again in the source system."""

    system: SourceSystem
    connection_id: str = Field(min_length=1)
    document_id: str = Field(min_length=1, description="The source system's own id")
    document_number: str | None = Field(default=None, description="The number users see")


def canonical_invoice_id(tenant_id: str, system: str, connection_id: str, document_id: str) -> str:
    """Derive the tenant-scoped canonical id of a source document, stable across re-fetches."""
    name = f"{tenant_id}|{system}|{connection_id}|{document_id}"
    return f"inv_{uuid.uuid5(NAMESPACE, name).hex}"
