"""The agreement as the API and the CLI take it (JSON) and show it; secrets are write-only."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from nordflow_references import KidAlgorithm, OcrControl, ReferenceKind, ReferencePolicy
from nordflow_schemas.common import Code, LongText, Name, ShortText
from nordflow_schemas.events import AgreementKind, PayeeAccount
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ..adapters.repositories.agreements import reference_to_json
from ..domain.agreements import (
    DEFAULT_CURRENCIES,
    DEFAULT_WINDOW,
    Agreement,
    Fees,
    FieldProblem,
    InvalidAgreementError,
    Transfer,
    TransferMethod,
)
from ..domain.transfer import TransferSecret
from ..service.ports import StoredAgreement


class TransferIn(BaseModel):
    """How files reach the provider; ``password``, ``private_key`` and ``token`` are sealed
    when stored and never shown (left out: the stored one is kept)."""

    model_config = ConfigDict(extra="forbid")

    method: TransferMethod
    host: Code | None = Field(default=None, max_length=253, description="SFTP host")
    port: int = Field(default=22, ge=1, le=65535, description="SFTP port")
    username: Code | None = Field(default=None, description="SFTP login")
    host_key: ShortText | None = Field(
        default=None, description="The SFTP server's public host key, e.g. 'ssh-ed25519 AAAA…'"
    )
    upload_dir: Code = Field(default="inbox", description="Where files are uploaded (SFTP)")
    receipt_dir: Code = Field(default="outbox", description="Where receipts appear (SFTP)")
    settlement_dir: Code = Field(default="settlements", description="Settlement files (SFTP)")
    base_url: ShortText | None = Field(default=None, description="HTTPS: the factor API's root")
    password: SecretStr | None = Field(
        default=None, max_length=1000, description="SFTP password (write-only)"
    )
    private_key: SecretStr | None = Field(
        default=None,
        max_length=20_000,
        description="SFTP private key in OpenSSH/PEM form (write-only)",
    )
    token: SecretStr | None = Field(
        default=None, max_length=10_000, description="HTTPS API token (write-only)"
    )


class ReferenceIn(BaseModel):
    """The factor's KID/OCR rules an invoice's payment reference must follow."""

    model_config = ConfigDict(extra="forbid")

    kind: ReferenceKind = ReferenceKind.NONE
    ocr_control: OcrControl = OcrControl.HARD
    ocr_lengths: tuple[int, ...] = Field(default=(), max_length=25)
    ocr_length_digit: bool = False
    kid_algorithm: KidAlgorithm = KidAlgorithm.MOD10
    kid_length: int | None = Field(default=None, ge=1, le=25)
    kid_allow_dash: bool = False
    factor_layout: Code | None = Field(default=None, description="e.g. dnb, nordea_finans")


class FeesIn(BaseModel):
    """The provider's fee per invoice: fixed and/or a percentage of the amount."""

    model_config = ConfigDict(extra="forbid")

    per_invoice: Decimal = Field(default=Decimal(0), ge=0, le=10**9)
    percent: Decimal = Field(default=Decimal(0), ge=0, le=100)


