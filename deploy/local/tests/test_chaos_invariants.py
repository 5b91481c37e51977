"""The chaos harness's invariants catch what they promise to (synthetic topics, no stack)."""

from datetime import date, timedelta

from nordflow_local.chaos.faults import Kind, plan_faults
from nordflow_local.chaos.invariants import (
    JOURNEY_TOPICS,
    Verdict,
    check_applied,
    check_erp,
    check_factor,
    check_panel,
    check_partners,
    check_pipeline,
    check_settled,
    check_tripletex,
    panel_statuses,
)
from nordflow_local.chaos.observe import Panel, Record, Tables, Topics
from nordflow_local.chaos.workload import Document, WinnerQuote
from nordflow_local.deliveries import Received

T = "t-1"


def add(topics: Topics, topic: str, key: str, ce_id: str, body: dict, **headers: str) -> None:
    topics.copies[topic] += 1
    topics.events[topic][ce_id] = Record(topic, key, ce_id, T, body, dict(headers))


def journey(topics: Topics, key: str = "inv_1", number: str = "1") -> None:
    """One Fortnox invoice all the way: fetched, created, transferred, sent, closed."""
    source = {"system": "fortnox", "document_id": number, "document_number": number}
    add(topics, "erp.document.fetched", key, f"f-{key}", {"source": source, "kind": "invoice"})
    created = {"flow": {"distribute": True}, "invoice": {"number": number}}
    add(topics, "invoice.created", key, f"c-{key}", created)
    add(topics, "invoice.transferred", key, f"t-{key}", {"amount": "100.00", "number": number})
    add(
        topics,
        "invoice.distributed",
        key,
        f"d-{key}",
        {"channel": "peppol", "partner_reference": f"tx-{key}"},
    )
    add(
        topics,
        "ledger.entry.posted",
        key,
        f"p-{key}",
        {
            "entry_kind": "closing_entry",
            "amount": "100.00",
            "erp_reference": f"9{number}",
            "source": source,
        },
    )


ONE = (Document(T, "fortnox", "1"),)


def verdict_of(topics: Topics, docs=ONE) -> Verdict:
    verdict = Verdict()
    check_pipeline(topics, docs, verdict)
    return verdict


def test_a_whole_journey_keeps_every_invariant():
    topics = Topics()
    journey(topics)
    verdict = verdict_of(topics)
    check_partners(topics, {"inv_1": [Received("peppol", "tx-inv_1", "inv_1:peppol:1")]}, verdict)
    payments = {T: [{"Number": "91", "InvoiceNumber": 1, "Amount": 100}]}
    check_erp(topics, payments, verdict)
    assert verdict.ok, verdict.describe()
    assert verdict.counts["created"] == 1


def test_a_document_never_fetched_is_lost():
    topics = Topics()
    journey(topics)
    verdict = verdict_of(topics, [Document(T, "fortnox", "1"), Document(T, "fortnox", "2")])
    assert list(verdict.violations) == ["lost-at-ingress"]
    assert verdict.stuck_only  # it may still come: waiting can heal it


def test_a_second_distinct_send_is_a_duplicate_effect():
    topics = Topics()
    journey(topics)
    add(topics, "invoice.distributed", "inv_1", "d-again", {"channel": "peppol"})
    verdict = verdict_of(topics)
    assert "duplicate-effect" in verdict.violations
    assert not verdict.stuck_only


def test_the_same_event_published_twice_is_only_a_redelivery():
    topics = Topics()
    journey(topics)
    add(topics, "invoice.created", "inv_1", "c-inv_1", {"flow": {"distribute": True}})
    verdict = verdict_of(topics)
    assert verdict.ok, verdict.describe()
    assert verdict.counts["redelivered"] == 1


def test_a_created_invoice_without_a_delivery_outcome_is_not_delivered():
    topics = Topics()
    journey(topics)
    del topics.events["invoice.distributed"]["d-inv_1"]
    assert "not-delivered" in verdict_of(topics).violations


