"""Visma eAccounting and Visma.net through the running services: each document is fetched,
mapped (or rejected with its field) and sent once. A Sirvoy hotel's invoices, payment and
credit are booked into its Fortnox and never sent; a Stripe-paid cash receipt is skipped. A
Winner quote split 20/80 becomes a customer, project, products and two orders in Tripletex,
the part due today invoiced."""

import datetime as dt
from decimal import Decimal

import pytest
from nordflow_local import deliveries, journey, sources
from nordflow_local.provision import provision_sources

pytestmark = [pytest.mark.e2e]
ENDS = ("invoice.rejected", "invoice.distributed", "invoice.delivery_failed")
BOOKED = ("invoice.rejected", "invoice.booked", "invoice.booking_skipped")


def by_document(journeys: dict[str, journey.Journey]) -> dict[tuple[str, str], journey.Journey]:
    out = {}
    for j in journeys.values():
        fetched = j.first("erp.document.fetched")
        if fetched is not None:
            out[(fetched["source"]["system"], fetched["source"]["document_id"])] = j
    return out


async def test_each_source_flows_to_its_recipients_once(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    connected = {c.system: c for c in await provision_sources(env, tenant_id)}
    bygg = connected[sources.VISMA_EACCOUNTING]
    fjord = connected[sources.VISMA_NET]
    expected = [
        *(
            (bygg.system, i)
            for i in await sources.create_visma_eaccounting_invoices(
                bygg.url, dict(bygg.writer), 2, bad=1, seed=3
            )
        ),
        *(
            (fjord.system, i)
            for i in await sources.create_visma_net_invoices(
                fjord.url, fjord.writer["token"], fjord.writer["company_id"], 2, seed=3
            )
        ),
    ]
    tenants = [bygg.tenant_id, fjord.tenant_id]

    def finished(journeys):
        docs = by_document(journeys)
        return all(key in docs and any(docs[key].count(t) for t in ENDS) for key in expected)

    journeys = await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], tenants, finished, timeout=180
    )
    docs = by_document(journeys)
    at_partner = await deliveries.received(env)
    outcomes = {}
    for key in expected:
        j = docs[key]
        # A document emitted again only as a new version (a credited invoice changes; the
        # webhook and the catch-up poll of one version emit it once).
        fetched = j.events["erp.document.fetched"].values()
        assert len({body["version"] for body in fetched}) == len(fetched), key
        if j.count("invoice.rejected"):
            outcomes[key] = "rejected"
            errors = j.first("invoice.rejected")["errors"]
            assert ("buyer.company_id", "NF-ORGNR") in {(e["field"], e["rule"]) for e in errors}
            continue
        assert j.count("invoice.created") == 1, key
        assert j.count("invoice.distributed") == 1, key
        sent = j.first("invoice.distributed")
        got = at_partner.get(j.invoice_id, [])
        assert [(r.channel, r.reference) for r in got] == [
            (sent["channel"], sent["partner_reference"])
        ], key
        outcomes[key] = sent["channel"]
    # The invalid eAccounting invoice alone is rejected.
    assert list(outcomes.values()).count("rejected") == 1