class AgreementIn(BaseModel):
    """An agreement to create or replace (``PUT /api/v1/agreements/{id}``)."""

    model_config = ConfigDict(extra="forbid")

    provider: Name = Field(description="The provider's name, e.g. Nordea Finans")
    kind: AgreementKind = AgreementKind.FACTORING
    client_number: Code = Field(description="The tenant's client number at the provider")
    file_format: Code = Field(
        description="sgfinans-fixed-width, cusin-xml or peppol-bis3-zip (GET /formats)"
    )
    transfer: TransferIn
    payee: PayeeAccount | None = Field(
        default=None, description="The provider's account the buyer pays (factoring, financing)"
    )
    assignment_text: dict[Code, LongText] = Field(
        default_factory=dict,
        max_length=10,
        description="The notice of assignment per locale (sv, nb, en)",
    )
    reference: ReferenceIn = Field(default_factory=ReferenceIn)
    recourse: bool | None = Field(default=None, description="Factoring: with recourse or not")
    advance_percent: Decimal | None = Field(
        default=None, ge=0, le=100, description="Financing: 70-90"
    )
    fees: FeesIn = Field(default_factory=FeesIn)
    company_name: Name | None = Field(default=None, description="As the provider knows you")
    window_start: dt.time = DEFAULT_WINDOW[0]
    window_end: dt.time = DEFAULT_WINDOW[1]
    enabled: bool = True
    max_age_days: int = Field(default=30, ge=1, le=3650)
    include_credit_notes: bool = True
    payment_methods: list[Code] | None = Field(
        default=None,
        max_length=100,
        description="Only invoices with one of these payment methods; null: any",
    )
    currencies: list[Code] = Field(
        default_factory=lambda: sorted(DEFAULT_CURRENCIES), max_length=50
    )

    def to_domain(self, tenant_id: str, agreement_id: str) -> tuple[Agreement, TransferSecret]:
        """The domain agreement and its secret; InvalidAgreementError names a bad field
        the domain's own check cannot reach (the KID/OCR rules)."""
        r = self.reference
        try:
            reference = ReferencePolicy(
                kind=r.kind,
                ocr_control=r.ocr_control,
                ocr_lengths=r.ocr_lengths,
                ocr_length_digit=r.ocr_length_digit,
                kid_algorithm=r.kid_algorithm,
                kid_length=r.kid_length,
                kid_allow_dash=r.kid_allow_dash,
                factor_layout=r.factor_layout,
            )
        except ValueError as exc:
            raise InvalidAgreementError([FieldProblem("reference", str(exc))]) from None
        t = self.transfer
        agreement = Agreement(
            agreement_id=agreement_id,
            tenant_id=tenant_id,
            provider=self.provider,
            kind=self.kind,
            client_number=self.client_number,
            file_format=self.file_format,
            transfer=Transfer(
                method=t.method,
                host=t.host,
                port=t.port,
                username=t.username,
                host_key=t.host_key,
                upload_dir=t.upload_dir,
                receipt_dir=t.receipt_dir,
                settlement_dir=t.settlement_dir,
                base_url=t.base_url,
            ),
            payee=self.payee,
            assignment_text=self.assignment_text,
            reference=reference,
            recourse=self.recourse,
            advance_percent=self.advance_percent,
            fees=Fees(self.fees.per_invoice, self.fees.percent),
            company_name=self.company_name,
            window_start=self.window_start,
            window_end=self.window_end,
            enabled=self.enabled,
            max_age_days=self.max_age_days,
            include_credit_notes=self.include_credit_notes,
            payment_methods=(
                frozenset(self.payment_methods) if self.payment_methods is not None else None
            ),
            currencies=frozenset(self.currencies),
        )
        secret = TransferSecret(
            password=t.password.get_secret_value() if t.password else None,
            private_key=t.private_key.get_secret_value() if t.private_key else None,
            token=t.token.get_secret_value() if t.token else None,
        )
        return agreement, secret


class AgreementOut(BaseModel):
    """A stored agreement; its transfer secret only as ``has_secret``."""

    agreement_id: str
    tenant_id: str
    provider: str
    kind: AgreementKind
    enabled: bool
    client_number: str
    company_name: str | None
    file_format: str
    transfer: dict[str, Any]
    has_secret: bool
    payee: PayeeAccount | None
    assignment_text: dict[str, str]
    reference: dict[str, Any]
    recourse: bool | None
    advance_percent: Decimal | None
    fees: dict[str, Decimal]
    window_start: dt.time
    window_end: dt.time
    max_age_days: int
    include_credit_notes: bool
    payment_methods: list[str] | None
    currencies: list[str]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def of(cls, stored: StoredAgreement) -> AgreementOut:
        """The API view of a stored agreement."""
        a = stored.agreement
        t = a.transfer
        transfer: dict[str, Any] = {"method": t.method.value}
        if t.method is TransferMethod.SFTP:
            transfer |= {
                "host": t.host,
                "port": t.port,
                "username": t.username,
                "host_key": t.host_key,
                "upload_dir": t.upload_dir,
                "receipt_dir": t.receipt_dir,
                "settlement_dir": t.settlement_dir,
            }
        else:
            transfer["base_url"] = t.base_url
        return cls(
            agreement_id=a.agreement_id,
            tenant_id=a.tenant_id,
            provider=a.provider,
            kind=a.kind,
            enabled=a.enabled,
            client_number=a.client_number,
            company_name=a.company_name,
            file_format=a.file_format,
            transfer=transfer,
            has_secret=stored.sealed_secret is not None,
            payee=a.payee,
            assignment_text=dict(a.assignment_text),
            reference=reference_to_json(a.reference),
            recourse=a.recourse,
            advance_percent=a.advance_percent,
            fees={"per_invoice": a.fees.per_invoice, "percent": a.fees.percent},
            window_start=a.window_start,
            window_end=a.window_end,
            max_age_days=a.max_age_days,
            include_credit_notes=a.include_credit_notes,
            payment_methods=sorted(a.payment_methods) if a.payment_methods is not None else None,
            currencies=sorted(a.currencies),
            created_at=stored.created_at,
            updated_at=stored.updated_at,
        )
