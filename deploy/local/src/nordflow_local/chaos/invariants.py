"""The invariants a run must keep: each effect once, nothing lost, nothing stuck, books balanced.

Expectations are derived from the events on the topics (and the documents the workload
made), not from a list of flows: a new topic gets the generic checks (every consumer group
applied every event; at most one effect per invoice where the topic map says so) without a
change here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from nordflow_schemas.topics import CONTROL_PANEL, EVENT_DEAD_LETTERED, TOPICS

from nordflow_local.chaos.observe import (
    OVERDUE_SECONDS,
    Panel,
    Record,
    Tables,
    Topics,
    consumer_groups,
)
from nordflow_local.chaos.workload import FORTNOX, WINNER, Document, WinnerQuote
from nordflow_local.deliveries import Received

FETCHED = "erp.document.fetched"
CREATED = "invoice.created"
REJECTED = "invoice.rejected"
UPDATED = "invoice.updated"
TRANSFERRED = "invoice.transferred"
TRANSFER_FAILED = "invoice.transfer_failed"
DECIDED = "invoice.factoring_decided"
DISTRIBUTED = "invoice.distributed"
DELIVERY_FAILED = "invoice.delivery_failed"
UNCERTAIN = "invoice.delivery_uncertain"
PAYMENT = "payment.received"
POSTED = "ledger.entry.posted"
JOB_FAILED = "job.failed"
BOOKED = "invoice.booked"
# At most one distinct event per invoice: the effects the system promises once.
ONCE_PER_INVOICE = (CREATED, TRANSFERRED, DISTRIBUTED, DECIDED)
DELIVERY_ENDS = (DISTRIBUTED, DELIVERY_FAILED, UNCERTAIN)
# How many violations of one kind are listed (the count is always complete).
SHOWN = 5


@dataclass
class Verdict:
    """The outcome of one evaluation: counts for the summary and every violation found."""

    counts: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def fail(self, kind: str, message: str) -> None:
        """Record a violation of the invariant ``kind``."""
        self.violations[kind].append(message)

    @property
    def ok(self) -> bool:
        """No invariant broken."""
        return not any(self.violations.values())

    @property
    def stuck_only(self) -> bool:
        """Everything broken could still resolve by waiting (used while settling)."""
        return all(kind in SETTLING for kind, v in self.violations.items() if v)

    def describe(self) -> str:
        """Every broken invariant, with up to ``SHOWN`` examples each."""
        lines = []
        for kind, messages in sorted(self.violations.items()):
            if messages:
                lines.append(f"{kind}: {len(messages)}")
                lines += [f"  - {m}" for m in messages[:SHOWN]]
        return "\n".join(lines)


# Violations that waiting may still clear (work in flight); the others never heal by waiting.
SETTLING = {
    "lost-at-ingress",
    "not-applied",
    "not-mapped",
    "not-delivered",
    "not-closed",
    "not-booked",
    "outbox-unsent",
    "jobs-due",
    "consumer-lag",
    "erp-missing",
    "partner-missing",
    "partner-unexplained",  # sent, its event still in the outbox
    "factor-missing",
    "factor-unexplained",  # handed over, the transfer's event still in the outbox
    "not-transferred",
    "not-settled",
    "ledger-unbalanced",
    "panel-missing",  # the panel lags the topics by a batch
    "panel-step-lost",
    "panel-mismatch",  # its summary follows its steps
    "tripletex-missing",
    "tripletex-unexplained",  # written, its event still in the outbox
}


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _source_key(body: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if not body or not isinstance(body.get("source"), dict):
        return None
    return body["source"].get("system", ""), str(body["source"].get("document_id", ""))


def check_pipeline(topics: Topics, documents: Iterable[Document], verdict: Verdict) -> None:
    """No event lost between stages, no effect twice, derived from the topics."""
    fetched_docs = {
        (r.tenant, *src) for r in topics.on(FETCHED) if (src := _source_key(r.body)) is not None
    }
    docs = list(documents)
    for d in docs:
        if (d.tenant, d.system, d.document_id) not in fetched_docs:
            verdict.fail("lost-at-ingress", f"{d.tenant} {d.system} {d.document_id} never fetched")
    live = {
        r.key
        for r in topics.on(FETCHED)
        if r.body and not r.body.get("test_mode") and r.body.get("kind") != "payment"
    }
    created = topics.by_invoice(CREATED)
    rejected = topics.by_invoice(REJECTED)
    for topic in ONCE_PER_INVOICE:
        for key, events in topics.by_invoice(topic).items():
            if len(events) > 1:
                verdict.fail("duplicate-effect", f"{key}: {len(events)} distinct {topic}")
    for key in live:
        if not created.get(key) and not rejected.get(key):
            verdict.fail("not-mapped", f"{key}: fetched, neither created nor rejected")
    ends = {t: topics.by_invoice(t) for t in DELIVERY_ENDS}
    for key, events in created.items():
        body = events[0].body or {}
        if body.get("test_mode") or not body.get("flow", {}).get("distribute", True):
            continue
        n = sum(len(ends[t].get(key, [])) for t in DELIVERY_ENDS)
        if n == 0:
            verdict.fail("not-delivered", f"{key}: created, no delivery outcome")
        elif n > 1:
            outcome = {t: len(ends[t].get(key, [])) for t in DELIVERY_ENDS}
            verdict.fail("duplicate-effect", f"{key}: delivery outcomes {outcome}")
    decided = topics.by_invoice(DECIDED)
    transferred = topics.by_invoice(TRANSFERRED)
    transfer_failed = topics.by_invoice(TRANSFER_FAILED)
    for key, events in decided.items():
        if (events[0].body or {}).get("eligible") and not (
            transferred.get(key) or transfer_failed.get(key)
        ):
            verdict.fail("not-transferred", f"{key}: decided eligible, never transferred")
    for key in transferred:
        if key not in created:
            verdict.fail("unexplained-effect", f"{key}: transferred, never created")
    posted = topics.by_invoice(POSTED)
    closings = {
        k: [e for e in v if (e.body or {}).get("entry_kind") == "closing_entry"]
        for k, v in posted.items()
    }
    for key, events in transferred.items():
        body = events[0].body or {}
        if body.get("test_mode"):
            continue
        got = closings.get(key, [])
        if not got:
            verdict.fail("not-closed", f"{key}: transferred, no closing entry posted")
        elif len(got) > 1:
            verdict.fail("duplicate-effect", f"{key}: {len(got)} closing entries posted")
        elif abs(_dec((got[0].body or {})["amount"])) != abs(_dec(body["amount"])):
            verdict.fail(
                "ledger-unbalanced",
                f"{key}: transferred {body['amount']}, closed {(got[0].body or {})['amount']}",
            )
    for key, events in closings.items():
        if events and key not in transferred:
            verdict.fail("unexplained-effect", f"{key}: closing entry without a transfer")
    # A factored invoice is closed against the factor at transfer: its payment (the
    # factor's settlement) is not booked on the invoice again.
    factored = {
        key
        for key, events in transferred.items()
        if (events[0].body or {}).get("agreement_kind") == "factoring"
    }
    to_book = [
        r
        for r in topics.on(PAYMENT)
        if r.body
        and not r.body.get("test_mode")
        and not r.body.get("recorded_at_source")
        and r.key not in factored
        and r.body.get("agreement_kind") != "factoring"
    ]
    payments_posted = Counter(
        r.key for r in topics.on(POSTED) if (r.body or {}).get("entry_kind") == "invoice_payment"
    )
    for key, n in Counter(r.key for r in to_book).items():
        if payments_posted[key] < n:
            verdict.fail(
                "not-booked", f"{key}: {n} payment(s) reported, {payments_posted[key]} booked"
            )
        elif payments_posted[key] > n:
            verdict.fail(
                "duplicate-effect", f"{key}: {payments_posted[key]} payments booked for {n}"
            )
    # A source's own payment (recorded there) is booked once more only into the system its
    # flow books into (a Sirvoy payment into Fortnox), or skipped with its document.
    booked_into = Counter(
        r.key
        for r in topics.on(PAYMENT)
        if r.body
        and not r.body.get("test_mode")
        and r.body.get("recorded_at_source")
        and (r.body.get("flow") or {}).get("book_into")
    )
    to_book_keys = {r.key for r in to_book}
    for key, n in payments_posted.items():
        if key not in to_book_keys and key not in booked_into:
            verdict.fail("unexplained-effect", f"{key}: a payment booked that nothing reported")
        elif key in booked_into and n > booked_into[key] + sum(1 for r in to_book if r.key == key):
            verdict.fail("duplicate-effect", f"{key}: {n} payments booked for {booked_into[key]}")
    verdict.counts.update(
        documents=len(docs),
        fetched=len(topics.on(FETCHED)),
        created=len(created),
        rejected=len(rejected),
        transferred=len(transferred),
        distributed=len(ends[DISTRIBUTED]),
        delivery_failed=len(ends[DELIVERY_FAILED]),
        uncertain=len(ends[UNCERTAIN]),
        payments=len(topics.on(PAYMENT)),
        posted=len(topics.on(POSTED)),
        redelivered=topics.redelivered,
    )


def check_settlements(topics: Topics, settled: int, verdict: Verdict) -> None:
    """Every settlement line the factor wrote came back as a payment to book."""
    reported = [
        r
        for r in topics.on(PAYMENT)
        if r.body and not r.body.get("recorded_at_source") and not r.body.get("test_mode")
    ]
    if len(reported) < settled:
        verdict.fail("not-settled", f"{settled} settlement lines, {len(reported)} payments")
    verdict.counts["settlement_payments"] = len(reported)


def applied_ids(topics: Topics) -> dict[str, set[str]]:
    """For each service, the ids of the events it consumes (to look up in its inbox)."""
    out: dict[str, set[str]] = {}
    for group, names in consumer_groups(events_only=True).items():
        out[group] = {r.ce_id for t in names for r in topics.on(t)}
    return out


def check_applied(topics: Topics, tables: Tables, verdict: Verdict) -> None:
    """Every consumer group applied every event of the topics it consumes (its inbox holds the
    id), unless it dead-lettered it; a dead letter is itself a violation (nothing is poison in
    this workload)."""
    letters = topics.on(EVENT_DEAD_LETTERED.name)
    lettered = {r.ce_id for r in letters}  # "<consumer>:<ce_id>"
    for r in letters:
        reason = r.headers.get("x-nordflow-dlq-reason", "")[:200]
        origin = r.headers.get("x-nordflow-dlq-topic", "?")
        verdict.fail("dead-lettered", f"{r.ce_id} from {origin}: {reason}")
    for group, names in consumer_groups(events_only=True).items():
        held = tables.inbox.get(group, set())
        for topic in names:
            for r in topics.on(topic):
                if r.ce_id not in held and f"{group}:{r.ce_id}" not in lettered:
                    verdict.fail("not-applied", f"{group} has not applied {topic} {r.ce_id}")
    verdict.counts["dead_letters"] = len(letters)
    for r in topics.on(JOB_FAILED):
        body = r.body or {}
        verdict.fail("job-failed", f"job.failed {r.key}: {str(body.get('error', ''))[:200]}")


def check_settled(tables: Tables, lag: Mapping[str, int], verdict: Verdict) -> None:
    """Nothing stuck: outboxes drained, no job overdue or failed, every group at the end."""
    for service, n in tables.outbox_unsent.items():
        if n:
            verdict.fail("outbox-unsent", f"{service}: {n} outbox rows not published")
    for service, n in tables.outbox_set_aside.items():
        if n:
            verdict.fail("outbox-set-aside", f"{service}: {n} outbox rows set aside (refused)")
    for name, n in tables.jobs_due.items():
        if n:
            verdict.fail(
                "jobs-due",
                f"{name}: {n} jobs over {OVERDUE_SECONDS:.0f} s past their due time "
                "(or their lease)",
            )
    for name, errors in tables.jobs_failed.items():
        for error in errors:
            verdict.fail("job-failed", f"{name} {error}")
    for group, n in lag.items():
        if n:
            verdict.fail("consumer-lag", f"{group}: {n} records not committed")
    verdict.counts.update(
        outbox_unsent=sum(tables.outbox_unsent.values()),
        outbox_set_aside=sum(tables.outbox_set_aside.values()),
        jobs_due=sum(tables.jobs_due.values()),
        jobs_failed=sum(len(v) for v in tables.jobs_failed.values()),
        lag=sum(lag.values()),
    )


def _tenants_invoices(topics: Topics) -> set[str]:
    return {r.key for records in topics.events.values() for r in records.values()}


def check_partners(
    topics: Topics, received: Mapping[str, list[Received]], verdict: Verdict
) -> None:
    """Each partner holds exactly what was announced as distributed: once, and nothing else."""
    distributed = topics.by_invoice(DISTRIBUTED)
    uncertain = topics.by_invoice(UNCERTAIN)
    total = 0
    for key in _tenants_invoices(topics):
        got = received.get(key, [])
        total += len(got)
        if key in uncertain:
            if len(got) > 1:
                verdict.fail("partner-duplicate", f"{key}: uncertain, yet received {len(got)}x")
            continue
        sent = distributed.get(key, [])
        if not sent:
            if got:
                verdict.fail("partner-unexplained", f"{key}: partner holds {got}, not distributed")
            continue
        body = sent[0].body or {}
        want = [(body.get("channel"), body.get("partner_reference"))]
        have = [(r.channel, r.reference) for r in got]
        if len(have) > 1:
            verdict.fail("partner-duplicate", f"{key}: received {len(have)}x: {have}")
        elif have != want:
            verdict.fail("partner-missing", f"{key}: announced {want}, partner holds {have}")
    verdict.counts["partner_documents"] = total


def check_factor(
    topics: Topics, received: Mapping[str, Mapping[str, int]], verdict: Verdict
) -> None:
    """The factor holds each transferred invoice exactly once, and nothing else: ``received``
    maps a tenant to how often the factor sandbox received each invoice number."""
    transferred: dict[str, set[str]] = defaultdict(set)
    for r in topics.on(TRANSFERRED):
        transferred[r.tenant].add(str((r.body or {}).get("number")))
    total = 0
    for tenant, counts in received.items():
        total += sum(counts.values())
        for number, n in counts.items():
            if n > 1:
                verdict.fail("factor-duplicate", f"{tenant}: invoice {number} at the factor {n}x")
            if number not in transferred.get(tenant, set()):
                verdict.fail("factor-unexplained", f"{tenant}: invoice {number} at the factor")
        for number in transferred.get(tenant, set()) - set(counts):
            verdict.fail("factor-missing", f"{tenant}: invoice {number} transferred, not there")
    verdict.counts["factor_invoices"] = total


def check_erp(
    topics: Topics, payments: Mapping[str, list[dict[str, Any]]], verdict: Verdict
) -> None:
    """Each ERP write once, and the books balance: the payments in every Fortnox company are
    exactly the entries announced as posted (same invoice, reference and amount less the
    fee written off)."""
    posted_by_tenant: dict[str, list[Record]] = defaultdict(list)
    for r in topics.on(POSTED):
        source = (r.body or {}).get("source", {})
        if source.get("system") == FORTNOX:
            posted_by_tenant[r.tenant].append(r)
    total = 0
    for tenant, erp in payments.items():
        total += len(erp)
        by_number = Counter(str(p["Number"]) for p in erp)
        posted = posted_by_tenant.get(tenant, [])
        referenced = Counter(str((r.body or {}).get("erp_reference")) for r in posted)
        for number, n in by_number.items():
            if n > 1:
                verdict.fail("erp-duplicate", f"{tenant}: payment {number} listed {n}x")
            if number not in referenced:
                verdict.fail("erp-unexplained", f"{tenant}: ERP payment {number}, no entry posted")
        for ref, n in referenced.items():
            if n > 1:
                verdict.fail("erp-duplicate", f"{tenant}: {n} entries name payment {ref}")
            if ref not in by_number:
                verdict.fail("erp-missing", f"{tenant}: entry names payment {ref}, not in the ERP")
        # As many payments on each invoice as entries posted for it (a closing, and the
        # payments a factor's or bank's settlement reported), no more, no fewer.
        per_invoice = Counter(str(p["InvoiceNumber"]) for p in erp)
        entries = Counter(
            str(src.get("document_number") or src.get("document_id"))
            for r in posted
            if (src := (r.body or {}).get("source", {}))
        )
        for number, n in entries.items():
            if per_invoice[number] > n:
                verdict.fail(
                    "erp-duplicate",
                    f"{tenant}: invoice {number} paid {per_invoice[number]}x for {n} entries",
                )
        erp_sum = sum((_dec(p["Amount"]) for p in erp), Decimal(0))
        # A closing under a factoring agreement pays the invoice less the factor's fee, which
        # is written off (Fortnox's WriteOffs): the ERP's payment is the entry's cash part.
        posted_sum = sum(
            (_dec(b["amount"]) - _dec(b.get("fee_amount") or 0) for r in posted if (b := r.body)),
            Decimal(0),
        )
        if erp_sum != posted_sum:
            verdict.fail(
                "ledger-unbalanced",
                f"{tenant}: ERP payments {erp_sum}, entries posted {posted_sum}",
            )
    verdict.counts["erp_payments"] = total


# The topics whose events are steps of an invoice's journey in the control panel: keyed by
# the invoice and read by the panel (from the topic map, so a new one is covered).
JOURNEY_TOPICS = tuple(
    t.name
    for t in TOPICS
    if t.event is not None and t.key == "invoice_id" and CONTROL_PANEL in t.consumers
)


def journey_steps(topics: Topics) -> dict[str, dict[str, set[str]]]:
    """Per invoice, the ids of the distinct events of each journey topic: the steps the
    panel must show (a payment document fetched is none: it shows as the payment.received
    the mapper makes of it)."""
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for topic in JOURNEY_TOPICS:
        for r in topics.on(topic):
            if topic == FETCHED and (r.body or {}).get("kind") == "payment":
                continue
            out[r.key][topic].add(r.ce_id)
    return out


def panel_statuses(kinds: Collection[str], entry_kinds: Collection[str]) -> set[str]:
    """The statuses the panel may show for an invoice whose steps are of ``kinds`` (and whose
    entries posted are of ``entry_kinds``): the furthest step reached
    (docs/api/control-panel.md); between a rejection and a creation the newer counts, so
    either is right here."""
    ranked = (
        ("closing_entry" in entry_kinds, "closed"),
        ("invoice_payment" in entry_kinds, "booked"),
        (PAYMENT in kinds, "paid"),
        (DISTRIBUTED in kinds, "distributed"),
        (UNCERTAIN in kinds, "uncertain"),
        (DELIVERY_FAILED in kinds, "delivery_failed"),
        (TRANSFERRED in kinds, "transferred"),
    )
    for reached, status in ranked:
        if reached:
            return {status}
    mapped = {"created" for k in (CREATED, UPDATED) if k in kinds}
    mapped |= {"rejected"} if REJECTED in kinds else set()
    return mapped or ({"fetched"} if FETCHED in kinds else {"unknown"})


def check_panel(topics: Topics, panel: Panel, verdict: Verdict) -> None:
    """The control panel's read model is what the topics carried: every invoice created is
    listed with its number; each invoice's journey holds each event of its journey topics
    once (none lost, none doubled); its status is the furthest step the topics reached.

    Read the panel *before* the topics: then a step the panel holds that the topics do not
    is doubled, never merely newer than the topics' snapshot."""
    expected = journey_steps(topics)
    created = topics.by_invoice(CREATED)
    tenant_of = {r.key: r.tenant for topic in JOURNEY_TOPICS for r in topics.on(topic)}
    entry_kinds: dict[str, set[str]] = defaultdict(set)
    for r in topics.on(POSTED):
        entry_kinds[r.key].add(str((r.body or {}).get("entry_kind")))
    numbers: dict[str, set[str]] = defaultdict(set)
    for topic in (CREATED, UPDATED):
        for r in topics.on(topic):
            number = ((r.body or {}).get("invoice") or {}).get("number")
            if number is not None:
                numbers[r.key].add(str(number))
    for key in created:
        if key not in panel.listed:
            verdict.fail("panel-missing", f"{key}: created, not in the panel's list")
    for key, kinds in expected.items():
        detail = panel.details.get(key)
        if detail is None:
            if key not in created or key in panel.listed:  # else reported above
                verdict.fail("panel-missing", f"{key}: {sorted(kinds)} on the topics, no invoice")
            continue
        held: dict[str, Counter[str]] = defaultdict(Counter)
        for step in detail.get("journey") or []:
            held[step["kind"]][step["event_id"]] += 1
        for kind in JOURNEY_TOPICS:
            want, got = kinds.get(kind, set()), held.get(kind, Counter())
            lost = want - set(got)
            extra = sum(n - 1 for n in got.values()) + sum(1 for i in got if i not in want)
            if lost:
                verdict.fail(
                    "panel-step-lost",
                    f"{key}: {len(want)} {kind} on the topic, {len(lost)} not in its journey",
                )
            if extra:
                verdict.fail(
                    "panel-step-doubled",
                    f"{key}: {len(want)} {kind} on the topic, {sum(got.values())} steps",
                )
        if detail.get("tenant_id") != tenant_of[key]:
            verdict.fail(
                "panel-mismatch", f"{key}: tenant {detail.get('tenant_id')}, not {tenant_of[key]}"
            )
        if key in numbers and str(detail.get("number")) not in numbers[key]:
            verdict.fail(
                "panel-mismatch", f"{key}: number {detail.get('number')}, created {numbers[key]}"
            )
        allowed = panel_statuses(set(kinds), entry_kinds[key])
        if detail.get("status") not in allowed:
            verdict.fail(
                "panel-mismatch",
                f"{key}: status {detail.get('status')}, the topics say {'/'.join(sorted(allowed))}",
            )
    for key in panel.listed.keys() - expected.keys():
        verdict.fail("panel-unexplained", f"{key}: in the panel, no journey event on the topics")
    verdict.counts["panel_invoices"] = len(panel.listed)
    verdict.counts["panel_steps"] = sum(len(d.get("journey") or []) for d in panel.details.values())


