"""Visma eAccounting, Visma.net and Sirvoy through the running services: each document is
fetched, mapped (or rejected with its field) and sent once; a payment picked up from Sirvoy
is reported once and never booked again."""

import pytest
from nordflow_local import deliveries, journey, sources
from nordflow_local.provision import provision_sources

pytestmark = [pytest.mark.e2e]
ENDS = ("invoice.rejected", "invoice.distributed", "invoice.delivery_failed")


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
    hotell = connected[sources.SIRVOY]
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
        *(
            (hotell.system, i)
            for i in await sources.create_sirvoy_invoices(
                hotell.url, hotell.writer["token"], 2, seed=3
            )
        ),
    ]
    tenants = [c.tenant_id for c in connected.values()]

    def finished(journeys):
        docs = by_document(journeys)
        paid = any(j.count("payment.received") for j in journeys.values())
        return paid and all(
            key in docs and any(docs[key].count(t) for t in ENDS) for key in expected
        )

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
    # The invalid eAccounting invoice alone is rejected; the Sirvoy credit note goes out too.
    assert list(outcomes.values()).count("rejected") == 1
    assert sum(1 for system, _ in expected if system == "sirvoy") == 3
    # The guest's payment at the hotel: reported once, on its invoice, as already booked.
    paid = [j for j in journeys.values() if j.count("payment.received")]
    assert len(paid) == 1
    assert paid[0].count("payment.received") == 1
    payment = paid[0].first("payment.received")
    assert payment["recorded_at_source"] is True
    assert payment["source"]["system"] == "sirvoy"
    assert paid[0].count("ledger.entry.posted") == 0
