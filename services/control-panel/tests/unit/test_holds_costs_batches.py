"""What distribution-router and factoring-gateway now tell the panel: holds and suggestion
decisions as steps of the journey (in any order, any duplicates), a send's cost, a
transfer's batch and file, and the words for each of them in every language."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from decimal import Decimal
from typing import Any

from control_panel.domain.journey import Status, summarize
from control_panel.domain.stats import cost
from control_panel.entrypoints.consumers import observed
from control_panel.entrypoints.http.i18n import CATALOGS
from control_panel.service.readmodel import apply_event, step_of
from control_panel.testing import (
    BASE_TIME,
    FakeJourneyRepository,
    Recorder,
    fake_repositories,
    hold_events,
    journey,
    suggestion_events,
)
from nordflow_schemas.events import Channel, HoldChange, HoldReason, SuggestionDecision


def test_a_holds_changes_are_steps_of_its_journey() -> None:
    placed, added, released = (step_of(observed(e)) for e in hold_events("t-h", "1001"))
    assert placed is not None
    assert added is not None
    assert released is not None
    assert {s.kind for s in (placed, added, released)} == {"delivery.hold_updated"}
    assert placed.facts["change"] == "placed"
    assert placed.facts["reason"] == "tenant_policy"
    assert placed.facts["held_until"] == (BASE_TIME + dt.timedelta(hours=48)).isoformat()
    assert placed.occurred_at == BASE_TIME
    assert (added.facts["attachment"], added.facts["attachments"]) == ("villkor.pdf", 1)
    assert released.facts["released_by"] == "api token 'ekonomi'"
    assert released.occurred_at == BASE_TIME + dt.timedelta(minutes=20)
    # A hold says nothing about how far the invoice got: it stays where its journey is.
    assert summarize([placed, added, released]).status is Status.UNKNOWN
    assert summarize([placed]).number == "1001"


def test_a_suggestion_decision_is_a_step_beside_the_suggestion() -> None:
    found, decided = (step_of(observed(e)) for e in suggestion_events("t-s", "1001"))
    assert found is not None
    assert decided is not None
    assert (found.kind, decided.kind) == ("channel.suggested", "channel.suggestion_decided")
    assert found.invoice_id == decided.invoice_id
    assert decided.facts == {
        "suggestion_id": 5,
        "decision": "accepted",
        "current_channel": "email",
        "suggested_channel": "peppol",
        "decided_by": "api token 'ekonomi'",
    }


def test_a_transfer_names_its_batch_and_file_and_a_send_its_cost() -> None:
    events = journey("t-c", "1001", cost=Decimal("0.85"))
    steps = {s.kind: s for s in (step_of(observed(e)) for e in events) if s is not None}
    transferred = steps["invoice.transferred"].facts
    assert (transferred["batch_id"], transferred["file_serial"]) == ("b-1001", 7)
    sent = steps["invoice.distributed"].facts
    assert (sent["cost"], sent["cost_currency"]) == ("0.85", "SEK")
    older = {s.kind: s for s in (step_of(observed(e)) for e in journey("t-c", "1002"))}
    assert older["invoice.distributed"].facts["cost"] is None  # before sends were priced


def test_holds_and_decisions_in_any_order_and_twice_give_the_same_journey() -> None:
    tenant = "t-order"
    events = [
        *journey(tenant, "1001"),
        *hold_events(tenant, "1001"),
        *suggestion_events(tenant, "1001"),
    ]

    async def applied(order: list[Any]) -> tuple[Any, list[tuple[str, int]]]:
        repos = fake_repositories()
        for env in order:
            await apply_event(repos, observed(env))
        assert isinstance(repos.journeys, FakeJourneyRepository)
        assert isinstance(repos.books, Recorder)
        holds = sorted(
            (name, args[0].revision) for name, args in repos.books.calls if name == "hold_updated"
        )
        return repos.journeys.summaries, holds

    reference = asyncio.run(applied(events))
    mixed = events + events[2:7]
    random.Random(11).shuffle(mixed)
    assert asyncio.run(applied(mixed)) == reference
    # Each revision reaches the holds' table once; the table keeps the highest.
    assert reference[1] == [("hold_updated", 1), ("hold_updated", 2), ("hold_updated", 3)]


def test_the_cost_is_what_the_sends_said_plus_the_estimate_of_the_rest() -> None:
    prices = {
        Channel.PEPPOL: Decimal("0.50"),
        Channel.B2C_BANK: Decimal("0.80"),
        Channel.EMAIL: Decimal("1.00"),
        Channel.PAPER: Decimal("9.50"),
    }
    # Two paper sends priced by the print partner, one older paper send estimated.
    assert cost({"paper": 1}, prices, {"paper": Decimal("23.40")}) == Decimal("32.90")
    assert cost({}, prices, {"email": Decimal("0.333")}) == Decimal("0.33")
    assert cost({"email": 2}, prices) == Decimal("2.00")


def test_every_change_and_decision_has_words_in_every_language() -> None:
    for language, catalog in CATALOGS.items():
        for change in HoldChange:
            assert f"kind.delivery.hold_updated.{change.value}" in catalog, language
        for reason in HoldReason:
            assert f"hold_reason.{reason.value}" in catalog, language
        for decision in SuggestionDecision:
            assert f"kind.channel.suggestion_decided.{decision.value}" in catalog, language
            assert f"decision.{decision.value}" in catalog, language