def check_tripletex(
    topics: Topics,
    quotes: Iterable[WinnerQuote],
    records: Mapping[str, Mapping[str, list[dict[str, Any]]]],
    today: date,
    verdict: Verdict,
) -> None:
    """Each Winner quote is in its tenant's Tripletex company exactly as the flow writes it:
    per part of its payment calendar exactly one order (our reference: the part's invoice
    id), the one its single `invoice.booked` (order) names, on the quote's customer and
    project; one project per quote and one customer card per customer; each part whose due
    date has come (``today``, UTC, as ledger-closer plans it) invoiced exactly once, the
    others not; nothing else. ``records`` maps a tenant to what its company holds."""
    keys = {
        (r.tenant, src[1]): r.key
        for r in topics.on(FETCHED)
        if (src := _source_key(r.body)) is not None and src[0] == WINNER
    }
    booked: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in topics.on(BOOKED):
        booked[(r.key, str((r.body or {}).get("action")))].append(r)
    by_tenant: dict[str, list[WinnerQuote]] = defaultdict(list)
    for q in quotes:
        by_tenant[q.tenant].append(q)
    orders_total = invoices_total = 0
    for tenant, held in records.items():
        mine = by_tenant.get(tenant, [])
        customers: dict[str, list[int]] = defaultdict(list)
        for c in held.get("customers", []):
            customers[str(c.get("email"))].append(int(c["id"]))
        projects: dict[str, list[int]] = defaultdict(list)
        for p in held.get("projects", []):
            projects[str(p.get("number"))].append(int(p["id"]))
        orders: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for o in held.get("orders", []):
            orders[str(o.get("reference"))].append(o)
        invoiced = Counter(o["id"] for i in held.get("invoices", []) for o in i.get("orders") or [])
        orders_total += len(held.get("orders", []))
        invoices_total += len(held.get("invoices", []))
        for what, found, wanted in (
            ("customer", customers, {q.customer_email for q in mine}),
            ("project", projects, {q.project_number for q in mine}),
        ):
            for name in wanted:
                if not found.get(name):
                    verdict.fail("tripletex-missing", f"{tenant}: no {what} {name}")
                elif len(found[name]) > 1:
                    verdict.fail(
                        "tripletex-duplicate", f"{tenant}: {what} {name} {len(found[name])}x"
                    )
            for name in found.keys() - wanted:
                verdict.fail("tripletex-unexplained", f"{tenant}: {what} {name}, of no quote")
        ours: set[str] = set()
        for q in mine:
            for document, due in q.parts:
                key = keys.get((tenant, document))
                if key is None:
                    continue  # never fetched: lost-at-ingress says so
                ours.add(key)
                part = f"{tenant}: quote {q.quote_number} part {document} ({key})"
                found_orders = orders.get(key, [])
                told = booked.get((key, "order"), [])
                if not found_orders or not told:
                    verdict.fail(
                        "tripletex-missing",
                        f"{part}: {len(found_orders)} orders, {len(told)} invoice.booked (order)",
                    )
                    continue
                if len(found_orders) > 1 or len(told) > 1:
                    verdict.fail(
                        "tripletex-duplicate",
                        f"{part}: {len(found_orders)} orders, {len(told)} invoice.booked (order)",
                    )
                    continue
                order = found_orders[0]
                if str(order["id"]) != str((told[0].body or {}).get("erp_reference")):
                    verdict.fail(
                        "tripletex-unexplained",
                        f"{part}: order {order['id']}, booked names "
                        f"{(told[0].body or {}).get('erp_reference')}",
                    )
                if (order.get("customer") or {}).get("id") not in customers.get(
                    q.customer_email, []
                ) or (order.get("project") or {}).get("id") not in projects.get(
                    q.project_number, []
                ):
                    verdict.fail(
                        "tripletex-mismatch",
                        f"{part}: order on customer {order.get('customer')} project "
                        f"{order.get('project')}, not {q.customer_email} {q.project_number}",
                    )
                n = invoiced[order["id"]]
                want = 1 if due <= today else 0
                told_invoiced = len(booked.get((key, "order_invoiced"), []))
                if n > 1 or told_invoiced > 1:
                    verdict.fail(
                        "tripletex-duplicate",
                        f"{part}: invoiced {n}x, {told_invoiced} invoice.booked (order_invoiced)",
                    )
                elif n < want or told_invoiced < want:
                    verdict.fail("tripletex-missing", f"{part}: due {due}, not invoiced")
                elif n > want:
                    verdict.fail("tripletex-unexplained", f"{part}: due {due}, invoiced already")
        for reference in orders.keys() - ours:
            verdict.fail("tripletex-unexplained", f"{tenant}: order {reference!r}, of no quote")
    verdict.counts["tripletex_orders"] = orders_total
    verdict.counts["tripletex_invoices"] = invoices_total