async def test_a_sirvoy_hotel_is_booked_into_its_fortnox_and_never_sent(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    hotell = {c.system: c for c in await provision_sources(env, tenant_id)}[sources.SIRVOY]
    assert hotell.books is not None
    invoices = await sources.create_sirvoy_invoices(hotell.url, hotell.writer["token"], 2, seed=3)
    receipt = await sources.create_sirvoy_cash_receipt(hotell.url, hotell.writer["token"])
    # Two invoices, the first credited (the credit invoice last), the second paid.
    first, paid_id, credit_id = invoices
    expected = [first, paid_id, credit_id, receipt]

    def finished(journeys):
        docs = by_document(journeys)
        keys = [(sources.SIRVOY, i) for i in expected]
        return all(key in docs and any(docs[key].count(t) for t in BOOKED) for key in keys) and (
            docs[(sources.SIRVOY, paid_id)].count("ledger.entry.posted") == 1
        )

    journeys = await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], [hotell.tenant_id], finished, timeout=180
    )
    docs = {i: by_document(journeys)[(sources.SIRVOY, i)] for i in expected}
    at_partner = await deliveries.received(env)
    for j in docs.values():
        # Created once, never sent (the flow excludes distribution), booked or skipped once.
        assert j.count("invoice.created") == 1
        assert j.count("invoice.transferred") == j.count("invoice.distributed") == 0
        assert at_partner.get(j.invoice_id, []) == []
        assert j.first("invoice.created")["flow"] == {
            "book_into": hotell.books.connection_id,
            "factor": False,
            "distribute": False,
        }
    actions = {
        i: [b["action"] for b in docs[i].events["invoice.booked"].values()] for i in invoices
    }
    assert actions == {first: ["invoice"], paid_id: ["invoice"], credit_id: ["credit_invoice"]}
    skipped = docs[receipt].first("invoice.booking_skipped")
    assert docs[receipt].count("invoice.booked") == 0
    assert "already paid via stripe" in skipped["reason"]

    # The guest's payment at the hotel: booked once in the hotel's Fortnox.
    posted = docs[paid_id].first("ledger.entry.posted")
    assert docs[paid_id].count("payment.received") == 1
    assert posted["entry_kind"] == "invoice_payment"
    assert posted["target"]["connection_id"] == hotell.books.connection_id

    books = await sources.fortnox_books(hotell.books.url, hotell.books.reader["token"])
    ours = {docs[i].invoice_id: i for i in invoices}
    held = {r["ExternalInvoiceReference1"]: r for r in books["invoices"]}
    assert set(held) == set(ours)  # each once, none for the cash receipt
    assert all(r["Booked"] for r in held.values())
    original = held[docs[first].invoice_id]
    credit = held[docs[credit_id].invoice_id]
    assert Decimal(str(credit["Total"])) == -Decimal(str(original["Total"]))
    [payment] = books["invoicepayments"]
    paid = held[docs[paid_id].invoice_id]
    assert (payment["Number"], payment["InvoiceNumber"], payment["Booked"]) == (
        posted["erp_reference"],
        int(paid["DocumentNumber"]),
        True,
    )
    assert Decimal(str(paid["Balance"])) == 0  # Fortnox's rounding written off
    assert len(books["customers"]) == 2  # the two guests, once each


async def test_a_winner_quote_becomes_two_orders_in_tripletex(nordflow_stack, tenant_id):
    env = nordflow_stack.env()
    kjokken = {c.system: c for c in await provision_sources(env, tenant_id)}[sources.WINNER]
    assert kjokken.books is not None
    # ledger-closer invoices a part from the start of its due date in UTC
    # (`domain.booking.order_invoice_due`): dated so, the advance is due at any hour, also
    # in the hour after Norway's midnight, when Norway's date is already tomorrow's.
    today = dt.datetime.now(dt.UTC).date()
    order = sources.winner_order("Q7001", today)
    advance, rest = await sources.push_winner_order(
        kjokken.writer["erp_poller_url"],
        kjokken.connection_id,
        kjokken.writer["signing_secret"],
        order,
    )

    def finished(journeys):
        docs = by_document(journeys)
        parts = [docs.get((sources.WINNER, advance)), docs.get((sources.WINNER, rest))]
        return (
            all(parts)
            and parts[0].count("invoice.booked") == 2
            and parts[1].count("invoice.booked") == 1
        )

    journeys = await journey.wait_for(
        env["KAFKA_BOOTSTRAP_SERVERS"], [kjokken.tenant_id], finished, timeout=180
    )
    docs = by_document(journeys)
    first, second = docs[(sources.WINNER, advance)], docs[(sources.WINNER, rest)]
    for j in (first, second):
        assert j.count("invoice.distributed") == j.count("invoice.transferred") == 0
    booked = sorted(first.events["invoice.booked"].values(), key=lambda b: b["booked_at"])
    assert [b["action"] for b in booked] == ["order", "order_invoiced"]
    assert [b["action"] for b in second.events["invoice.booked"].values()] == ["order"]

    held = await sources.tripletex_books(kjokken.books.url, kjokken.books.reader["employee_token"])
    [customer] = held["customers"]
    assert customer["name"] == "Kari Nordmann"
    [project] = held["projects"]
    assert (project["number"], project["customer"]) == ("P-Q7001", {"id": customer["id"]})
    assert sorted(p["name"] for p in held["products"]) == ["Benkeplater", "Montering", "Skap"]
    net = {
        o["reference"]: sum(
            Decimal(str(line["amountExcludingVatCurrency"])) for line in o["orderLines"]
        )
        for o in held["orders"]
    }
    # 120 000 NOK excl. VAT, 20 % now and 80 % on delivery.
    assert net == {first.invoice_id: Decimal(24000), second.invoice_id: Decimal(96000)}
    for o in held["orders"]:
        assert (o["customer"], o["project"]) == ({"id": customer["id"]}, {"id": project["id"]})
    # Only the part due today is invoiced (25 % VAT on 24 000).
    [invoice] = held["invoices"]
    assert Decimal(str(invoice["amount"])) == Decimal(30000)
    assert invoice["orders"] == [{"id": int(booked[0]["erp_reference"])}]
