"""mapper's PostgreSQL repositories on the real server: round trips, the created_emitted rule,
and one payment row under racing transactions."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from mapper.adapters.repository import (
    PgInvoiceRepository,
    PgPaymentRepository,
    PgReferencePolicyRepository,
)
from mapper.deps import Deps
from mapper.domain.references import TenantReferencePolicy
from mapper.service import InvoiceStatus, MappedRow, MappedVersion, PaymentKey, SeenPayment
from nordflow_references import KidAlgorithm, OcrControl, ReferenceKind, ReferencePolicy
from nordflow_runtime.testing import ServiceHarness
from nordflow_schemas.events import ValidationIssue
from nordflow_schemas.testing import new_tenant

pytestmark = pytest.mark.integration

ISSUE = ValidationIssue(field="Invoice.Total", rule="NF-NUMBER", message="Total must be a number")


async def test_an_invoice_keeps_its_last_version_and_that_it_was_created(
    harness: ServiceHarness[Deps],
) -> None:
    repo = PgInvoiceRepository(harness.pool)
    tenant = new_tenant()
    assert await repo.lock(["inv_x"]) == {}
    await repo.record([MappedRow("inv_x", tenant, "v1", "1", ())])
    assert await repo.lock(["inv_x"]) == {"inv_x": MappedVersion("v1", InvoiceStatus.CREATED, True)}
    await repo.record(
        [
            MappedRow("inv_x", tenant, "v2", "1", (ISSUE,)),
            MappedRow("inv_y", tenant, "v1", None, (ISSUE,)),
        ]
    )
    assert await repo.lock(["inv_x", "inv_y", "inv_z"]) == {
        "inv_x": MappedVersion("v2", InvoiceStatus.REJECTED, True),  # created once: stays
        "inv_y": MappedVersion("v1", InvoiceStatus.REJECTED, False),
    }
    errors = await harness.pool.fetchval("SELECT errors FROM invoices WHERE invoice_id = 'inv_x'")
    assert [ValidationIssue(**e) for e in json.loads(errors)] == [ISSUE]


async def test_a_payment_is_recorded_once_and_what_follows_is_noted(
    harness: ServiceHarness[Deps],
) -> None:
    repo = PgPaymentRepository(harness.pool)
    key = PaymentKey(new_tenant(), "fortnox", "c1", "12", "inv_1")
    assert await repo.lock(key) is None
    assert await repo.insert(key, version="p1", amount=Decimal("1250.00"), currency="SEK")
    assert not await repo.insert(key, version="p2", amount=Decimal(1), currency="SEK")
    assert await repo.lock(key) == SeenPayment("p1", Decimal("1250.00"), Decimal("1250.00"))
    await repo.update_seen(key, version="p2", amount=Decimal(1))
    assert await repo.lock(key) == SeenPayment("p2", Decimal("1250.00"), Decimal(1))


async def test_racing_transactions_record_one_payment(harness: ServiceHarness[Deps]) -> None:
    """Two consumers on the same payment (e.g. after a rebalance), in two transactions."""
    key = PaymentKey(new_tenant(), "fortnox", "c1", "12", "inv_1")
    async with harness.pool.acquire() as first, harness.pool.acquire() as second:
        first_tx, second_tx = first.transaction(), second.transaction()
        await first_tx.start()
        await second_tx.start()
        assert await PgPaymentRepository(first).insert(
            key, version="p1", amount=Decimal(1), currency="SEK"
        )
        racing = asyncio.create_task(
            PgPaymentRepository(second).insert(key, version="p1", amount=Decimal(1), currency="SEK")
        )
        await asyncio.sleep(0.2)  # the second waits on the payment's primary key
        assert not racing.done()
        await first_tx.commit()
        assert await asyncio.wait_for(racing, 5) is False
        await second_tx.commit()


async def test_reference_policies_round_trip_and_replace(harness: ServiceHarness[Deps]) -> None:
    repo = PgReferencePolicyRepository(harness.pool)
    tenant = new_tenant()
    assert await repo.get(tenant) is None
    policies = [
        TenantReferencePolicy(
            tenant_id=tenant,
            policy=ReferencePolicy(
                kind=ReferenceKind.SE_OCR,
                ocr_control=OcrControl.FIXED_LENGTH,
                ocr_lengths=(12, 20),
                ocr_length_digit=True,
            ),
        ),
        TenantReferencePolicy(
            tenant_id=tenant,
            policy=ReferencePolicy(
                kind=ReferenceKind.NO_KID,
                kid_algorithm=KidAlgorithm.MOD11,
                kid_length=10,
                kid_allow_dash=True,
            ),
        ),
        TenantReferencePolicy(
            tenant_id=tenant,
            policy=ReferencePolicy(kind=ReferenceKind.FACTOR_LAYOUT, factor_layout="dnb"),
            factoring_number="1234",
        ),
    ]
    for policy in policies:
        await repo.save(policy)
        assert await repo.get(tenant) == policy
    assert await repo.get(new_tenant()) is None