def test_a_partner_holding_two_copies_is_caught():
    topics = Topics()
    journey(topics)
    verdict = Verdict()
    got = [Received("peppol", "tx-inv_1", "inv_1:peppol:1"), Received("peppol", "x", "k:2")]
    check_partners(topics, {"inv_1": got}, verdict)
    assert list(verdict.violations) == ["partner-duplicate"]


def test_a_second_payment_in_the_erp_and_unbalanced_books_are_caught():
    topics = Topics()
    journey(topics)
    verdict = Verdict()
    payments = {
        T: [
            {"Number": "91", "InvoiceNumber": 1, "Amount": 100},
            {"Number": "92", "InvoiceNumber": 1, "Amount": 100},
        ]
    }
    check_erp(topics, payments, verdict)
    assert {"erp-unexplained", "erp-duplicate", "ledger-unbalanced"} <= set(verdict.violations)


def test_an_event_missing_from_a_consumers_inbox_is_not_applied():
    topics = Topics()
    journey(topics)
    every = {r.ce_id for records in topics.events.values() for r in records.values()}
    tables = Tables({}, {}, {}, {}, {s: set(every) for s in ("mapper", "ledger-closer")})
    verdict = Verdict()
    check_applied(topics, tables, verdict)
    # factoring-gateway and distribution-router never applied invoice.created.
    missing = "\n".join(verdict.violations["not-applied"])
    assert "factoring-gateway" in missing
    assert "distribution-router" in missing
    assert "c-inv_1" in missing


def test_a_dead_letter_and_nothing_stuck_are_told_apart():
    topics = Topics()
    add(
        topics,
        "event.dead_lettered",
        "inv_1",
        "mapper:f-inv_1",
        {},
        **{"x-nordflow-dlq-reason": "gave up", "x-nordflow-dlq-topic": "erp.document.fetched"},
    )
    tables = Tables({"mapper": 2}, {"mapper": 1}, {"ledger-closer/post-entry": 1}, {}, {})
    verdict = Verdict()
    check_applied(topics, tables, verdict)
    check_settled(tables, {"mapper": 3}, verdict)
    assert {
        "dead-lettered",
        "outbox-unsent",
        "outbox-set-aside",
        "jobs-due",
        "consumer-lag",
    } <= set(verdict.violations)


def test_a_fault_plan_is_the_same_for_the_same_seed():
    plan = plan_faults(42, 60, service_kills=3, broker_restarts=1, postgres_restarts=1)
    assert plan == plan_faults(42, 60, service_kills=3, broker_restarts=1, postgres_restarts=1)
    assert plan != plan_faults(43, 60, service_kills=3, broker_restarts=1, postgres_restarts=1)
    assert [f.at for f in plan] == sorted(f.at for f in plan)
    assert sum(1 for f in plan if f.kind is Kind.SERVICE_KILL) == 3


def test_the_factor_holds_each_transferred_invoice_once_and_nothing_else():
    topics = Topics()
    journey(topics)
    verdict = Verdict()
    check_factor(topics, {T: {"1": 1}}, verdict)
    assert verdict.ok, verdict.describe()
    check_factor(topics, {T: {"1": 2, "7": 1}}, verdict)
    assert {"factor-duplicate", "factor-unexplained"} <= set(verdict.violations)
    verdict = Verdict()
    check_factor(topics, {T: {}}, verdict)
    assert list(verdict.violations) == ["factor-missing"]


def test_a_source_s_own_payment_is_booked_once_into_its_flow_s_target():
    topics = Topics()
    journey(topics)
    paid = {"recorded_at_source": True, "flow": {"book_into": "t-1-fortnox"}}
    add(topics, "payment.received", "inv_1", "pay-1", paid)
    posted = {"entry_kind": "invoice_payment", "amount": "100.00", "erp_reference": "P1"}
    add(topics, "ledger.entry.posted", "inv_1", "pp-1", posted)
    assert verdict_of(topics).ok, verdict_of(topics).describe()

    add(topics, "ledger.entry.posted", "inv_1", "pp-2", {**posted, "erp_reference": "P2"})
    assert "duplicate-effect" in verdict_of(topics).describe()


