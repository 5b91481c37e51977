"""Benchmark: invoices rendered as PEPPOL BIS 3.0 and PDF, and validated, per second and per core.

Invoices come from the mapper (a Fortnox payload mapped to the canonical model), so the
numbers cover the documents the pipeline really produces. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from mapper.service import map_document
from mapper.testing import related_tenant, seller_profile
from nordflow_documents.pdf import render_pdf
from nordflow_documents.registry import default_registry
from nordflow_documents.validation import shared_validator
from nordflow_schemas.common import SourceRef, SourceSystem
from nordflow_schemas.events import DocumentKind, ErpDocumentFetched
from nordflow_schemas.invoice import Invoice

SELLER = seller_profile(
    "SE",
    name="Bench AB",
    company_id="556036-0793",
    vat_id="SE556036079301",
    street="Gatan 1",
    postal_code="11122",
    city="Stockholm",
    bankgiro="5050-1055",
)
CUSTOMER = {"Name": "Kund AB", "Type": "COMPANY", "VATType": "SEVAT", "GLN": "7300010000001"}
RATES = (25, 12, 6)


def sample(i: int, rng: random.Random) -> Invoice:
    rows, net, vat = [], 0, 0.0
    for n in range(rng.randint(1, 20)):
        qty, price, rate = rng.randint(1, 9), rng.randint(10, 2000), RATES[n % 3]
        rows.append(
            {
                "Description": f"Artikel {n}",
                "DeliveredQuantity": qty,
                "Price": price,
                "VAT": rate,
                "Total": qty * price,
            }
        )
        net += qty * price
        vat += qty * price * rate / 100
    total = round(net + vat)
    number = str(1000 + i)
    doc = {
        "DocumentNumber": number,
        "CustomerNumber": "7",
        "CustomerName": "Kund AB",
        "InvoiceDate": "2026-11-20",
        "DueDate": "2026-12-20",
        "Currency": "SEK",
        "OCR": "",
        "YourReference": "Inköp",
        "Address1": "Vägen 2",
        "City": "Uppsala",
        "ZipCode": "75320",
        "InvoiceRows": rows,
        "Net": net,
        "TotalVAT": f"{vat:.2f}",
        "RoundOff": f"{total - net - round(vat, 2):.2f}",
        "Total": total,
    }
    event = ErpDocumentFetched(
        tenant_id="bench",
        invoice_id=f"inv_{i}",
        source=SourceRef(
            system=SourceSystem.FORTNOX,
            connection_id="c",
            document_id=number,
            document_number=number,
        ),
        kind=DocumentKind.INVOICE,
        version="v",
        fetched_at=dt.datetime.now(dt.UTC),
        payload=doc,
        related={"customer": CUSTOMER, **related_tenant(SELLER)},
    )
    result = map_document(event)
    if not isinstance(result, Invoice):
        raise SystemExit(f"sample {i} did not map: {result}")
    return result


@dataclass
class Timed:
    """One process's loop: wall seconds per step and invoice, CPU seconds per step."""

    timings: dict[str, list[float]]
    cpu: dict[str, float]
    fatal: int
    compile_seconds: float
    wall: float


def timed(invoices: list[Invoice]) -> Timed:
    """Render UBL, validate it and render the PDF of each invoice, timed on the wall clock
    and on the process's CPU clock (which other load on the machine does not inflate)."""
    renderer = default_registry().get("peppol-bis-billing-3")
    started = time.perf_counter()
    validator = shared_validator()
    validator.validate(renderer.render(invoices[0]))
    compile_s = time.perf_counter() - started

    timings: dict[str, list[float]] = {"render UBL": [], "validate UBL": [], "render PDF": []}
    cpu = {"UBL + validation": 0.0, "PDF": 0.0}
    fatal = 0
    wall = time.perf_counter()
    for invoice in invoices:
        c0, t0 = time.process_time(), time.perf_counter()
        ubl = renderer.render(invoice)
        t1 = time.perf_counter()
        report = validator.validate(ubl)
        c2, t2 = time.process_time(), time.perf_counter()
        render_pdf(invoice)
        c3, t3 = time.process_time(), time.perf_counter()
        timings["render UBL"].append(t1 - t0)
        timings["validate UBL"].append(t2 - t1)
        timings["render PDF"].append(t3 - t2)
        cpu["UBL + validation"] += c2 - c0
        cpu["PDF"] += c3 - c2
        fatal += len(report.fatal)
    return Timed(timings, cpu, fatal, compile_s, time.perf_counter() - wall)


def _worker(args: tuple[int, int, int]) -> Timed:
    first, count, seed = args
    rng = random.Random(seed)
    return timed([sample(first + i, rng) for i in range(count)])


def main() -> None:
    """Render and validate ``--documents`` invoices on one thread, then on one process per
    core; print rates per stage, per core, and per CPU-second."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=300, help="per process")
    parser.add_argument(
        "--processes", type=int, default=os.cpu_count() or 1, help="default: one per core"
    )
    args = parser.parse_args()
    rng = random.Random(42)
    invoices = [sample(i, rng) for i in range(args.documents)]
    one = timed(invoices)

    print(
        f"\ndocuments: {args.documents} invoices of 1-20 lines, {os.cpu_count()} cores "
        f"({load_text()}); stylesheets compiled in {one.compile_seconds:.2f} s"
    )
    print(f"  one process:  {'stage':<24}{'per second':>12}{'p50 ms':>10}{'p95 ms':>10}")
    for stage, values in one.timings.items():
        ordered = sorted(values)
        print(
            f"                {stage:<24}{len(values) / sum(values):>12,.0f}"
            f"{statistics.median(ordered) * 1000:>10.2f}"
            f"{ordered[int(len(ordered) * 0.95) - 1] * 1000:>10.2f}"
        )
    both = [
        a + b for a, b in zip(one.timings["render UBL"], one.timings["validate UBL"], strict=True)
    ]
    print(f"                {'UBL + validation':<24}{len(both) / sum(both):>12,.0f}")
    print(f"                {'UBL + validation + PDF':<24}{args.documents / one.wall:>12,.0f}")

    n = max(1, args.processes)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=n) as pool:
        jobs = [(10_000 * (k + 1), args.documents, 42 + k) for k in range(n)]
        results = list(pool.map(_worker, jobs))
    elapsed = time.perf_counter() - started
    # Each process times its own loop (after compiling the rules); per core: the documents
    # of all processes over the longest loop, divided by the cores.
    longest = max(r.wall for r in results)
    ubl_validate = max(
        sum(r.timings["render UBL"]) + sum(r.timings["validate UBL"]) for r in results
    )
    total = n * args.documents
    cores = os.cpu_count() or 1
    cpu_ubl = sum(r.cpu["UBL + validation"] for r in results)
    cpu_all = cpu_ubl + sum(r.cpu["PDF"] for r in results)
    print(
        f"  {n} processes at once ({elapsed:.1f} s with start-up and compiling): "
        f"UBL + validation {total / ubl_validate:,.0f}/s = {total / ubl_validate / cores:,.0f} "
        f"per second per core; UBL + validation + PDF {total / longest:,.0f}/s = "
        f"{total / longest / cores:,.0f} per second per core"
    )
    print(
        f"  per CPU-second (what one core does when it is not shared): UBL + validation "
        f"{total / cpu_ubl:,.0f}, UBL + validation + PDF {total / cpu_all:,.0f}"
    )
    fatal = one.fatal + sum(r.fatal for r in results)
    print(f"  fatal rule violations in the rendered documents: {fatal}")


def load_text() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


if __name__ == "__main__":
    main()
