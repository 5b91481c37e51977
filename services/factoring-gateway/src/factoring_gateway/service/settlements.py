"""Settlements back: the provider's settlement files become ``payment.received`` events,
matched by KID/OCR, else by invoice number; unmatched lines are kept for an operator."""

from __future__ import annotations

import datetime as dt

from nordflow_schemas.events import PaymentReceived

from ..domain.batches import OfferedInvoice
from ..domain.settlements import SettlementFormatError, SettlementLine, parse_settlement
from .agreements import open_secret, schedule_settlements
from .ports import FactorClients, Repositories, SecretSealer, SettlementRecord


async def _match(
    repos: Repositories, agreement_id: str, tenant_id: str, line: SettlementLine
) -> OfferedInvoice | None:
    found = None
    if line.reference:
        found = await repos.invoices.by_reference(agreement_id, line.reference)
    if found is None and line.invoice_number:
        found = await repos.invoices.by_number(tenant_id, line.invoice_number, agreement_id)
    if found is not None and found.invoice.currency != line.currency:
        return None
    return found


async def fetch_settlements(
    repos: Repositories,
    clients: FactorClients,
    sealer: SecretSealer,
    agreement_id: str,
    now: dt.datetime,
    *,
    interval: dt.timedelta | None = None,
) -> list[tuple[PaymentReceived, tuple[str | None, str | None]]]:
    """Read the provider's new settlement files; the payments to announce, each with the
    trace of its invoice's creation. With ``interval`` the next look is scheduled in the
    same transaction."""
    stored = await repos.agreements.get(agreement_id)
    if stored is None:
        return []
    agreement = stored.agreement
    known = await repos.settlements.known_files(agreement_id)
    events: list[tuple[PaymentReceived, tuple[str | None, str | None]]] = []
    async with clients.connect(agreement, open_secret(sealer, stored.sealed_secret)) as client:
        for name in sorted(set(await client.settlement_files()) - known):
            content = await client.settlement(name)
            try:
                lines = parse_settlement(content)
            except SettlementFormatError as exc:
                await repos.settlements.record_file(agreement_id, name, -1, str(exc))
                continue
            if not await repos.settlements.record_file(agreement_id, name, len(lines), None):
                continue
            for line in lines:
                match = await _match(repos, agreement_id, agreement.tenant_id, line)
                recorded = await repos.settlements.record_line(
                    SettlementRecord(
                        agreement_id=agreement_id,
                        file_name=name,
                        line=line,
                        invoice_id=match.invoice_id if match else None,
                        state="matched" if match else "unmatched",
                        recorded_at=now,
                    )
                )
                if recorded and match is not None:
                    payment = PaymentReceived(
                        tenant_id=agreement.tenant_id,
                        invoice_id=match.invoice_id,
                        source=match.invoice.source,
                        payment_id=f"{agreement_id}:{name}:{line.line_no}",
                        amount=line.amount,
                        currency=line.currency,
                        paid_on=line.paid_on,
                        payer=line.payer,
                        reference=line.reference,
                        fee_amount=line.fee,
                        agreement_id=agreement_id,
                        agreement_kind=agreement.kind,
                        flow=match.flow,
                    )
                    events.append((payment, match.trace))
    if interval is not None:
        await schedule_settlements(repos, agreement, now + interval)
    return events
