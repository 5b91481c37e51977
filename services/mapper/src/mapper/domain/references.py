"""Tenant payment-reference policies: stored per tenant, applied to each mapped invoice.

A tenant's policy says which reference its invoices carry (none, a Swedish OCR under the
control level its bank agreed, a Norwegian KID, or its factor's fixed KID layout). When the
source document has no reference, the mapper generates one from the invoice number (and,
for factor layouts, the customer number and the tenant's factoring number): the same
invoice always gets the same reference, so mapping a version again changes nothing. When
the document has one, validation checks it against the policy (validation.py). Pure: the
policies are stored by ``adapters.repository.PgReferencePolicyRepository``.
"""

from __future__ import annotations

from dataclasses import dataclass

from nordflow_references import ReferenceKind, ReferencePolicy, generate
from nordflow_schemas.events import ValidationIssue
from nordflow_schemas.invoice import Invoice

from .validation import REFERENCE_FIELD, reference_rule


@dataclass(frozen=True, kw_only=True)
class TenantReferencePolicy:
    """One tenant's reference policy, with the factoring (client) number a layout needs."""

    tenant_id: str
    policy: ReferencePolicy
    factoring_number: str | None = None

    def __post_init__(self) -> None:
        if self.policy.kind is ReferenceKind.FACTOR_LAYOUT:
            names = {f.name for f in self.policy.layout.fields}
            if "factoring_number" in names and not self.factoring_number:
                raise ValueError(
                    f"the {self.policy.factor_layout!r} KID layout needs the tenant's "
                    "factoring_number (its client number at the factor)"
                )
        elif self.factoring_number is not None:
            raise ValueError("factoring_number is only used with kind factor_layout")

    def describe(self) -> str:
        """A readable one-line summary (what ``mapper references show`` prints)."""
        p = self.policy
        if p.kind is ReferenceKind.NONE:
            return f"{self.tenant_id}: none (no reference is generated)"
        if p.kind is ReferenceKind.SE_OCR:
            parts = [f"control {p.ocr_control.value}"]
            if p.ocr_lengths:
                parts.append("length " + " or ".join(str(n) for n in p.ocr_lengths))
            parts.append("with length digit" if p.uses_length_digit else "no length digit")
            return f"{self.tenant_id}: se_ocr ({', '.join(parts)})"
        if p.kind is ReferenceKind.NO_KID:
            parts = [p.kid_algorithm.value]
            parts.append(f"length {p.kid_length}" if p.kid_length else "variable length")
            parts.append("'-' allowed" if p.kid_allow_dash else "no '-'")
            return f"{self.tenant_id}: no_kid ({', '.join(parts)})"
        return (
            f"{self.tenant_id}: factor_layout ({p.factor_layout}, "
            f"factoring number {self.factoring_number or '-'})"
        )


def apply_reference(
    invoice: Invoice, tenant: TenantReferencePolicy | None
) -> Invoice | ValidationIssue:
    """The invoice with its payment reference generated under the policy, when it had none.

    An invoice that has a reference, or a tenant without a policy (or with kind none), is
    returned unchanged. When the numbers cannot make a reference under the policy (an
    invoice number with letters, too long for the agreed length, a MOD11 result of 10 where
    '-' is not accepted, a layout's customer number missing) the issue says why.
    """
    if tenant is None or tenant.policy.kind is ReferenceKind.NONE:
        return invoice
    if invoice.payment.payment_reference:
        return invoice
    rule = reference_rule(tenant.policy, invoice.seller.address.country_code)
    try:
        reference = generate(
            tenant.policy,
            invoice.number,
            customer_number=invoice.buyer.customer_number,
            factoring_number=tenant.factoring_number,
        )
    except ValueError as exc:
        return ValidationIssue(
            field=REFERENCE_FIELD,
            rule=rule,
            message=f"no payment reference could be generated under the tenant's "
            f"{tenant.policy.kind.value} policy: {exc}",
        )
    if reference is None:
        return invoice
    payment = invoice.payment.model_copy(update={"payment_reference": reference})
    return invoice.model_copy(update={"payment": payment})
