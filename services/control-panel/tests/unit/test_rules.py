"""Pure rules: who sees what, cursors, statistics periods and figures, hints and words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from control_panel.domain.access import ForbiddenError, Principal
from control_panel.domain.hints import Problem, problem_of
from control_panel.domain.paging import BadCursorError, Cursor
from control_panel.domain.stats import (
    BadRangeError,
    Granularity,
    bounds,
    cost,
    electronic_share,
    periods,
)
from control_panel.entrypoints.http import charts
from control_panel.entrypoints.http.i18n import CATALOGS, EN, Translator, choose
from nordflow_schemas.events import Channel


def test_a_tenant_sees_its_own_tenant_only_and_an_operator_any() -> None:
    tenant = Principal("finance", "acme", operator=False)
    operator = Principal("ops", None, operator=True)
    assert tenant.scope(None) == "acme"
    assert tenant.scope("acme") == "acme"
    with pytest.raises(ForbiddenError, match=r"^tenant:"):
        tenant.scope("other")
    assert operator.scope(None) is None
    assert operator.scope("other") == "other"
    assert tenant.sees("acme")
    assert not tenant.sees("other")
    assert operator.sees("other")
    assert operator.may_replay
    assert not tenant.may_replay


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    cursor = Cursor(dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC), "inv_1")
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("nope", "e30", "x" * 600, Cursor(dt.datetime(2025, 1, 1), "k").encode()):
        with pytest.raises(BadCursorError, match=r"^cursor:"):
            Cursor.decode(bad)


def test_periods_of_days_and_months() -> None:
    days = periods(dt.date(2025, 1, 30), dt.date(2025, 2, 2), Granularity.DAY)
    assert days == [
        dt.date(2025, 1, 30),
        dt.date(2025, 1, 31),
        dt.date(2025, 2, 1),
        dt.date(2025, 2, 2),
    ]
    months = periods(dt.date(2024, 12, 15), dt.date(2025, 2, 1), Granularity.MONTH)
    assert months == [dt.date(2024, 12, 1), dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    with pytest.raises(BadRangeError, match=r"^to:"):
        periods(dt.date(2025, 2, 2), dt.date(2025, 2, 1), Granularity.DAY)
    with pytest.raises(BadRangeError, match=r"^to: at most 400"):
        periods(dt.date(2020, 1, 1), dt.date(2025, 1, 1), Granularity.DAY)


def test_a_days_bounds_follow_the_tenants_zone_across_daylight_saving() -> None:
    oslo = ZoneInfo("Europe/Oslo")
    start, end = bounds(dt.date(2025, 3, 30), dt.date(2025, 3, 30), oslo)
    assert start == dt.datetime(2025, 3, 29, 23, 0, tzinfo=dt.UTC)
    # The spring-forward day is 23 hours long.
    assert end.astimezone(dt.UTC) - start.astimezone(dt.UTC) == dt.timedelta(hours=23)


def test_electronic_share_and_cost() -> None:
    sent = {"peppol": 3, "b2c_bank": 1, "email": 2, "paper": 2}
    assert electronic_share(sent) == Decimal("0.5000")
    assert electronic_share({}) is None
    prices = {
        Channel.PEPPOL: Decimal("0.50"),
        Channel.B2C_BANK: Decimal("0.80"),
        Channel.EMAIL: Decimal("1.00"),
        Channel.PAPER: Decimal("9.50"),
    }
    assert cost(sent, prices) == Decimal("23.30")


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("NF-REQUIRED", Problem.REQUIRED),
        ("NF-ORGNR", Problem.IDENTITY),
        ("NF-DUE-DATE", Problem.DATE),
        ("NF-VAT-RATE", Problem.VAT),
        ("BR-CO-15", Problem.OFFICIAL),
        ("PEPPOL-EN16931-R003", Problem.OFFICIAL),
        ("NF-DELIVERY-UNCERTAIN", Problem.UNCERTAIN),
        ("JOB ledger-closer", Problem.JOB),
        ("DLQ mapper", Problem.DEAD_LETTER),
        ("X-SOMETHING", Problem.OTHER),
    ],
)
def test_rules_map_to_kinds_of_problems(rule: str, problem: Problem) -> None:
    assert problem_of(rule) is problem


def test_every_language_has_every_word_and_every_problem() -> None:
    for language, catalog in CATALOGS.items():
        assert set(catalog) == set(EN), language
    for problem in Problem:
        assert f"problem.{problem.value}" in EN
        assert f"fix.{problem.value}" in EN
    sv = Translator("sv")
    assert sv("fix.required", field="Invoice.DueDate", system="Fortnox") == (
        "Fyll i Invoice.DueDate i Fortnox och spara fakturan igen."
    )
    assert Translator("xx")("nav.invoices") == "Invoices"
    assert Translator("en")("no.such.key") == "no.such.key"


def test_the_language_is_asked_saved_the_tenants_or_the_browsers() -> None:
    assert choose("nb", "sv", "en", None) == "nb"
    assert choose(None, "sv", "en", None) == "sv"
    assert choose(None, None, "nb", "sv-SE") == "nb"
    assert choose(None, None, None, "no-NO,no;q=0.9") == "nb"
    assert choose(None, None, None, "de-DE,sv;q=0.8") == "sv"
    assert choose("xx", None, None, None) == "en"


def test_a_stacked_chart_scales_to_its_tallest_bar() -> None:
    chart = charts.stacked(["a", "b"], {"x": [2, 0], "y": [3, 8]})
    assert not chart.empty
    assert len(chart.bars) == 3
    tallest = max(b.height for b in chart.bars)
    assert tallest == pytest.approx(sum(b.height for b in chart.bars if b.title.startswith("b")))
    assert charts.stacked(["a"], {"x": [0]}).empty
