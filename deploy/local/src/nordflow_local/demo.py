"""`make demo`: documents from five source systems through the services: invoices out by four
channels, a Sirvoy hotel's invoices, payment and credit booked in Fortnox, a Winner order
split 20/80 into Tripletex; then each document's journey and what the books hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from nordflow_local import deliveries, journey, panel, sources
from nordflow_local.factoring import client_number_of, factor_files
from nordflow_local.provision import SourceConnection, provision_sources
from nordflow_local.samples import EXTRA_PEPPOL_GLNS, create_invoices, register_peppol_participant
from nordflow_local.stack import Stack, StackError

TENANT = "demo"  # Fortnox, with a factoring agreement and the ledger write-back
FORTNOX_VALID, FORTNOX_INVALID = 8, 1
PER_SOURCE = 3
ENDS = ("invoice.rejected", "invoice.distributed", "invoice.delivery_failed")
# A document whose flow books it ends booked (or its booking skipped, or rejected).
BOOKED = ("invoice.rejected", "invoice.booked", "invoice.booking_skipped")


def _say(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Expected:
    """A document the demo created in a source system, and when its journey is finished."""

    system: str
    document_id: str
    ends: tuple[str, ...] = ENDS
    needs: tuple[tuple[str, int], ...] = ()  # and this many events on each of these topics


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
        return all(
            j is not None
            and any(j.count(t) for t in d.ends)
            and all(j.count(t) >= n for t, n in d.needs)
            for j, d in found
        )

    return check


def _books(j: journey.Journey) -> str:
    """What was written into the books: the booking(s) and closing or payment entry."""
    booked = sorted(j.events.get("invoice.booked", {}).values(), key=lambda b: str(b["booked_at"]))
    parts = [f"{b['action']} {b['erp_reference']} in {b['target']['system']}" for b in booked]
    skipped = j.first("invoice.booking_skipped")
    if skipped:
        parts.append("skipped: " + str(skipped["reason"]).split(";")[0])
    held = j.first("invoice.closing_held")
    if held:
        parts.append("closing HELD")
    posted = j.first("ledger.entry.posted")
    paid = j.first("payment.received")
    if posted:
        parts.append(f"{posted['entry_kind']} {posted['erp_reference']} ({posted['account']})")
    elif paid and not booked:
        parts.append(f"paid {paid['amount']} at source")
    return "; ".join(parts) or "-"


def _row(doc: Expected, j: journey.Journey | None, partner: dict[str, list[str]]) -> list[str]:
    if j is None:
        return [doc.system, doc.document_id[:12], "-", "-", "waiting", "", "", ""]
    fetched = j.first("erp.document.fetched") or {}
    created = j.first("invoice.created")
    rejected = j.first("invoice.rejected")
    transferred = j.first("invoice.transferred")
    distributed = j.first("invoice.distributed")
    failed = j.first("invoice.delivery_failed")
    invoice = (created or {}).get("invoice", {})
    payable = Decimal(invoice["totals"]["payable"]) if invoice else None
    amount = f"{payable:.2f} {invoice['currency']}" if payable is not None else "-"
    if distributed:
        sent = f"{distributed['channel']} ({len(partner.get(j.invoice_id, []))}x at partner)"
    elif failed:
        sent = f"FAILED ({failed['channel']})"
    elif created and not created.get("flow", {}).get("distribute", True):
        sent = "not sent (flow)"
    else:
        sent = "-"
    return [
        doc.system,
        str(fetched.get("source", {}).get("document_number") or doc.document_id)[:12],
        str(invoice.get("buyer", {}).get("name") or "-")[:22],
        amount,
        "created" if created else ("REJECTED" if rejected else "-"),
        (
            f"serial {transferred['file_serial']} to {transferred['provider']}"
            if transferred
            else "-"
        ),
        sent,
        _books(j),
    ]


def _table(rows: list[list[str]]) -> str:
    head = ["source", "document", "customer", "amount", "mapper", "factoring", "sent", "books"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def _create_everything(
    env: dict[str, str],
) -> tuple[list[Expected], list[str], list[SourceConnection]]:
    """Recipients in the SMP and the bank, then documents in every source."""
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
        docs += await _source_documents(env, c, seed)
    return docs, tenants, connected


async def _source_documents(env: dict[str, str], c: SourceConnection, seed: int) -> list[Expected]:
    """The sample documents of one source connection, and when each is finished."""
    if c.system == sources.VISMA_EACCOUNTING:
        _say(f"Visma eAccounting ({c.url}): {PER_SOURCE} invoices and an invalid one")
        ids = await sources.create_visma_eaccounting_invoices(
            c.url, dict(c.writer), PER_SOURCE, bad=1, seed=seed
        )
        return [Expected(c.system, i) for i in ids]
    if c.system == sources.VISMA_NET:
        _say(f"Visma.net ({c.url}): {PER_SOURCE} invoices with KID")
        ids = await sources.create_visma_net_invoices(
            c.url, c.writer["token"], c.writer["company_id"], PER_SOURCE, seed=seed
        )
        return [Expected(c.system, i) for i in ids]
    if c.system == sources.SIRVOY:
        _say(
            f"Sirvoy ({c.url}): {PER_SOURCE} hotel invoices, a payment, a credit invoice and a "
            "cash receipt paid by card through Stripe, booked into the hotel's Fortnox"
        )
        ids = await sources.create_sirvoy_invoices(c.url, c.writer["token"], PER_SOURCE, seed=seed)
        docs = [Expected(c.system, i, BOOKED) for i in ids]
        # The last invoice is paid: its payment is booked in Fortnox too.
        docs[PER_SOURCE - 1] = Expected(
            c.system, ids[PER_SOURCE - 1], BOOKED, (("ledger.entry.posted", 1),)
        )
        receipt = await sources.create_sirvoy_cash_receipt(c.url, c.writer["token"])
        return [*docs, Expected(c.system, receipt, BOOKED)]
    today = dt.datetime.now(ZoneInfo(sources.PROFILES[sources.WINNER].time_zone)).date()
    quote = f"T{seed:06d}"
    _say(
        f"Winner: quote {quote} accepted, pushed to erp-poller; its payment calendar asks 20 % "
        "now and 80 % on delivery: two orders in Tripletex, the first invoiced"
    )
    ids = await sources.push_winner_order(
        c.writer["erp_poller_url"],
        c.connection_id,
        c.writer["signing_secret"],
        sources.winner_order(quote, today),
    )
    # The first part is due today: its order is booked, then invoiced.
    first = Expected(c.system, ids[0], BOOKED, (("invoice.booked", 2),))
    return [first, *(Expected(c.system, i, BOOKED) for i in ids[1:])]


def _decided(docs: list[Expected]) -> Callable[[dict[str, journey.Journey]], bool]:
    """Every Fortnox document of the demo tenant is decided (or rejected) by now."""

    def check(journeys: dict[str, journey.Journey]) -> bool:
        found = [_find(journeys, d) for d in docs if d.system == "fortnox"]
        return all(
            j is not None and (j.count("invoice.factoring_decided") or j.count("invoice.rejected"))
            for j in found
        )

    return check


def _run_the_window(env: dict[str, str]) -> None:
    """`factoring-gateway transfers run --tenant demo`: the window, on demand."""
    _say("\nThe factoring window, run on demand (factoring-gateway transfers run --tenant demo):")
    script = Path(sys.executable).parent / "factoring-gateway"
    result = subprocess.run(
        [str(script), "transfers", "run", "--tenant", TENANT, "--timeout", "120"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    for line in (result.stdout + result.stderr).splitlines():
        _say(f"  {line}")
    mine = [f for f in factor_files(env) if f"_{client_number_of(TENANT)}_" in f["name"]]
    _say(f"\nWhat the factor received ({env['SANDBOX_FACTOR_URL']}/sandbox/files):")
    for f in mine:
        receipt = ", ".join(f"{k} {v}" for k, v in f["receipt"].items())
        _say(
            f"  {f['name']}  serial {f['serial']}  {f['bytes']} bytes by {f['via']}  "
            f"{f['status']}: {receipt}"
        )


async def run() -> int:
    """Create documents in every source sandbox, wait for their journeys, print them."""
    try:
        env = Stack(progress=None).env()
    except StackError as exc:
        _say(f"{exc}\nStart it with `make up` (or run `make demo`, which does).")
        return 1
    docs, tenants, connected = await _create_everything(env)
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
        await journey.wait_for(bootstrap, tenants, _decided(docs), timeout=180, progress=progress)
    except TimeoutError as exc:
        _say(f"Not every invoice was decided: {exc}\nSee `make status` and `nordflow-local logs`.")
        return 1
    await asyncio.to_thread(_run_the_window, env)
    _say("")
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
    for c in connected:
        if c.books is not None:
            _say("\n" + "\n".join(await _books_lines(c)))
    _say(
        "\nWhere to look further:\n"
        "  make status                          what runs, with URLs and readiness\n"
        "  .local/env                           broker, database, sandbox and service URLs\n"
        "  uv run nordflow-local logs mapper    a service's JSON log (tenant, invoice, trace)\n"
        f"  {env.get('MAPPER_URL', '<MAPPER_URL>')}/metrics   Prometheus metrics\n"
        f"  {env.get('SANDBOX_SMTP_URL', '<SANDBOX_SMTP_URL>')}/sandbox/messages   "
        "the e-mails sent\n"
        "  shared/schemas/generated/asyncapi.yaml   every topic and event schema\n"
        "  uv run factoring-gateway transfers list --tenant demo   the batches, files, receipts\n"
        f"  {env.get('SANDBOX_FACTOR_URL', '<SANDBOX_FACTOR_URL>')}/sandbox/files   "
        "what the factor received\n"
        "  Create an invoice by hand in the sandbox (see README); it flows up to the factoring\n"
        "  decision on its own, and to the factor in the window or with `transfers run`.\n"
        "  make down                            stop everything"
    )
    _say("\n" + "\n".join(panel.sign_in_lines(Stack(progress=None).env(), tenants)))
    return 0


async def _books_lines(c: SourceConnection) -> list[str]:
    """What the tenant's accounting system holds after the demo (read from its sandbox)."""
    books = c.books
    assert books is not None
    if books.system == "fortnox":
        held = await sources.fortnox_books(books.url, books.reader["token"])
        lines = [f"Fortnox of {c.tenant_id} ({books.url}):"]
        lines += [f"  customer {r['CustomerNumber']}  {r['Name']}" for r in held["customers"]]
        for r in held["invoices"]:
            kind = "credit invoice" if Decimal(str(r["Total"])) < 0 else "invoice"
            state = "cancelled" if r["Cancelled"] else ("booked" if r["Booked"] else "not booked")
            lines.append(
                f"  {kind} {r['DocumentNumber']}  {r['CustomerName']}  {r['Total']} {r['Currency']}"
                f"  {state}  ours {str(r['ExternalInvoiceReference1'])[:13]}…"
            )
        lines += [
            f"  payment {r['Number']}  invoice {r['InvoiceNumber']}  {r['Amount']}"
            f"  {'booked' if r['Booked'] else 'not booked'}"
            for r in held["invoicepayments"]
        ]
        return lines
    held = await sources.tripletex_books(books.url, books.reader["employee_token"])
    lines = [f"Tripletex of {c.tenant_id} ({books.url}):"]
    lines += [f"  customer {r['customerNumber']}  {r['name']}" for r in held["customers"]]
    lines += [f"  project {r['number']}  {r['name']}" for r in held["projects"]]
    lines += [f"  product {r['number']}  {r['name']}" for r in held["products"]]
    for r in held["orders"]:
        net = sum(Decimal(str(line["amountExcludingVatCurrency"])) for line in r["orderLines"])
        lines.append(
            f"  order {r['id']}  {r['invoiceComment']}  {net:.2f} NOK excl. VAT"
            f"  delivery {r['deliveryDate']}"
        )
    lines += [
        f"  invoice {r['invoiceNumber']}  {r['amount']} NOK  due {r['invoiceDueDate']}"
        for r in held["invoices"]
    ]
    return lines


def main() -> int:
    """Entry point of ``python -m nordflow_local.demo``."""
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