def test_a_payment_booked_that_nothing_reported_is_unexplained():
    topics = Topics()
    journey(topics)
    add(topics, "payment.received", "inv_1", "pay-1", {"recorded_at_source": True})
    posted = {"entry_kind": "invoice_payment", "amount": "100.00", "erp_reference": "P1"}
    add(topics, "ledger.entry.posted", "inv_1", "pp-1", posted)
    assert "unexplained-effect" in verdict_of(topics).describe()


def test_a_closing_pays_the_invoice_less_the_fee_it_writes_off():
    topics = Topics()
    journey(topics)
    closing = topics.events["ledger.entry.posted"]["p-inv_1"]
    topics.events["ledger.entry.posted"]["p-inv_1"] = Record(
        closing.topic, closing.key, closing.ce_id, T, {**closing.body, "fee_amount": "6.50"}, {}
    )
    balanced, unbalanced = Verdict(), Verdict()
    check_erp(topics, {T: [{"Number": "91", "InvoiceNumber": 1, "Amount": "93.50"}]}, balanced)
    check_erp(topics, {T: [{"Number": "91", "InvoiceNumber": 1, "Amount": "100"}]}, unbalanced)
    assert balanced.ok, balanced.describe()
    assert "ledger-unbalanced" in unbalanced.violations


def test_a_factor_s_settlement_of_a_factored_invoice_is_not_to_be_booked():
    topics = Topics()
    journey(topics)
    transferred = topics.events["invoice.transferred"]["t-inv_1"]
    topics.events["invoice.transferred"]["t-inv_1"] = Record(
        transferred.topic,
        transferred.key,
        transferred.ce_id,
        T,
        {**transferred.body, "agreement_kind": "factoring"},
        {},
    )
    add(topics, "payment.received", "inv_1", "pay-1", {"amount": "100.00"})
    assert verdict_of(topics).ok, verdict_of(topics).describe()


def panel_of(topics: Topics, status: str = "closed", number: str = "1") -> Panel:
    """The control panel showing every journey event of the topics once."""
    details: dict[str, dict] = {}
    for topic in JOURNEY_TOPICS:
        for r in topics.on(topic):
            if topic == "erp.document.fetched" and (r.body or {}).get("kind") == "payment":
                continue
            detail = details.setdefault(
                r.key,
                {"invoice_id": r.key, "tenant_id": r.tenant, "number": number, "status": status},
            )
            detail.setdefault("journey", []).append({"kind": topic, "event_id": r.ce_id})
    return Panel({k: dict(d) for k, d in details.items()}, details)


def panel_verdict(topics: Topics, panel: Panel) -> Verdict:
    verdict = Verdict()
    check_panel(topics, panel, verdict)
    return verdict


def test_the_panel_showing_each_event_once_keeps_the_invariant():
    topics = Topics()
    journey(topics)
    # A payment document fetched is no step of the journey.
    add(topics, "erp.document.fetched", "inv_1", "f-pay", {"kind": "payment"})
    verdict = panel_verdict(topics, panel_of(topics))
    assert verdict.ok, verdict.describe()
    assert verdict.counts["panel_steps"] == 5


def test_a_step_lost_and_a_step_doubled_in_the_panel_are_caught():
    topics = Topics()
    journey(topics)
    panel = panel_of(topics)
    steps = panel.details["inv_1"]["journey"]
    steps.remove({"kind": "invoice.distributed", "event_id": "d-inv_1"})
    steps.append({"kind": "invoice.transferred", "event_id": "t-inv_1"})
    verdict = panel_verdict(topics, panel)
    assert set(verdict.violations) == {"panel-step-lost", "panel-step-doubled"}
    assert "invoice.distributed" in verdict.violations["panel-step-lost"][0]
    assert "1 invoice.transferred on the topic, 2 steps" in verdict.describe()
    assert not verdict.stuck_only  # a doubled step never heals by waiting


def test_a_created_invoice_the_panel_lacks_is_missing_and_its_wrong_status_a_mismatch():
    topics = Topics()
    journey(topics)
    verdict = panel_verdict(topics, Panel({}, {}))
    assert list(verdict.violations) == ["panel-missing"]
    assert verdict.stuck_only  # the panel lags the topics by a batch
    verdict = panel_verdict(topics, panel_of(topics, status="distributed", number="2"))
    assert len(verdict.violations["panel-mismatch"]) == 2
    assert "the topics say closed" in verdict.describe()


