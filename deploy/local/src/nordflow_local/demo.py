"""`make demo`: invoices from four source systems through all five services, out by four
channels, then each invoice's journey and what each delivery partner received."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from nordflow_local import deliveries, journey, panel, sources
from nordflow_local.provision import provision_sources
from nordflow_local.samples import EXTRA_PEPPOL_GLNS, create_invoices, register_peppol_participant
from nordflow_local.stack import Stack, StackError

TENANT = "demo"  # Fortnox, with a factoring agreement and the ledger write-back
FORTNOX_VALID, FORTNOX_INVALID = 8, 1
PER_SOURCE = 3
ENDS = ("invoice.rejected", "invoice.distributed", "invoice.delivery_failed")


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Expected:
    """A document the demo created in a source system, and when its journey is finished."""

    system: str
    document_id: str
    ends: tuple[str, ...] = ENDS


def _find(journeys: dict[str, journey.Journey], doc: Expected) -> journey.Journey | None:
    for j in journeys.values():
        fetched = j.first("erp.document.fetched")
        if fetched is None:
            continue
        source = fetched["source"]
        if source["system"] == doc.system and source["document_id"] == doc.document_id:
            return j
    return None


def _finished(docs: list[Expected]) -> Callable[[dict[str, journey.Journey]], bool]:
    def check(journeys: dict[str, journey.Journey]) -> bool:
        found = [(_find(journeys, d), d) for d in docs]
        return all(j is not None and any(j.count(t) for t in d.ends) for j, d in found)

    return check


def _row(doc: Expected, j: journey.Journey | None, partner: dict[str, list[str]]) -> list[str]:
    if j is None:
        return [doc.system, doc.document_id[:12], "-", "-", "waiting", "", "", ""]
    fetched = j.first("erp.document.fetched") or {}
    created = j.first("invoice.created")
    rejected = j.first("invoice.rejected")
    transferred = j.first("invoice.transferred")
    distributed = j.first("invoice.distributed")
    failed = j.first("invoice.delivery_failed")
    posted = j.first("ledger.entry.posted")
    paid = j.first("payment.received")
    invoice = (created or {}).get("invoice", {})
    payable = Decimal(invoice["totals"]["payable"]) if invoice else None
    amount = f"{payable:.2f} {invoice['currency']}" if payable is not None else "-"
    if distributed:
        sent = f"{distributed['channel']} ({len(partner.get(j.invoice_id, []))}x at partner)"
    else:
        sent = f"FAILED ({failed['channel']})" if failed else "-"
    if posted:
        closing = f"payment {posted['erp_reference']} ({posted['account']})"
    else:
        closing = f"paid {paid['amount']} at source" if paid else "-"
    return [
        doc.system,
        str(fetched.get("source", {}).get("document_number") or doc.document_id)[:12],
        str(invoice.get("buyer", {}).get("name") or "-")[:22],
        amount,
        "created" if created else ("REJECTED" if rejected else "-"),
        f"to {transferred['provider']}" if transferred else "-",
        sent,
        closing,
    ]


def _table(rows: list[list[str]]) -> str:
    head = ["source", "document", "customer", "amount", "mapper", "factoring", "sent", "books"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def _create_everything(env: dict[str, str]) -> tuple[list[Expected], list[str]]:
    """Recipients in the SMP and the bank, then documents in all four sandboxes."""
    seed = random.SystemRandom().randrange(10**6)
    for gln in EXTRA_PEPPOL_GLNS:
        await register_peppol_participant(env["SANDBOX_SMP_URL"], f"0088:{gln}")
    _say(f"Fortnox ({env['SANDBOX_FORTNOX_URL']}): {FORTNOX_VALID} invoices and an invalid one")
    numbers = await create_invoices(
        env["SANDBOX_FORTNOX_URL"],
        env["SANDBOX_FORTNOX_TOKEN"],
        FORTNOX_VALID,
        bad=FORTNOX_INVALID,
        seed=seed,
        smp_url=env["SANDBOX_SMP_URL"],
        bank_url=env["SANDBOX_B2C_BANK_URL"],
    )
    posted = ("invoice.rejected", "ledger.entry.posted", "invoice.delivery_failed")
    docs = [Expected("fortnox", n, posted) for n in numbers]
    connected = await provision_sources(env, TENANT)
    tenants = [TENANT, *(c.tenant_id for c in connected)]
    for c in connected:
        if c.system == sources.VISMA_EACCOUNTING:
            _say(f"Visma eAccounting ({c.url}): {PER_SOURCE} invoices and an invalid one")
            ids = await sources.create_visma_eaccounting_invoices(
                c.url, dict(c.writer), PER_SOURCE, bad=1, seed=seed
            )
        elif c.system == sources.VISMA_NET:
            _say(f"Visma.net ({c.url}): {PER_SOURCE} invoices with KID")
            ids = await sources.create_visma_net_invoices(
                c.url, c.writer["token"], c.writer["company_id"], PER_SOURCE, seed=seed
            )
        else:
            _say(f"Sirvoy ({c.url}): {PER_SOURCE} hotel invoices, a payment, a credit invoice")
            ids = await sources.create_sirvoy_invoices(
                c.url, c.writer["token"], PER_SOURCE, seed=seed
            )
        docs += [Expected(c.system, i) for i in ids]
    return docs, tenants


async def run() -> int:
    """Create documents in every source sandbox, wait for their journeys, print them."""
    try:
        env = Stack(progress=None).env()
    except StackError as exc:
        _say(f"{exc}\nStart it with `make up` (or run `make demo`, which does).")
        return 1
    docs, tenants = await _create_everything(env)
    _say(f"\nFollowing {len(docs)} documents of tenants {', '.join(tenants)}:")
    started = time.monotonic()
    last = ""

    def progress(journeys: dict[str, journey.Journey]) -> None:
        nonlocal last
        mine = [j for j in (_find(journeys, d) for d in docs) if j is not None]
        stages = ("invoice.created", "invoice.rejected", "invoice.distributed")
        counts = {t: sum(1 for j in mine if j.count(t)) for t in stages}
        line = (
            f"fetched {len(mine)}/{len(docs)}  created {counts['invoice.created']}  "
            f"rejected {counts['invoice.rejected']}  sent {counts['invoice.distributed']}"
        )
        if line != last:
            _say(f"  {time.monotonic() - started:5.1f}s  {line}")
            last = line

    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    try:
        journeys = await journey.wait_for(
            bootstrap, tenants, _finished(docs), timeout=300, progress=progress
        )
    except TimeoutError as exc:
        _say(f"Not every invoice finished: {exc}\nSee `make status` and `nordflow-local logs`.")
        return 1
    at_partner = await deliveries.received(env)
    partner = {k: [r.reference for r in v] for k, v in at_partner.items()}
    found = [(d, _find(journeys, d)) for d in docs]
    _say(f"\nAll {len(docs)} documents finished in {time.monotonic() - started:.1f}s:\n")
    _say(_table([_row(d, j, partner) for d, j in found]))
    channels = Counter(
        (j.first("invoice.distributed") or {}).get("channel") for _, j in found if j is not None
    )
    channels.pop(None, None)
    _say("\nSent by channel: " + ", ".join(f"{c} {n}" for c, n in sorted(channels.items())))
    for doc, j in found:
        rejected = j.first("invoice.rejected") if j else None
        if rejected:
            _say(f"\n{doc.system} document {doc.document_id} was rejected:")
            for error in rejected["errors"]:
                _say(f"  {error['field']}: {error['message']} [{error['rule']}]")
    _say(
        "\nWhere to look further:\n"
        "  make status                          what runs, with URLs and readiness\n"
        "  .local/env                           broker, database, sandbox and service URLs\n"
        "  uv run nordflow-local logs mapper    a service's JSON log (tenant, invoice, trace)\n"
        f"  {env.get('MAPPER_URL', '<MAPPER_URL>')}/metrics   Prometheus metrics\n"
        f"  {env.get('SANDBOX_SMTP_URL', '<SANDBOX_SMTP_URL>')}/sandbox/messages   "
        "the e-mails sent\n"
        "  shared/schemas/generated/asyncapi.yaml   every topic and event schema\n"
        "  Create an invoice by hand in the sandbox (see README); it flows on its own.\n"
        "  make down                            stop everything"
    )
    _say("\n" + "\n".join(panel.sign_in_lines(Stack(progress=None).env(), tenants)))
    return 0


def main() -> int:
    """Entry point of ``python -m nordflow_local.demo``."""
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
