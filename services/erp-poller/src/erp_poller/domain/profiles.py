"""The tenant's profile on every document erp-poller emits, and the sellers connections carried
before profiles existed.

erp-poller owns the tenants' profiles (legal name, country, time zone, locale, accounting
currency, the seller party and bank accounts): every document it emits carries the
tenant's profile under ``related["tenant"]`` (``RELATED_TENANT``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nordflow_schemas.events import RELATED_TENANT
from nordflow_schemas.invoice import Address, Party
from nordflow_schemas.tenant import (
    COUNTRY_CURRENCIES,
    COUNTRY_ZONES,
    AccountScheme,
    BankAccount,
    Locale,
    TenantProfile,
)

COUNTRY_LOCALES = {"SE": Locale.SV, "NO": Locale.NB}
"""A country's default locale; any other country's is English."""

SET_THE_PROFILE = (
    "set the tenant profile first (PUT /api/v1/profile, or `erp-poller tenants profile set "
    "TENANT --file profile.json`); nothing is fetched or emitted until then, and nothing is "
    "lost: polls resume from where they were, pushes wait"
)


class ProfileMissingError(Exception):
    """The tenant has no profile yet, so its documents cannot be emitted."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id!r} has no profile: {SET_THE_PROFILE}")
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class StoredProfile:
    """A tenant's profile as erp-poller keeps it: each change is a new revision."""

    tenant_id: str
    revision: int
    updated_at: dt.datetime
    profile: TenantProfile


@dataclass(frozen=True)
class LegacySeller:
    """The seller a tenant's first connection carried before profiles existed (migration 008),
    waiting to become the tenant's profile."""

    tenant_id: str
    connection_id: str
    seller: dict[str, Any]


def tenant_related(profile: TenantProfile) -> dict[str, dict[str, Any]]:
    """What every emitted document carries of its tenant, besides the source's own records."""
    return {RELATED_TENANT: profile.model_dump(mode="json")}


def _text(value: Any) -> str | None:
    return None if value is None or not str(value).strip() else str(value).strip()


def profile_from_seller(seller: Mapping[str, Any]) -> TenantProfile:
    """The profile a connection's seller (as stored before migration 008) stands for.

    The country is the seller's ``country_code`` (SE if it has none); the time zone, locale
    and (unless the seller named one) currency follow from it; a ``bankgiro`` becomes a
    ``SE:BANKGIRO`` bank account. Raises ``ValueError`` (pydantic's, naming the field) when
    the seller cannot be one.
    """
    country = (_text(seller.get("country_code")) or "SE").upper()
    name = _text(seller.get("name")) or ""
    address1 = _text(seller.get("address1"))
    bankgiro = _text(seller.get("bankgiro"))
    return TenantProfile(
        legal_name=name,
        country=country,
        time_zone=COUNTRY_ZONES.get(country, "UTC"),
        locale=COUNTRY_LOCALES.get(country, Locale.EN),
        accounting_currency=(
            _text(seller.get("currency")) or COUNTRY_CURRENCIES.get(country, "EUR")
        ).upper(),
        seller=Party(
            name=name,
            company_id=_text(seller.get("organisation_number")),
            vat_id=_text(seller.get("vat_number")),
            address=Address(
                lines=(address1,) if address1 else (),
                postal_code=_text(seller.get("zip_code")),
                city=_text(seller.get("city")),
                country_code=country,
            ),
            email=_text(seller.get("email")),
        ),
        bank_accounts=(
            (BankAccount(scheme=AccountScheme.BANKGIRO, account_id=bankgiro),) if bankgiro else ()
        ),
    )