def test_the_panel_s_status_is_the_furthest_step_the_topics_reached():
    assert panel_statuses({"invoice.created", "invoice.distributed"}, set()) == {"distributed"}
    assert panel_statuses({"invoice.distributed"}, {"invoice_payment"}) == {"booked"}
    # A rejection and a creation: the newer counts, either may be it.
    both = {"erp.document.fetched", "invoice.rejected", "invoice.created"}
    assert panel_statuses(both, set()) == {"created", "rejected"}
    assert panel_statuses({"erp.document.fetched"}, set()) == {"fetched"}


W = "t-1-kjokken"
TODAY = date(2026, 12, 6)


def winner_quote() -> tuple[Topics, WinnerQuote, dict]:
    """A quote of two parts fetched and booked (the first, due today, invoiced) and the
    Tripletex company holding exactly that."""
    topics = Topics()
    quote = WinnerQuote(
        W,
        "Q0001",
        "kari@example.no",
        "P-Q0001",
        (("Q0001-1", TODAY), ("Q0001-2", TODAY + timedelta(days=42))),
    )
    for n, (document, _due) in enumerate(quote.parts, 1):
        key = f"inv_w{n}"
        src = {"source": {"system": "winner", "document_id": document}, "kind": "invoice"}
        topics.events["erp.document.fetched"][f"f-{key}"] = Record(
            "erp.document.fetched", key, f"f-{key}", W, src, {}
        )
        order = {"action": "order", "erp_reference": str(100 + n)}
        topics.events["invoice.booked"][f"b-{key}"] = Record(
            "invoice.booked", key, f"b-{key}", W, order, {}
        )
    invoiced = {"action": "order_invoiced", "erp_reference": "1"}
    topics.events["invoice.booked"]["i-inv_w1"] = Record(
        "invoice.booked", "inv_w1", "i-inv_w1", W, invoiced, {}
    )
    records = {
        "customers": [{"id": 1, "email": "kari@example.no"}],
        "projects": [{"id": 2, "number": "P-Q0001"}],
        "orders": [
            {"id": 100 + n, "reference": f"inv_w{n}", "customer": {"id": 1}, "project": {"id": 2}}
            for n in (1, 2)
        ],
        "invoices": [{"id": 7, "invoiceNumber": 1, "orders": [{"id": 101}]}],
    }
    return topics, quote, records


def tripletex_verdict(topics: Topics, quote: WinnerQuote, records: dict) -> Verdict:
    verdict = Verdict()
    check_tripletex(topics, [quote], {W: records}, TODAY, verdict)
    return verdict


def test_a_winner_quote_is_one_order_per_part_one_project_and_one_customer():
    topics, quote, records = winner_quote()
    verdict = tripletex_verdict(topics, quote, records)
    assert verdict.ok, verdict.describe()
    assert (verdict.counts["tripletex_orders"], verdict.counts["tripletex_invoices"]) == (2, 1)


def test_a_second_order_customer_or_invoice_in_tripletex_is_a_duplicate():
    topics, quote, records = winner_quote()
    records["orders"].append({**records["orders"][0], "id": 103})
    records["customers"].append({"id": 3, "email": "kari@example.no"})
    records["invoices"].append({"id": 8, "invoiceNumber": 2, "orders": [{"id": 102}]})
    verdict = tripletex_verdict(topics, quote, records)
    assert set(verdict.violations) == {"tripletex-duplicate", "tripletex-unexplained"}
    assert len(verdict.violations["tripletex-duplicate"]) == 2  # the order, the customer
    # The part due in six weeks was invoiced already.
    assert "Q0001-2" in verdict.violations["tripletex-unexplained"][0]
    assert not verdict.stuck_only


def test_a_quote_not_yet_in_tripletex_is_missing():
    topics, quote, records = winner_quote()
    records["orders"].pop()
    records["invoices"].clear()
    verdict = tripletex_verdict(topics, quote, records)
    assert set(verdict.violations) == {"tripletex-missing"}
    assert verdict.stuck_only
