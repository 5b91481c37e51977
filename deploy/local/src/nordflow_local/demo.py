"""`make demo`: sample invoices through all five services, then each invoice's journey."""

from __future__ import annotations

import asyncio
import random
import sys
import time

from nordflow_local import journey
from nordflow_local.samples import create_invoices
from nordflow_local.stack import Stack, StackError

TENANT = "demo"
VALID, INVALID = 9, 1


def _say(line: str) -> None:
    print(line, flush=True)


def _row(number: str, j: journey.Journey | None) -> list[str]:
    if j is None:
        return [number, "-", "-", "waiting", "", "", "", ""]
    created = j.first("invoice.created")
    rejected = j.first("invoice.rejected")
    transferred = j.first("invoice.transferred")
    distributed = j.first("invoice.distributed")
    undeliverable = j.first("invoice.delivery_failed")
    posted = j.first("ledger.entry.posted")
    invoice = (created or {}).get("invoice", {})
    raw = (j.first("erp.document.fetched") or {}).get("payload", {})
    amount = (
        f"{invoice['totals']['payable']} {invoice['currency']}"
        if invoice
        else f"{raw.get('Total', '-')} {raw.get('Currency', '')}".strip()
    )
    return [
        number,
        str(invoice.get("buyer", {}).get("name") or raw.get("CustomerName") or "-")[:22],
        amount,
        "fetched" if j.count("erp.document.fetched") else "-",
        "created" if created else ("REJECTED" if rejected else "-"),
        f"to {transferred['provider']}" if transferred else "-",
        distributed["channel"]
        if distributed
        else (f"FAILED ({undeliverable['channel']})" if undeliverable else "-"),
        f"payment {posted['erp_reference']} ({posted['account']})" if posted else "-",
    ]


def _table(rows: list[list[str]]) -> str:
    head = [
        "invoice",
        "customer",
        "amount",
        "erp-poller",
        "mapper",
        "factoring",
        "distribution",
        "ledger-closer",
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _finished(numbers: list[str]):  # type: ignore[no-untyped-def]
    def check(journeys: dict[str, journey.Journey]) -> bool:
        by_number = {j.number: j for j in journeys.values()}
        ends = ("ledger.entry.posted", "invoice.rejected")
        return all(n in by_number and any(by_number[n].count(t) for t in ends) for n in numbers)

    return check


async def run() -> int:
    """Create invoices in the demo company, wait for their journeys, print them."""
    try:
        env = Stack(progress=None).env()
    except StackError as exc:
        _say(f"{exc}\nStart it with `make up` (or run `make demo`, which does).")
        return 1
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    _say(
        f"Creating {VALID} invoices and {INVALID} invalid one in the Fortnox sandbox "
        f"({env['SANDBOX_FORTNOX_URL']}) ..."
    )
    numbers = await create_invoices(
        env["SANDBOX_FORTNOX_URL"],
        env["SANDBOX_FORTNOX_TOKEN"],
        VALID,
        bad=INVALID,
        seed=random.SystemRandom().randrange(10**6),
        smp_url=env.get("SANDBOX_SMP_URL"),
    )
    _say(f"Created invoices {numbers[0]}..{numbers[-1]}; following them through the services:")
    started = time.monotonic()
    last = ""

    def progress(journeys: dict[str, journey.Journey]) -> None:
        nonlocal last
        mine = {j.number: j for j in journeys.values() if j.number in numbers}
        counts = [sum(1 for j in mine.values() if j.count(t)) for t in journey.STAGES]
        line = (
            f"  {time.monotonic() - started:5.1f}s  fetched {counts[0]}/{len(numbers)}  "
            f"created {counts[1]}  rejected {counts[2]}  transferred {counts[3]}  "
            f"distributed {counts[4]}  posted back {counts[5]}"
        )
        if line.split("s", 1)[1] != last:
            _say(line)
            last = line.split("s", 1)[1]

    try:
        journeys = await journey.wait_for(
            bootstrap, TENANT, _finished(numbers), timeout=300, progress=progress
        )
    except TimeoutError as exc:
        _say(f"Not every invoice finished: {exc}\nSee `make status` and `nordflow-local logs`.")
        return 1
    by_number = {j.number: j for j in journeys.values()}
    _say(f"\nAll {len(numbers)} invoices finished in {time.monotonic() - started:.1f}s:\n")
    _say(_table([_row(n, by_number.get(n)) for n in numbers]))
    for n in numbers:
        rejected = by_number[n].first("invoice.rejected")
        if rejected:
            _say(f"\nInvoice {n} was rejected:")
            for error in rejected["errors"]:
                _say(f"  {error['field']}: {error['message']} [{error['rule']}]")
    _say(
        "\nWhere to look further:\n"
        "  make status                          what runs, with URLs and readiness\n"
        "  .local/env                           broker, database, sandbox and service URLs\n"
        "  uv run nordflow-local logs mapper    a service's JSON log (tenant, invoice, trace)\n"
        f"  {env.get('MAPPER_URL', '<MAPPER_URL>')}/metrics   Prometheus metrics\n"
        "  shared/schemas/generated/asyncapi.yaml   every topic and event schema\n"
        "  Create an invoice by hand in the sandbox (see README); it flows on its own.\n"
        "  make down                            stop everything"
    )
    return 0


def main() -> int:
    """Entry point of ``python -m nordflow_local.demo``."""
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
